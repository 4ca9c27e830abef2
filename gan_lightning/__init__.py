"""gan-lightning: a PyTorch Lightning + Hydra experiment framework for GANs, DCGANs and VAEs."""

__version__ = "0.1.0"
