"""LightningDataModules, on one base class (``base.py``), and where their data comes from.

DataModules never touch the disk directly: what is on disk, where, how to fetch what is
missing, which files there are and whether they can be read is asked of
:mod:`gan_lightning.data.sources`, so every layout, download and missing-data message lives
in one place. The one exception is per-sample decoding of the image files sources listed and
checked (:func:`gan_lightning.data.decoding.load_image`, in DataLoader workers).
"""
