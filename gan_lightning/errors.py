"""Errors a user can cause and fix. ``train.py`` prints them as one clear line, no traceback."""


class ConfigError(ValueError):
    """An impossible config value; the message names the key, the value and the fix."""


class DataSourceError(RuntimeError):
    """A dataset is missing or could not be fetched; the message says where to put it."""


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/Inf; the message names the batch, the net and the loss."""
