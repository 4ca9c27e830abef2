"""LightningDataModules. Where data comes from and how it is cached lives in ``sources.py``."""
