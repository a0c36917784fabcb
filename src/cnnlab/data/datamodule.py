"""The in-memory DataModule: the whole dataset on the device, batches by indexing.

d2l's ``FashionMNIST`` (sec. 4.2 of the book) decodes, resizes (PIL) and
collates every image on every epoch in worker processes. Here the whole split
sits on the training device as one uint8 tensor, moved there once; a batch is
one index into it, then the conversion to float, the resize and the
augmentation run on the whole batch on the device.

Reproducibility: the shuffle and the augmentation of epoch ``e`` come from
generators seeded by ``(seed, e)`` and ``(seed, e, rank)``, never by how many
epochs ran before, so a run resumed at epoch ``e`` sees the batches an
uninterrupted run sees. Call :meth:`DataModule.set_epoch` before each epoch;
without it, each pass over ``train_dataloader()`` takes the next epoch number.

Example:
    >>> dm = DataModule("synthetic", batch_size=64, resize=32, num_train=256)
    >>> X, y = next(iter(dm.train_dataloader()))
    >>> tuple(X.shape), X.dtype, y.dtype, len(dm.train_dataloader())
    ((64, 1, 32, 32), torch.float32, torch.int64, 4)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import torch

from cnnlab.data.datasets import Dataset, load_dataset
from cnnlab.data.transforms import (
    device_generator,
    parse_augment,
    random_crop,
    random_erase,
    random_flip,
    resize_uint8,
)
from cnnlab.errors import ConfigError
from cnnlab.guards import check_int, check_memory

__all__ = ["DataModule", "BatchLoader", "pixel_mean_std"]

# Mixing constants for the (seed, epoch, rank) -> generator seed map (SplitMix64's).
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def _seed_of(*parts: int) -> int:
    h = 0x2545F4914F6CDD1D
    for p, m in zip(parts, _MIX * 2):
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * m) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def pixel_mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of a uint8 tensor, scaled to [0, 1].

    Computed exactly from the 256-bin histogram (no float copy of the dataset).

    Example:
        >>> pixel_mean_std(torch.tensor([0, 255], dtype=torch.uint8))
        (0.5, 0.5)
    """
    counts = torch.bincount(images.reshape(-1).cpu(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum()
    mean = (counts * values).sum() / n
    var = (counts * (values - mean) ** 2).sum() / n
    return float(mean), float(var.sqrt())


def _size_pair(resize_arg) -> tuple[int, int] | None:
    if resize_arg is None:
        return None
    hint = "e.g. resize=96 or resize=(96, 96)"
    # a str is a sequence too: resize="28" must not become a 2x8 image
    if isinstance(resize_arg, (tuple, list)) and len(resize_arg) in (1, 2):
        pair = tuple(check_int("resize", s, hint=hint) for s in resize_arg)
        pair = pair * 2 if len(pair) == 1 else pair
    else:
        side = check_int("resize", resize_arg, hint=hint)
        pair = (side, side)
    # one float image of this size must fit in memory (before any data is loaded)
    check_memory(4 * pair[0] * pair[1], f"one {pair[0]}x{pair[1]} image (resize={resize_arg})",
                 "use a smaller resize=")
    return pair  # type: ignore[return-value]


def _check_args(name, batch_size, root, device, normalize, seed, rank, world_size, dataset,
                download, crop_padding, drop_last) -> torch.device:
    """Every argument's type and range, naming it (a public API: users pass anything)."""
    check_int("batch_size", batch_size)
    check_int("seed", seed, least=-2**63, most=2**63 - 1)
    check_int("crop_padding", crop_padding, least=0, most=64)
    if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int)
            and 0 <= rank < world_size):
        raise ConfigError(f"need 0 <= rank < world_size, got rank={rank!r}, "
                          f"world_size={world_size!r}")
    for key, value in (("normalize", normalize), ("download", download),
                       ("drop_last", drop_last)):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be True or False, got {value!r}")
    if dataset is None and not isinstance(name, str):
        raise ConfigError(f"unknown dataset {name!r}; name must be a string such as "
                          "'fashion-mnist'")
    if dataset is not None and not isinstance(dataset, Dataset):
        raise ConfigError(f"dataset must be a cnnlab.data.Dataset, got {type(dataset).__name__}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"root must be a folder path (str or pathlib.Path), got {root!r}")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None


class BatchLoader:
    """One split of a :class:`DataModule`: re-iterable, ``len()`` = number of batches.

    Not a ``torch.utils.data.DataLoader``: no workers, no sampler; batches are cut from
    tensors already on the device.
    """

    def __init__(self, module: DataModule, train: bool):
        self.module = module
        self.train = train
        self.batch_size = module.batch_size

    @property
    def num_examples(self) -> int:
        """Examples this rank sees per pass."""
        return len(self.module._indices_count(self.train))

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.train:
            epoch = self.module._next_epoch
            self.module._next_epoch = epoch + 1
            return self.module._iter_train(epoch)
        return self.module._iter_val()

    def __repr__(self) -> str:
        split = "train" if self.train else "val"
        return f"BatchLoader({split}, batches={len(self)}, batch_size={self.batch_size})"


class DataModule:
    """A dataset held on ``device``, served as shuffled float32 batches.

    Args:
        name: ``fashion-mnist``, ``mnist`` or ``synthetic``.
        batch_size: examples per batch; the last, smaller training batch is kept
            (like d2l's and torch's DataLoader) unless it would hold a single image:
            BatchNorm cannot normalise one value per channel in training mode, so
            that one image is left out of the epoch (the shuffle picks another each
            epoch). Validation keeps every example.
        resize: output side (int) or (H, W); bilinear with antialias.
        root: data folder searched first (CLI ``--data-dir``).
        device: where the data and the batches live (``"cpu"``, ``"cuda"``, ...).
        normalize: standardise with the training split's pixel mean and std
            (computed, 0.2860 / 0.3530 for Fashion-MNIST) instead of plain X/255.
        augment: None, or any of ``"crop"`` (pad 4 px at 28x28, random crop), ``"flip"``
            (horizontal) and ``"erase"`` (random erasing) joined by ``+``;
            training batches only.
        seed: seeds the shuffle and the augmentation (with the epoch and rank).
        num_train, num_val: use only the first N training / test examples.
        rank, world_size: this process's shard for data-parallel training.
        dataset: a ready :class:`Dataset` to serve instead of loading ``name``.
        download: allow downloading missing files.
        drop_last: drop any partial last training batch (every step sees one shape:
            what ``torch.compile`` wants, to compile once).

    Example:
        >>> dm = DataModule("synthetic", batch_size=100, resize=(32, 32), augment="crop+flip",
        ...                 num_train=250, num_val=100)
        >>> dm.set_epoch(3)  # epoch 3's shuffle and augmentation, whatever ran before
        >>> [tuple(X.shape) for X, _ in dm.train_dataloader()]
        [(100, 1, 32, 32), (100, 1, 32, 32), (50, 1, 32, 32)]
        >>> dm.text_labels([0, 1]), dm.image_size
        (['square', 'circle'], (32, 32))
    """

    def __init__(self, name: str = "fashion-mnist", batch_size: int = 128, resize=None,
                 root: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 normalize: bool = False, augment=None, seed: int = 0,
                 num_train: int | None = None, num_val: int | None = None,
                 rank: int = 0, world_size: int = 1, dataset: Dataset | None = None,
                 download: bool = True, crop_padding: int = 4, drop_last: bool = False):
        device = _check_args(name, batch_size, root, device, normalize, seed, rank, world_size,
                             dataset, download, crop_padding, drop_last)
        self.batch_size = batch_size
        self.resize = _size_pair(resize)
        self.augment = parse_augment(augment)
        self.normalize = bool(normalize)
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.crop_padding = int(crop_padding)
        self.drop_last = bool(drop_last)
        self.device = torch.device(device)
        self.root = root
        # the synthetic images are always those of seed 0: `seed` only drives shuffling
        # and augmentation, so runs with different seeds see the same data
        ds = dataset if dataset is not None else load_dataset(name, root=root, seed=0,
                                                              download=download)
        self.name = ds.name
        self.classes = list(ds.classes)
        self._stats_images = ds.train_images  # the full training split, for mean/std
        self._stats: tuple[float, float] | None = None
        if self.normalize:
            self._stats = pixel_mean_std(ds.train_images)
        n_train = self._subset(num_train, len(ds.train_labels), "num_train")
        n_val = self._subset(num_val, len(ds.test_labels), "num_val")
        # the one move to the device
        self._train_X = ds.train_images[:n_train].contiguous().to(self.device)
        self._train_y = ds.train_labels[:n_train].to(self.device)
        self._val_X = ds.test_images[:n_val].contiguous().to(self.device)
        self._val_y = ds.test_labels[:n_val].to(self.device)
        self._next_epoch = 0
        # the largest float batch make_batch will build must fit, before the first one
        # (on a GPU the CUDA allocator says "out of memory" itself)
        h, w = self.image_size
        n = min(batch_size, max(n_train, n_val)) if self.device.type == "cpu" else 0
        check_memory(4 * n * self.in_channels * h * w,
                     f"a batch of {n} images of {self.in_channels}x{h}x{w} "
                     f"(batch_size={batch_size}, resize={resize})",
                     "use a smaller batch_size= or resize=")

    @staticmethod
    def _subset(n: int | None, available: int, what: str) -> int:
        if n is None:
            return available
        return check_int(what, n, most=available)

    # ----------------------------------------------------------------- properties
    @property
    def mean(self) -> float:
        """Pixel mean of the whole training split in [0, 1] (0.2860 for Fashion-MNIST)."""
        if self._stats is None:
            self._stats = pixel_mean_std(self._stats_images)
        return self._stats[0]

    @property
    def std(self) -> float:
        """Pixel standard deviation of the training split in [0, 1] (0.3530 for Fashion-MNIST)."""
        if self._stats is None:
            self._stats = pixel_mean_std(self._stats_images)
        return self._stats[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self._train_X.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return self.resize or (int(self._train_X.shape[2]), int(self._train_X.shape[3]))

    @property
    def num_train(self) -> int:
        return int(self._train_y.shape[0])

    @property
    def num_val(self) -> int:
        return int(self._val_y.shape[0])

    @property
    def epoch(self) -> int:
        """The epoch the next pass over the training loader will be."""
        return self._next_epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next training pass epoch ``epoch`` (its shuffle and augmentation)."""
        self._next_epoch = int(epoch)

    def text_labels(self, indices) -> list[str]:
        """Class names of label indices (an int, a sequence or a tensor).

        Example:
            >>> DataModule("synthetic", num_train=10, num_val=10).text_labels([0, 9])
            ['square', 'dots']
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.reshape(-1).tolist()
        elif isinstance(indices, int):
            indices = [indices]
        return [self.classes[int(i)] for i in indices]

    # ------------------------------------------------------------------ loaders
    def train_dataloader(self) -> BatchLoader:
        return BatchLoader(self, train=True)

    def val_dataloader(self) -> BatchLoader:
        return BatchLoader(self, train=False)

    def get_dataloader(self, train: bool) -> BatchLoader:
        """d2l's name: the training loader when ``train`` else the validation loader."""
        return self.train_dataloader() if train else self.val_dataloader()

    def _indices_count(self, train: bool) -> range:
        if train:
            return range(self._train_count())
        n = self.num_val
        if self.world_size == 1:
            return range(n)
        return range(self.rank, n, self.world_size)  # every val example on exactly one rank

    def train_indices(self, epoch: int) -> torch.Tensor:
        """This rank's training-example order for ``epoch`` (CPU int64)."""
        perm = torch.randperm(self.num_train,
                              generator=torch.Generator().manual_seed(_seed_of(self.seed, epoch)))
        if self.world_size > 1:
            per_rank = self.num_train // self.world_size
            perm = perm[:per_rank * self.world_size][self.rank::self.world_size]
        return perm[:self._train_count()]

    def _train_count(self) -> int:
        """Training examples this rank uses per epoch: its shard (equal shards, remainder
        dropped, so that ranks step together), less a last batch of one image, or any
        partial last batch with ``drop_last``."""
        n = self.num_train // self.world_size
        full, rest = divmod(n, self.batch_size)
        if full and rest and (self.drop_last or rest == 1):
            return n - rest
        return n

    def _iter_train(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.train_indices(epoch).to(self.device)
        # on the device: augmentation copies no random numbers from the host per batch
        gen = device_generator(self.device, _seed_of(self.seed, epoch, self.rank, 1))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            # index_select, not X[idx]: the same rows, 15 instead of 78 us per batch on CPU
            X, y = self._train_X.index_select(0, idx), self._train_y.index_select(0, idx)
            yield self.make_batch(X, train=True, generator=gen), y

    def _iter_val(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.world_size == 1:
            for start in range(0, self.num_val, self.batch_size):
                sl = slice(start, start + self.batch_size)
                yield self.make_batch(self._val_X[sl], train=False), self._val_y[sl]
            return
        order = torch.arange(self.rank, self.num_val, self.world_size, device=self.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            X, y = self._val_X.index_select(0, idx), self._val_y.index_select(0, idx)
            yield self.make_batch(X, train=False), y

    def make_batch(self, X: torch.Tensor, train: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (B, C, 28, 28) on the device -> the float32 batch the model sees."""
        aug = self.augment if train else ()
        if aug and generator is None:
            generator = device_generator(X.device, self.seed)
        # crop and flip act on the small uint8 images: cheaper than after the resize
        if "crop" in aug:
            X = random_crop(X, self.crop_padding, generator)
        if "flip" in aug:
            X = random_flip(X, generator)
        if self.resize is not None and tuple(X.shape[-2:]) != self.resize:
            # conversion, resize and normalisation in one pass over the output
            # (native kernels on CPU; the same values through PyTorch otherwise)
            scale, shift = 1 / 255, 0.0
            if self.normalize:
                scale, shift = 1 / (255 * self.std), -self.mean / self.std
            X = resize_uint8(X, self.resize, scale, shift)
        else:
            X = X.to(torch.float32).div_(255.0)
            if self.normalize:
                X = X.sub_(self.mean).div_(self.std)
        if "erase" in aug:  # after normalisation, so erased pixels hold the mean (0)
            X = random_erase(X, generator)
        return X

    def visualize(self, batch: tuple[torch.Tensor, torch.Tensor] | None = None, nrows: int = 1,
                  ncols: int = 8, labels: Sequence[str] | None = None):
        """A matplotlib figure of images with their class names (the book's ``visualize``)."""
        from cnnlab.data.show import image_grid

        if batch is None:
            batch = next(iter(self.val_dataloader()))
        X, y = batch
        n = min(nrows * ncols, len(X))
        labels = list(labels) if labels is not None else self.text_labels(y[:n])
        return image_grid(X[:n], labels, nrows=nrows, ncols=ncols)

    def __repr__(self) -> str:
        h, w = self.image_size
        return (f"DataModule({self.name!r}, train={self.num_train}, val={self.num_val}, "
                f"batch_size={self.batch_size}, image={self.in_channels}x{h}x{w}, "
                f"device={self.device}, augment={'+'.join(self.augment) or None})")
