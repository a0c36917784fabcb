"""Small stride-1 convolutions (LeNet's 1 -> 6 and 6 -> 16, fastnet's stem) in native code.

Why (benchmarks/results/lenet.md): oneDNN's kernels for such channel counts run at
a fraction of this CPU's rate; the one-channel first layer's forward and weight
gradient were the largest single pieces of a LeNet step. The C kernels of
:mod:`cnnlab.native` keep each output pixel's channels in one or two AVX
vectors, compute four pixels at a time, run parallel over the batch and work in
NHWC memory (``torch.channels_last``), which is also the layout they return. What
runs where was measured per piece (``benchmarks/conv_pieces.py``, batch 128, 2
threads): on one input channel ours is faster for the forward and far faster for the
weight gradient; on LeNet's 6 -> 16 layer the forwards are on par (1.1-1.5 ms each),
and our weight gradient and input gradient are the faster ones (the input gradient
is a scatter of each output pixel's gradient into the input rows it read: 1.5 ms
against 3.2 ms for oneDNN's transposed convolution, which multiplies the zero border
of the padded output gradient too). Same values as ``F.conv2d`` to float rounding
(tested, all gradients too).

Example:
    >>> import torch
    >>> conv = NativeConv2d(6, 16, 5)
    >>> X = torch.rand(4, 6, 14, 14)
    >>> ref = torch.nn.functional.conv2d(X, conv.weight, conv.bias)
    >>> bool(torch.allclose(conv(X), ref, atol=1e-5))
    True
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import native

__all__ = ["NativeConv2d", "native_conv_supported", "native_dgrad_supported"]

MAX_CHANNELS = 16  # in and out: one or two 8-float vectors per pixel
MAX_KERNEL = 7
MAX_DGRAD_VECTORS = 6  # cnnlab_conv_dgrad's accumulators: a kernel row's span, in 8-float vectors


def native_conv_supported(m: nn.Module) -> bool:
    """Whether ``m`` is an ``nn.Conv2d`` these kernels compute."""
    if type(m) not in (nn.Conv2d, NativeConv2d):
        return False
    k, p = m.kernel_size, m.padding
    return (m.in_channels <= MAX_CHANNELS and m.out_channels <= MAX_CHANNELS
            and m.groups == 1 and m.stride == (1, 1) and m.dilation == (1, 1)
            and m.padding_mode == "zeros" and not isinstance(p, str) and p[0] == p[1]
            and k[0] == k[1] <= MAX_KERNEL)


def native_dgrad_supported(m: nn.Module) -> bool:
    """Whether the native input-gradient kernel takes ``m`` (a k > 1 convolution whose
    kernel row spans at most MAX_DGRAD_VECTORS vectors: k * in_channels <= 41)."""
    if not native_conv_supported(m):
        return False
    k, p = m.kernel_size[0], m.padding[0]
    return k > 1 and p < k and (7 + k * m.in_channels + 7) // 8 <= MAX_DGRAD_VECTORS


def _lanes(M: int) -> int:
    """Mp: M output channels padded to the kernels' one or two 8-float vectors."""
    return 8 if M <= 8 else 16


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """(M, C, k, k) -> the kernels' (k*k*C, Mp) float32 table, zero columns after M."""
    M, C, k, _ = weight.shape
    Mp = _lanes(M)
    out = weight.new_zeros(k * k * C, Mp, dtype=torch.float32)
    out[:, :M] = weight.detach().permute(2, 3, 1, 0).reshape(k * k * C, M)
    return out


def _run_fwd(lib, X: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
             padding: int) -> torch.Tensor:
    """NHWC conv of X (B, C, H, W in channels_last memory) by weight (M, C, k, k)."""
    B, C, H, W = X.shape
    M, _, k, _ = weight.shape
    b = weight.new_zeros(_lanes(M), dtype=torch.float32)
    if bias is not None:
        b[:M] = bias.detach()
    Wt = _taps(weight)
    Y = torch.empty(B, M, H + 2 * padding - k + 1, W + 2 * padding - k + 1,
                    memory_format=torch.channels_last)
    f32 = ctypes.c_float
    rc = lib.cnnlab_conv_fwd(native.ptr(X, f32), native.ptr(Wt, f32), native.ptr(b, f32),
                             native.ptr(Y, f32), B, H, W, C, M, k, padding)
    if rc != 0:  # a build without AVX2: the caller's checks passed, the CPU lacks it
        Y = F.conv2d(X, weight.detach(), None if bias is None else bias.detach(),
                     padding=padding).contiguous(memory_format=torch.channels_last)
    return Y


