"""The one data layer: pixel range, batching, splits, subset filters, in-memory vs streaming.

Datasets yield ``(images_uint8, labels)``; the conversion to the configured float pixel range
happens once per *batch*, after the batch reached its device (``on_after_batch_transfer``), so
CPU workers move compact uint8 tensors and a GPU does the arithmetic. Float samples (the 1-D
Gaussian toy) pass through untouched.

Two kinds of dataset serve every DataModule:

* :class:`TensorImageDataset`: the whole set as one tensor (MNIST, the toy); a batch is one
  indexing op, no workers;
* :class:`ImageFileDataset`: image files decoded per sample in DataLoader workers (CelebA, any
  folder), through the one :func:`load_image` path (decode -> center crop -> resize, uint8).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from gan_lightning.data.sources.files import check_images, check_verify_options
from gan_lightning.errors import ConfigError, DataSourceError
from gan_lightning.utils.pixels import as_pixel_range, uint8_to_range

log = logging.getLogger(__name__)


class ResumableSampler(DistributedSampler):
    """The training order: shuffled by ``seed + epoch`` (the same in every run, and after a
    resume), split across DDP ranks, and able to start an epoch in the middle.

    A ``DistributedSampler`` with one replica when there is no process group, so Lightning
    keeps it as it is under DDP instead of wrapping it.
    """

    def __init__(self, dataset: Dataset, seed: int = 0, shuffle: bool = True) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        super().__init__(
            dataset,
            num_replicas=torch.distributed.get_world_size() if distributed else 1,
            rank=torch.distributed.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=int(seed),
        )
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, skip: int) -> None:
        """Start ``epoch`` at its ``skip``-th sample of this rank (once)."""
        self._resume = (int(epoch), int(skip))

    def __iter__(self):
        indices = list(super().__iter__())
        if self._resume is not None and self._resume[0] == self.epoch:
            indices = indices[self._resume[1] :]
        self._resume = None
        return iter(indices)


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning checkpoints mid-epoch (the ``state_dict`` /
    ``load_state_dict`` protocol it looks for), so a resumed run continues with the next batch
    instead of the start of the epoch.

    The position saved is how many batches the training loop has *processed* this epoch
    (``position_fn``, from the Trainer), not how many this loader has yielded: Lightning
    fetches one batch ahead.
    """

    position_fn: Any = None

    def state_dict(self) -> dict[str, int]:
        position = int(self.position_fn()) if self.position_fn is not None else 0
        return {"epoch": int(self.sampler.epoch), "batches": position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume_at(state["epoch"], state["batches"] * int(self.batch_size))


def passthrough_collate(batch: Any) -> Any:
    """Collate for datasets whose ``__getitems__`` already returns a stacked batch."""
    return batch


class TensorImageDataset(Dataset):
    """Images and labels held as whole tensors; a batch is one fancy-indexing op.

    ``__getitems__`` lets the DataLoader fetch a list of indices in one call (no per-sample
    Python or PIL work), while ``batch_size``/``shuffle`` stay ordinary DataLoader arguments so
    Lightning can still swap in a ``DistributedSampler`` under DDP.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ConfigError("images and labels must have the same length")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images[index], self.labels[index]


def load_image(
    path: str | os.PathLike, image_size: int, crop_size: int | None = None, channels: int = 3
) -> torch.Tensor:
    """Decode one image file to a uint8 (channels, image_size, image_size) tensor.

    The one preprocessing path of every file-based DataModule (DCGAN's CelebA recipe): decode
    (libjpeg-turbo/libpng/libwebp through torchvision, no PIL round trip), center crop a
    ``crop_size`` square (``None``: the largest centred square), antialiased resize to
    ``image_size``. An image smaller than ``crop_size`` is zero-padded by the crop.
    Raises ``RuntimeError``/``OSError`` for unreadable files; callers decide what that means.
    """
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as F

    # Decode as RGB always (webp has no grayscale decode), convert afterwards if asked.
    image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)  # (3, H, W) uint8
    if channels == 1:
        image = F.rgb_to_grayscale(image)  # (1, H, W)
    side = min(image.shape[-2:]) if crop_size is None else int(crop_size)
    image = F.center_crop(image, [side, side])  # (C, side, side)
    if side != image_size:
        image = F.resize(image, [image_size, image_size], antialias=True)  # (C, S, S)
    return image.contiguous()


class ImageFileDataset(Dataset):
    """Image files decoded on demand (in DataLoader workers), with their targets.

    Files are checked before training (:func:`gan_lightning.data.sources.files.check_images`);
    a file that still fails here (truncated after a header-only check, a disk error) must not
    kill a worker in the middle of an epoch, so it is reported once per process, by name, and
    the next readable file stands in for it. More than ``max_substitutions`` unreadable files
    in a row means the data is broken, and that is raised as a :class:`DataSourceError`.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        targets: torch.Tensor | None = None,
        image_size: int = 64,
        crop_size: int | None = None,
        channels: int = 3,
        max_substitutions: int = 16,
    ) -> None:
        # One numpy bytes buffer, not a list of str: workers forked from the main process would
        # otherwise touch (and so copy) every string's refcount, a known PyTorch memory trap.
        self._files = np.array([os.fsencode(str(f)) for f in files], dtype=np.bytes_)
        n = len(self._files)
        self.targets = targets if targets is not None else torch.zeros(n, dtype=torch.long)
        if self.targets.shape[0] != n:
            raise ConfigError("image files and targets must have the same length")
        self.image_size = int(image_size)
        self.crop_size = int(crop_size) if crop_size else None
        self.channels = int(channels)
        self.max_substitutions = int(max_substitutions)
        #: Files that failed to decode in *this* process (each worker keeps its own).
        self.failed: set[str] = set()

    def __len__(self) -> int:
        return len(self._files)

    def file(self, index: int) -> str:
        return os.fsdecode(self._files[index])

    @property
    def files(self) -> list[str]:
        return [os.fsdecode(f) for f in self._files]

    def load(self, index: int) -> torch.Tensor:
        return load_image(self.file(index), self.image_size, self.crop_size, self.channels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self._files)
        for attempt in range(min(self.max_substitutions + 1, n)):
            candidate = (index + attempt) % n
            try:
                return self.load(candidate), self.targets[candidate]
            except (RuntimeError, OSError, ValueError) as err:
                path = self.file(candidate)
                if path not in self.failed:
                    self.failed.add(path)
                    log.warning(
                        "Unreadable image %s skipped (%s); the next file stands in for it. "
                        "data.verify=full finds such files before training.",
                        path,
                        str(err).splitlines()[0][:200],
                    )
        raise DataSourceError(
            f"{min(self.max_substitutions + 1, n)} unreadable images in a row starting at "
            f"{self.file(index)}; the data looks broken. Run with data.verify=full to list every "
            "unreadable file before training."
        )


class BaseDataModule(pl.LightningDataModule):
    """Shared behaviour of every DataModule in the project.

    Subclasses implement :meth:`prepare_data` (fetch/cache) and :meth:`build_splits`
    (return ``train``, ``val``, ``test`` datasets of uint8 images), and set ``image_shape``.

    ``val_size``: an int is a number of samples, a float in (0, 1) a fraction of the set.
    Loader options (``num_workers``, ``pin_memory``, ``persistent_workers``,
    ``prefetch_factor``) matter for streaming (file-based) sets; ``pin_memory`` only takes
    effect when CUDA is available, so one config serves CPU and GPU machines.
    """

    #: Datasets served from memory collate with :func:`passthrough_collate`; streaming ones
    #: (``in_memory = False``) use the DataLoader's default collate of per-sample tensors.
    in_memory: bool = True
    #: Hand image batches over in channels_last (NHWC); set by the MemoryFormat callback when
    #: the nets are convolutional (a no-op for single-channel images, which are both layouts).
    channels_last: bool = False
    #: Integer class labels 0..num_classes-1 the batches carry (conditional GANs); 0: none.
    num_classes: int = 0

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        pixel_range: Sequence[float] = (-1.0, 1.0),
        image_shape: Sequence[int] | None = None,
        val_size: int | float = 5000,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        eval_batch_size: int | None = None,
        persistent_workers: bool = True,
        prefetch_factor: int | None = None,
    ) -> None:
        super().__init__()
        if int(batch_size) < 1:
            raise ConfigError(f"data.batch_size must be >= 1; got {batch_size}.")
        if isinstance(val_size, bool) or not float(val_size) >= 0:
            raise ConfigError(f"data.val_size must be >= 0; got {val_size}.")
        if isinstance(val_size, float) and not (0 <= val_size < 1 or val_size.is_integer()):
            raise ConfigError(
                f"data.val_size={val_size}: use a fraction in (0, 1) or a whole number of samples."
            )
        if int(num_workers) < 0:
            raise ConfigError(f"data.num_workers must be >= 0; got {num_workers}.")
        if prefetch_factor is not None and int(prefetch_factor) < 1:
            raise ConfigError(f"data.prefetch_factor must be >= 1 or null; got {prefetch_factor}.")
        self.data_dir = str(data_dir)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or max(batch_size, 256))
        self.pixel_range = as_pixel_range(pixel_range)
        self.configured_image_shape = tuple(image_shape) if image_shape is not None else None
        self.val_size: int | float = (
            float(val_size) if isinstance(val_size, float) and val_size < 1 else int(val_size)
        )
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        self.prefetch_factor = int(prefetch_factor) if prefetch_factor is not None else None
        self.seed = int(seed)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # ------------------------------------------------------------------ subclass API
    @property
    def image_shape(self) -> tuple[int, ...]:  # pragma: no cover - contract
        raise NotImplementedError(
            f"{type(self).__name__} must define image_shape (see BaseDataModule)"
        )

    def build_splits(self) -> tuple[Dataset, Dataset, Dataset]:  # pragma: no cover - contract
        raise NotImplementedError(
            f"{type(self).__name__} must define build_splits() (see BaseDataModule)"
        )

    def check_image_shape(self) -> None:
        """``data.image_shape`` (what the nets and metrics are built for) must be the data's
        shape; subclasses that know it without reading data call this from ``__init__``."""
        if self.configured_image_shape is not None and tuple(
            int(s) for s in self.configured_image_shape
        ) != tuple(self.image_shape):
            raise ConfigError(
                f"data.image_shape={list(self.configured_image_shape)} does not match the "
                f"data's shape {list(self.image_shape)}; remove the override."
            )

    def check_source(self) -> None:
        """Cheap check (a few stat calls, no download, no decoding) that the data is where the
        config says; raises :class:`DataSourceError` with the actionable message.

        Meant to run right after the DataModule is built, so a missing dataset is reported
        before the model, metrics and loggers are (``prepare_data`` would report it too, but
        only once ``Trainer.fit`` starts). Constructors never touch the disk, so configs stay
        instantiable without the data (config tests, generating from a checkpoint).
        """

    # ------------------------------------------------------------------ Lightning API
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.check_image_shape()
            self.train_set, self.val_set, self.test_set = self.build_splits()

    def loader(self, dataset: Dataset, train: bool) -> DataLoader:
        """The DataLoader of a split: training shuffles resumably and drops the last partial
        batch; evaluation keeps order and every image."""
        kwargs: dict[str, Any] = {}
        if self.in_memory:
            kwargs["collate_fn"] = passthrough_collate
        if self.num_workers > 0:
            # Persistent workers keep their decoders and file handles across epochs; without
            # them every epoch pays the worker start-up again.
            kwargs["persistent_workers"] = self.persistent_workers
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        # Pinned host memory only helps (and only exists) with a CUDA device.
        kwargs["pin_memory"] = self.pin_memory and torch.cuda.is_available()
        if not train:
            return DataLoader(
                dataset, batch_size=self.eval_batch_size, num_workers=self.num_workers, **kwargs
            )
        loader = ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=ResumableSampler(dataset, seed=self.seed),
            drop_last=True,  # BatchNorm in G/D cannot take a last batch of one sample
            num_workers=self.num_workers,
            **kwargs,
        )
        loader.position_fn = self._batches_processed
        return loader

    def _batches_processed(self) -> int:
        """Training batches done in the current epoch (0 outside a Trainer)."""
        if self.trainer is None:
            return 0
        return int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        if len(self.train_set) < self.batch_size:
            raise ConfigError(
                f"The training set has {len(self.train_set)} samples, fewer than "
                f"data.batch_size={self.batch_size}; lower the batch size or widen the subset."
            )
        return self.loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return self.loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self.loader(self.test_set, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        if images.dtype == torch.uint8:
            images = uint8_to_range(images, self.pixel_range)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    # ------------------------------------------------------------------ shared helpers
    def num_val(self, n: int) -> int:
        """``val_size`` resolved against a set of ``n`` samples (a fraction rounds, min 1)."""
        if isinstance(self.val_size, float):
            return max(1, round(self.val_size * n)) if self.val_size > 0 else 0
        return self.val_size

    def split_indices(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(train_idx, val_idx)``: a seeded permutation holds out ``val_size`` of ``n`` samples,
        the same ones every run; both index lists are sorted (file order is kept)."""
        n_val = self.num_val(n)
        if n_val >= n:
            raise ConfigError(
                f"data.val_size={self.val_size} leaves no training data ({n} samples); lower it."
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return order[n_val:].sort().values, order[:n_val].sort().values

    def split_train_val(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[TensorImageDataset, TensorImageDataset | None]:
        """Hold out ``val_size`` samples with a seeded permutation (same split every run)."""
        if self.num_val(images.shape[0]) == 0:
            return TensorImageDataset(images, labels), None
        train_idx, val_idx = self.split_indices(images.shape[0])
        return (
            TensorImageDataset(images[train_idx], labels[train_idx]),
            TensorImageDataset(images[val_idx], labels[val_idx]),
        )

    @staticmethod
    def subset_mask(keep: torch.Tensor, description: str, fix: str) -> torch.Tensor:
        """Validate a subset filter (digits, attributes): it must keep at least one sample.

        Returns ``keep`` as a bool tensor; ``description`` names the filter in the error
        (``data.attributes={'Male': False}``) and ``fix`` says what to change.
        """
        keep = torch.as_tensor(keep, dtype=torch.bool)
        if not bool(keep.any()):
            raise ConfigError(f"{description} selects no samples (of {keep.numel()}); {fix}")
        log.info("%s keeps %d of %d samples", description, int(keep.sum()), keep.numel())
        return keep


class ImageFilesDataModule(BaseDataModule):
    """Streaming base of the file-based sets (CelebA, any image folder).

    One preprocessing path for all of them (:func:`load_image`: center crop ``crop_size``,
    resize to ``image_size``, uint8), one up-front check of the files
    (:func:`gan_lightning.data.sources.files.check_images` with ``verify`` and
    ``max_corrupt_fraction``), and DataLoader workers (``in_memory = False``). Subclasses
    list their files and targets in :meth:`build_splits` and hand them to :meth:`dataset`.
    """

    in_memory = False

    def __init__(
        self,
        image_size: int = 64,
        crop_size: int | None = None,
        channels: int = 3,
        verify: str = "header",
        max_corrupt_fraction: float = 0.001,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(image_size, bool) or int(image_size) < 1:
            raise ConfigError(f"data.image_size must be a positive int; got {image_size}.")
        if crop_size is not None and int(crop_size) < 1:
            raise ConfigError(
                f"data.crop_size must be a positive int, or null for the largest centred "
                f"square; got {crop_size}."
            )
        if int(channels) not in (1, 3):
            raise ConfigError(f"data.channels must be 3 (RGB) or 1 (grayscale); got {channels}.")
        check_verify_options(verify, max_corrupt_fraction)
        self.image_size = int(image_size)
        self.crop_size = int(crop_size) if crop_size is not None else None
        self.channels = int(channels)
        self.verify = verify
        self.max_corrupt_fraction = float(max_corrupt_fraction)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def readable(
        self, files: Sequence[str | os.PathLike], targets: torch.Tensor, what: str
    ) -> tuple[list[str], torch.Tensor]:
        """Drop unreadable files (warning naming them), or raise above the allowed fraction."""
        keep = check_images(files, self.verify, self.max_corrupt_fraction, what)
        if len(keep) == len(files):
            return [str(f) for f in files], targets
        return [str(files[i]) for i in keep], targets[torch.as_tensor(keep, dtype=torch.long)]

    def dataset(self, files: Sequence[str], targets: torch.Tensor | None) -> ImageFileDataset:
        return ImageFileDataset(files, targets, self.image_size, self.crop_size, self.channels)
