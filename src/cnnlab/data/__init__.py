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

from cnnlab.data.datamodule import DataLoader, DataModule, pixel_mean_std
from cnnlab.data.datasets import (
    DATASET_NAMES,
    Dataset,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from cnnlab.data.idx import read_idx
from cnnlab.data.sources import download, find_dataset_dir, locate
from cnnlab.data.synthetic import make_synthetic

__all__ = ["DataModule", "DataLoader", "Dataset", "DATASET_NAMES", "load_dataset",
           "load_fashion_mnist", "load_mnist", "make_synthetic", "read_idx", "locate",
           "download", "find_dataset_dir", "is_available", "pixel_mean_std"]


def is_available(name: str = "fashion-mnist", root=None) -> bool:
    """True when the files of ``name`` are on the search path (never downloads).

    Example:
        >>> is_available("synthetic")
        True
    """
    if name == "synthetic":
        return True
    return find_dataset_dir(name, root) is not None
