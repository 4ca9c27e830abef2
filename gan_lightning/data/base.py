"""The one data layer: pixel range, batching, splits, subset filters, in-memory vs streaming.

Datasets yield ``(images_uint8, labels)``; the conversion to the configured float pixel range
happens once per *batch*, after the batch reached its device (``on_after_batch_transfer``), so
CPU workers move compact uint8 tensors and a GPU does the arithmetic. Float samples (the 1-D
Gaussian toy) pass through untouched.

Two kinds of dataset serve every DataModule: :class:`~gan_lightning.data.tensors.TensorImageDataset`
(the whole set as one tensor: MNIST, the toy) and
:class:`~gan_lightning.data.decoding.ImageFileDataset` (files decoded in DataLoader workers,
through :class:`~gan_lightning.data.image_files.ImageFilesDataModule`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from gan_lightning.data.loaders import ResumableDataLoader, ResumableSampler, passthrough_collate
from gan_lightning.data.tensors import TensorImageDataset
from gan_lightning.errors import ConfigError
from gan_lightning.runtime.compat import batches_processed_this_epoch
from gan_lightning.utils.pixels import as_pixel_range, uint8_to_range

log = logging.getLogger(__name__)


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
        on_device: bool | str = "auto",
    ) -> None:
        super().__init__()
        if on_device not in ("auto", True, False):
            raise ConfigError(f"data.on_device must be auto, true or false; got {on_device!r}.")
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
        #: Serve an in-memory training set from the training GPU (``auto``: when training on
        #: one; ``true``: on any accelerator; ``false``: never). See :meth:`serving_device`.
        self.on_device = on_device
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
        # Pinned host memory only helps (and only exists) with a CUDA device, for host tensors.
        on_host = getattr(dataset, "device", torch.device("cpu")).type == "cpu"
        kwargs["pin_memory"] = self.pin_memory and on_host and torch.cuda.is_available()
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
        return batches_processed_this_epoch(self.trainer)

    def training_device(self) -> torch.device | None:
        """The device the Trainer trains on (``None`` outside a Trainer)."""
        trainer = self.trainer
        return None if trainer is None else trainer.strategy.root_device

    def serving_device(self) -> torch.device | None:
        """Where the in-memory training set should sit: the training device when it is not
        the CPU (``on_device: auto`` for CUDA, ``true`` for any accelerator). The uint8 images
        (47 MB for MNIST) are then moved once and each batch is gathered on the GPU, instead of
        a host gather and a host-to-device copy per batch. ``None``: serve from host memory
        (streaming sets, worker processes, CPU training, ``on_device: false``)."""
        if self.on_device is False or not self.in_memory or self.num_workers > 0:
            return None
        if not isinstance(self.train_set, TensorImageDataset):
            return None
        device = self.training_device()
        if device is None or device.type == "cpu":
            return None
        if self.on_device == "auto" and device.type != "cuda":
            return None
        return device

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        if len(self.train_set) < self.batch_size:
            raise ConfigError(
                f"The training set has {len(self.train_set)} samples, fewer than "
                f"data.batch_size={self.batch_size}; lower the batch size or widen the subset."
            )
        device = self.serving_device()
        if device is not None and self.train_set.device != device:
            log.info("Training images moved to %s once; batches are gathered there.", device)
            self.train_set.to(device)
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
