"""Sigmoid then k x k average pooling (LeNet's ``act`` + ``pool``, book 7.6) in one native pass.

Why (torch.profiler on LeNet, 2 threads, benchmarks/results/lenet.md): the two
sigmoids and two average pools of a step, forward and backward, cost about a
quarter of it (4.2 of 17 ms), each a separate pass over a 2.4 MB activation. The
C kernel of :mod:`cnnlab.native` reads the pre-activation once and writes only the
pooled output and the sigmoid the backward needs (what torch's sigmoid keeps too);
the backward is one pass. Same values as
``F.avg_pool2d(torch.sigmoid(Z), k)`` to ~1e-7 (tested, gradients too); where the
native library is missing it is exactly that.

Example:
    >>> import torch
    >>> Z = torch.randn(2, 6, 28, 28)
    >>> ref = torch.nn.functional.avg_pool2d(torch.sigmoid(Z), 2)
    >>> bool(torch.allclose(sigmoid_avg_pool2d(Z, 2), ref, atol=1e-6))
    True
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import native

__all__ = ["sigmoid_avg_pool2d", "SigmoidAvgPool2d", "SigmoidInNextPool"]


def _layout(Z: torch.Tensor) -> str | None:
    """Which dense layout Z has: NCHW, CNHW (cnnlab.accel.kernels' convs) or NHWC."""
    B, C, H, W = Z.shape
    s = Z.stride()
    if s[3] == 1 and s[2] == W:
        if s[1] == H * W and s[0] == C * H * W:
            return "nchw"
        if s[0] == H * W and s[1] == B * H * W:
            return "cnhw"
    if Z.is_contiguous(memory_format=torch.channels_last):
        return "nhwc"
    return None


def _like(Z: torch.Tensor, layout: str, H: int, W: int) -> torch.Tensor:
    B, C = Z.shape[:2]
    if layout == "nhwc":
        return torch.empty(B, C, H, W, dtype=Z.dtype, memory_format=torch.channels_last)
    if layout == "cnhw":
        return Z.new_empty(C, B, H, W).transpose(0, 1)
    return Z.new_empty(B, C, H, W)


def _to_layout(G: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nhwc":
        return G.contiguous(memory_format=torch.channels_last)
    if layout == "cnhw":
        return G.transpose(0, 1).contiguous().transpose(0, 1)
    return G.contiguous()


def _geometry(Z: torch.Tensor, layout: str) -> tuple[int, int]:
    """(planes, C) of the C kernel: NHWC rows hold W pixels of C channels."""
    B, C = Z.shape[:2]
    return (B, C) if layout == "nhwc" else (B * C, 1)


class _SigmoidAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Z, k, lib, layout):
        B, C, H, W = Z.shape
        P = _like(Z, layout, H // k, W // k)
        S = torch.empty_like(Z)  # the sigmoid, kept for the backward (as torch.sigmoid does)
        planes, c = _geometry(Z, layout)
        f32 = ctypes.c_float
        lib.cnnlab_sigmoid_avgpool_fwd(native.ptr(Z, f32), native.ptr(S, f32), native.ptr(P, f32),
                                       planes, H, W, c, k)
        ctx.save_for_backward(S)
        ctx.meta = (k, lib, layout)
        return P

    @staticmethod
    def backward(ctx, dP):
        (S,) = ctx.saved_tensors
        k, lib, layout = ctx.meta
        dP = _to_layout(dP, layout)
        dZ = torch.empty_like(S)  # preserve_format: Z's strides
        B, C, H, W = S.shape
        planes, c = _geometry(S, layout)
        f32 = ctypes.c_float
        lib.cnnlab_sigmoid_avgpool_bwd(native.ptr(S, f32), native.ptr(dP, f32),
                                       native.ptr(dZ, f32), planes, H, W, c, k)
        return dZ, None, None, None


def sigmoid_avg_pool2d(Z: torch.Tensor, kernel_size: int = 2) -> torch.Tensor:
    """``F.avg_pool2d(torch.sigmoid(Z), kernel_size)`` (stride = kernel, no padding)."""
    k = int(kernel_size)
    lib = native.load()
    layout = _layout(Z) if Z.dim() == 4 else None
    if (lib is None or layout is None or Z.device.type != "cpu" or Z.dtype != torch.float32
            or k < 1 or min(Z.shape[-2:]) < k or Z.numel() == 0):
        return F.avg_pool2d(torch.sigmoid(Z), k)
    return _SigmoidAvgPool.apply(Z, k, lib, layout)


class SigmoidInNextPool(nn.Sigmoid):
    """A ``nn.Sigmoid`` whose work the following :class:`SigmoidAvgPool2d` does: identity.

    Put there by :func:`cnnlab.accel.accelerate` (the Trainer's CPU runs, training and
    evaluation); a forward hook on it sees the pre-activation. Checkpoints are
    unaffected (no parameters).
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def extra_repr(self) -> str:
        return "applied by the next pool"


class SigmoidAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` (kernel = stride) that first applies the sigmoid it replaced."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return sigmoid_avg_pool2d(X, self.kernel_size)
