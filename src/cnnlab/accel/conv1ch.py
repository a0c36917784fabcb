"""The convolution of one-channel images (LeNet's ``conv1``, fastnet's stem) in native code.

Why (benchmarks/results/lenet.md): oneDNN's kernels for a single input channel
run at a few GFLOP/s on this CPU class, in both layouts, and the first layer's
weight gradient was the largest single piece of a LeNet step. The C kernels of
:mod:`cnnlab.native` compute the forward and the weight/bias gradients with each
output pixel's channels in one or two AVX vectors, parallel over the batch, and
write the output in NHWC memory (``torch.channels_last``), the layout the next
layers run fastest in. No input gradient: images need none (when the input does
require one, the layer is PyTorch's). Same values as ``F.conv2d`` to float
rounding (tested, gradients too).

Example:
    >>> import torch
    >>> conv = NativeConv1ch(1, 6, 5, padding=2)
    >>> X = torch.rand(4, 1, 28, 28)
    >>> ref = torch.nn.functional.conv2d(X, conv.weight, conv.bias, padding=2)
    >>> bool(torch.allclose(conv(X), ref, atol=1e-5))
    True
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import native

__all__ = ["NativeConv1ch", "conv1ch_supported"]

MAX_OUT_CHANNELS = 16  # one or two 8-float vectors per output pixel
MAX_KERNEL = 7


def conv1ch_supported(m: nn.Module) -> bool:
    """Whether ``m`` is an ``nn.Conv2d`` these kernels compute."""
    if type(m) not in (nn.Conv2d, NativeConv1ch):
        return False
    k, p = m.kernel_size, m.padding
    return (m.in_channels == 1 and m.out_channels <= MAX_OUT_CHANNELS and m.groups == 1
            and m.stride == (1, 1) and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and not isinstance(p, str) and p[0] == p[1] and k[0] == k[1] <= MAX_KERNEL)


def _padded(t: torch.Tensor, width: int) -> torch.Tensor:
    """(rows, M) -> (rows, width) contiguous float32, zero columns after M."""
    out = t.new_zeros(t.shape[0], width, dtype=torch.float32)
    out[:, : t.shape[1]] = t
    return out


class _Conv1ch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, weight, bias, padding, lib):
        B, _, H, W = X.shape
        M, _, k, _ = weight.shape
        Mp = 8 if M <= 8 else 16
        Ho, Wo = H + 2 * padding - k + 1, W + 2 * padding - k + 1
        Wt = _padded(weight.detach().reshape(M, k * k).t(), Mp)
        b = _padded((bias.detach() if bias is not None else weight.new_zeros(M))[None], Mp)
        X = X.contiguous()
        Y = torch.empty(B, M, Ho, Wo, memory_format=torch.channels_last)
        f32 = ctypes.c_float
        rc = lib.cnnlab_conv1ch_fwd(native.ptr(X, f32), native.ptr(Wt, f32), native.ptr(b, f32),
                                    native.ptr(Y, f32), B, H, W, M, k, padding)
        if rc != 0:  # the sizes were checked by the caller; a build without AVX2
            Y = F.conv2d(X, weight.detach(), None if bias is None else bias.detach(),
                         padding=padding).contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(X, weight)
        ctx.meta = (padding, lib, bias is not None)
        return Y

    @staticmethod
    def backward(ctx, dY):
        X, weight = ctx.saved_tensors
        padding, lib, has_bias = ctx.meta
        B, _, H, W = X.shape
        M, _, k, _ = weight.shape
        Mp = 8 if M <= 8 else 16
        dY = dY.contiguous(memory_format=torch.channels_last)
        dWt = torch.empty(k * k, Mp)
        db = torch.empty(Mp)
        f32 = ctypes.c_float
        rc = lib.cnnlab_conv1ch_wgrad(native.ptr(X, f32), native.ptr(dY, f32),
                                      native.ptr(dWt, f32), native.ptr(db, f32),
                                      B, H, W, M, k, padding)
        if rc != 0:
            raise RuntimeError("cnnlab native conv1ch_wgrad refused sizes its forward took")
        dW = dWt[:, :M].t().reshape(M, 1, k, k).to(weight.dtype)
        return None, dW, (db[:M].clone() if has_bias else None), None, None


class NativeConv1ch(nn.Conv2d):
    """``nn.Conv2d`` with one input channel whose training step runs the native kernels.

    Same parameters and ``state_dict`` as the ``nn.Conv2d`` it replaces. Falls back to
    PyTorch when the native library is missing, on other devices/dtypes, or when the
    input needs a gradient.
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        lib = native.load()
        if (lib is None or not conv1ch_supported(self) or X.dim() != 4 or X.shape[1] != 1
                or X.device.type != "cpu" or X.dtype != torch.float32
                or self.weight.dtype != torch.float32 or X.requires_grad
                or min(X.shape[-2:]) + 2 * self.padding[0] < self.kernel_size[0]
                or X.shape[0] == 0):
            return super().forward(X)
        return _Conv1ch.apply(X, self.weight, self.bias, self.padding[0], lib)