def _run_dgrad(lib, dY: torch.Tensor, weight: torch.Tensor, shape: torch.Size,
               padding: int) -> torch.Tensor:
    """The input gradient (NHWC) of a convolution with output gradient dY (NHWC)."""
    B, C, H, W = shape
    M, _, k, _ = weight.shape
    dX = torch.empty(B, C, H, W, memory_format=torch.channels_last)
    Wc = weight.detach().contiguous()  # (M, C, k, k); kept alive while C reads it
    f32 = ctypes.c_float
    rc = lib.cnnlab_conv_dgrad(native.ptr(dY, f32), native.ptr(Wc, f32), native.ptr(dX, f32),
                               B, H, W, C, M, k, padding)
    if rc != 0:  # sizes the kernel does not take, no AVX2, or inf/NaN in dY
        dX = F.conv_transpose2d(dY, weight.detach(), padding=padding)
    return dX


class _NativeConv(torch.autograd.Function):
    """Forward: native for one input channel, else oneDNN (in NHWC it is the faster);
    input gradient: the native scatter kernel (oneDNN's transposed convolution where it
    does not apply); weight/bias gradient: native."""

    @staticmethod
    def forward(ctx, X, weight, bias, padding, lib):
        X = X.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(X, weight)
        ctx.meta = (padding, lib, bias is not None)
        if X.shape[1] == 1:
            return _run_fwd(lib, X, weight, bias, padding)
        return F.conv2d(X, weight.detach(), None if bias is None else bias.detach(),
                        padding=padding).contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, dY):
        X, weight = ctx.saved_tensors
        padding, lib, has_bias = ctx.meta
        B, C, H, W = X.shape
        M, _, k, _ = weight.shape
        dY = dY.contiguous(memory_format=torch.channels_last)
        dX = dW = db = None
        if ctx.needs_input_grad[0]:
            dX = _run_dgrad(lib, dY, weight, X.shape, padding)
        if ctx.needs_input_grad[1] or (has_bias and ctx.needs_input_grad[2]):
            dWt = torch.empty(k * k * C, _lanes(M))
            dbp = torch.empty(_lanes(M))
            f32 = ctypes.c_float
            rc = lib.cnnlab_conv_wgrad(native.ptr(X, f32), native.ptr(dY, f32),
                                       native.ptr(dWt, f32), native.ptr(dbp, f32),
                                       B, H, W, C, M, k, padding)
            if rc != 0:  # a build without AVX2
                dW = torch.nn.grad.conv2d_weight(X, weight.shape, dY, padding=padding)
                dbp = dY.sum((0, 2, 3))
            else:
                dW = dWt[:, :M].reshape(k, k, C, M).permute(3, 2, 0, 1).contiguous()
            db = dbp[:M].clone() if has_bias else None
        return dX, dW, db, None, None


class NativeConv2d(nn.Conv2d):
    """``nn.Conv2d`` (few channels, stride 1) whose training step runs the native kernels.

    Same parameters and ``state_dict`` as the ``nn.Conv2d`` it replaces. Falls back to
    PyTorch when the native library is missing, on other devices or dtypes, or under
    autocast.
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        lib = native.load()
        if (lib is None or not native_conv_supported(self) or X.dim() != 4
                or X.shape[1] != self.in_channels or X.device.type != "cpu"
                or X.dtype != torch.float32 or self.weight.dtype != torch.float32
                or torch.is_autocast_enabled("cpu") or X.shape[0] == 0
                or min(X.shape[-2:]) + 2 * self.padding[0] < self.kernel_size[0]):
            return super().forward(X)
        return _NativeConv.apply(X, self.weight, self.bias, self.padding[0], lib)
