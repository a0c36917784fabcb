"""The three d2l 0.17 names whose meaning 1.0.3 changed: ``Residual``, ``try_all_gpus``,
``download``. :mod:`cnnlab.d2l017` serves these; :mod:`cnnlab.d2l` has 1.0.3's.

* ``Residual(input_channels, num_channels, use_1x1conv=False, strides=1)``: eager layers
  (1.0.3: ``Residual(num_channels, ...)`` with Lazy layers).
* ``try_all_gpus()``: ``[cpu()]`` without a GPU (1.0.3: ``[]``).
* ``download(name, cache_dir='../data')``: a ``DATA_HUB`` name only (1.0.3 takes a URL,
  a folder and a hash).

Example:
    >>> import torch
    >>> from cnnlab import d2l017 as d2l
    >>> d2l.Residual(3, 6, use_1x1conv=True, strides=2)(torch.rand(4, 3, 6, 6)).shape
    torch.Size([4, 6, 3, 3])
"""

from __future__ import annotations

import os

import torch

from cnnlab._d2l import hub
from cnnlab._d2l.utils import cpu
from cnnlab._d2l.utils import try_all_gpus as _all_gpus
from cnnlab.errors import DataNotFoundError
from cnnlab.models.resnet import ResidualBlock


class Residual(ResidualBlock):
    """ResNet's residual block (0.17, 7.6): 3x3 conv-BN-ReLU, 3x3 conv-BN, + input, ReLU.

    The zoo's ``ResidualBlock`` (its layers and forward) with 0.17's signature, less two
    things it does at construction: Xavier initialisation (0.17 keeps PyTorch's default,
    so the same seed gives the book's values) and the check of a shortcut that cannot
    fit (0.17 fails in the forward pass).
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1) -> None:
        super().__init__(input_channels, num_channels, use_1x1conv, strides, book=True)


def try_all_gpus() -> list[torch.device]:
    """All CUDA devices, or ``[cpu()]`` when there is none (0.17's meaning)."""
    return _all_gpus() or [cpu()]


def download(name: str, cache_dir: str = os.path.join("..", "data")) -> str:
    """Download the ``DATA_HUB`` entry ``name`` into ``cache_dir``; return the local path."""
    if name not in hub.DATA_HUB:
        raise DataNotFoundError(f"{name!r} is not in DATA_HUB; known names: "
                                f"{sorted(hub.DATA_HUB)}")
    url, sha1_hash = hub.DATA_HUB[name]
    return hub.download(url, cache_dir, sha1_hash)
