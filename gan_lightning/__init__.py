"""gan-lightning: a PyTorch Lightning + Hydra experiment framework for GANs, DCGANs and VAEs."""

#: The one version of the package: pyproject.toml reads it (``dynamic = ["version"]``) and
#: every command's ``--version`` prints it.
__version__ = "0.1.0"


def version_line() -> str:
    """What ``--version`` prints, for every command and ``python -m gan_lightning``."""
    return f"gan_lightning {__version__}"
