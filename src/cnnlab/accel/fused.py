"""Sigmoid then k x k average pooling (LeNet's ``act`` + ``pool``, book 7.6) in one native pass.

Why (torch.profiler on LeNet, benchmarks/results/lenet.md): the two sigmoids and two
average pools of a step, forward and backward, cost a large share of it, each a
separate pass over an activation larger than the cache. The C kernel of :mod:`cnnlab.native` reads
the pre-activation once and writes only the pooled output and the sigmoid the
backward needs (what torch's sigmoid keeps too); the backward is one pass. It runs as
the custom op ``torch.ops.cnnlab.sigmoid_avg_pool2d`` (:mod:`cnnlab.native.ops`).
Same values as ``F.avg_pool2d(torch.sigmoid(Z), k)`` to ~1e-7 (tested, gradients
too); for anything the op does not take it is exactly that.

Example:
    >>> import torch
    >>> Z = torch.randn(2, 6, 28, 28)
    >>> ref = torch.nn.functional.avg_pool2d(torch.sigmoid(Z), 2)
    >>> bool(torch.allclose(sigmoid_avg_pool2d(Z, 2), ref, atol=1e-6))
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.native import ops

__all__ = ["sigmoid_avg_pool2d", "SigmoidAvgPool2d", "SigmoidInNextPool", "square_side"]


def square_side(v: Any) -> int | None:
    """The common side of a square int/tuple size, else None."""
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    return None


def sigmoid_avg_pool2d(Z: torch.Tensor, kernel_size: int = 2) -> torch.Tensor:
    """``F.avg_pool2d(torch.sigmoid(Z), kernel_size)`` (stride = kernel, no padding)."""
    k = square_side(kernel_size)
    if (k is None or Z.dim() != 4 or not ops.accepts(Z) or k < 1 or min(Z.shape[-2:]) < k
            or Z.numel() == 0):
        return F.avg_pool2d(torch.sigmoid(Z), kernel_size)
    return ops.sigmoid_avg_pool2d(Z, k)[0]


class SigmoidInNextPool(nn.Sigmoid):
    """A ``nn.Sigmoid`` whose work the following :class:`SigmoidAvgPool2d` does: identity.

    Put there, for the length of a ``with`` block, by :func:`cnnlab.accel.accelerated`,
    which never replaces a module that has hooks (one here would see the pre-activation).
    Checkpoints are unaffected (no parameters).
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def extra_repr(self) -> str:
        return "applied by the next pool"


class SigmoidAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` (kernel = stride) that first applies the sigmoid it replaced."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return sigmoid_avg_pool2d(X, self.kernel_size)
