"""Errors a user can cause and fix. ``train.py`` prints them as one clear line, no traceback."""


class ConfigError(ValueError):
    """An impossible config value; the message names the key, the value and the fix."""


class DataSourceError(RuntimeError):
    """A dataset is missing or could not be fetched; the message says where to put it."""


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/Inf; the message names the batch, the net and the loss."""


class FileSystemError(RuntimeError):
    """A path could not be read or written (a folder that is a file, a read-only or full disk,
    an empty file): a fault of the machine, not of the config. The message names the path,
    what was being done and the fix; ``exit_code`` is 2 before training starts and
    :data:`gan_lightning.runtime.filesystem.STORAGE_STOP_EXIT` when a run stops mid-training.
    """

    def __init__(self, message: str, path: object = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.path = path
        self.exit_code = exit_code
