"""Datasets in memory: the IDX reader, dataset search and download, the DataModule.

``load_fashion_mnist()``/``load_mnist()`` find (or download) the four IDX files and
return a :class:`Dataset` of uint8 tensors; ``load_dataset("synthetic")`` makes a
learnable 10-class shapes set anywhere. :class:`DataModule` serves shuffled,
resized, optionally augmented float32 batches straight from the device.

Example:
    >>> from cnnlab.data import DataModule
    >>> dm = DataModule("synthetic", batch_size=32, num_train=64, num_val=32)
    >>> [len(dm.train_dataloader()), len(dm.val_dataloader()), dm.num_classes]
    [2, 1, 10]
"""

from __future__ import annotations

from importlib import import_module

from cnnlab.data.names import AUGMENTS, DATASET_NAMES, parse_augment

# name -> submodule. The rest load on first use, so that the CLI and TrainConfig can
# import the names above without importing torch (`cnnlab --help` stays fast).
_LAZY = {
    "DataModule": "datamodule", "BatchLoader": "datamodule", "pixel_mean_std": "datamodule",
    "Dataset": "datasets", "load_dataset": "datasets", "load_fashion_mnist": "datasets",
    "load_mnist": "datasets", "read_idx": "idx", "download": "sources",
    "find_dataset_dir": "sources", "locate": "sources", "make_synthetic": "synthetic",
}

__all__ = ["DataModule", "BatchLoader", "Dataset", "DATASET_NAMES", "AUGMENTS", "parse_augment",
           "load_dataset", "load_fashion_mnist", "load_mnist", "make_synthetic", "read_idx",
           "locate", "download", "find_dataset_dir", "is_available", "pixel_mean_std"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def is_available(name: str = "fashion-mnist", root=None) -> bool:
    """True when the files of ``name`` are on the search path (never downloads).

    Example:
        >>> is_available("synthetic")
        True
    """
    if name == "synthetic":
        return True
    from cnnlab.data.sources import find_dataset_dir

    return find_dataset_dir(name, root) is not None
