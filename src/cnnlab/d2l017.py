"""d2l 0.17's API: ``from cnnlab import d2l017 as d2l`` in a notebook of d2l 0.17.6.

Everything :mod:`cnnlab.d2l` has, with the three names whose meaning d2l 1.0.3
changed set back to 0.17's: ``Residual(input_channels, num_channels, use_1x1conv=False,
strides=1)`` with eager layers, ``try_all_gpus()`` returning ``[cpu()]`` without a GPU,
and ``download(name, cache_dir='../data')`` taking a ``DATA_HUB`` name. Every other
object is the very one of :mod:`cnnlab.d2l` (so a method a notebook adds to a class is
shared).
A 0.17 notebook that uses none of the three also runs with ``from cnnlab import d2l``.

Example:
    >>> import torch
    >>> from cnnlab import d2l017 as d2l
    >>> X, y = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 10)
    >>> X.shape, y.shape, d2l.try_all_gpus()[-1].type in ("cpu", "cuda")
    (torch.Size([10, 2]), torch.Size([10, 1]), True)
"""

from __future__ import annotations

from typing import Any

import cnnlab.d2l as _v1
from cnnlab._d2l.v017 import Residual, download, try_all_gpus

_CHANGED = {"Residual": Residual, "download": download, "try_all_gpus": try_all_gpus}

# the 1.0.3 module's public objects (its __all__ and the book's tensor aliases), then 0.17's
globals().update({k: v for k, v in vars(_v1).items()
                  if not k.startswith("_") and k not in _CHANGED and k != "annotations"})

__all__ = sorted(set(_v1.__all__) - {"ResNeXtBlock"})


def __getattr__(name: str) -> Any:
    # d2l.plt: pyplot on first use, as in cnnlab.d2l
    if name == "plt":
        return _v1.plt
    raise AttributeError(f"module 'cnnlab.d2l017' has no attribute {name!r}")
