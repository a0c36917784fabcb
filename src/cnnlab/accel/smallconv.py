"""Small stride-1 convolutions (LeNet's 1 -> 6 and 6 -> 16, fastnet's stem) in native code.

Why (benchmarks/results/lenet.md): oneDNN's kernels for such channel counts run at
a fraction of this CPU's rate; the one-channel first layer's forward and weight
gradient were the largest single pieces of a LeNet step. The C kernels of
:mod:`cnnlab.native` keep each output pixel's channels in one or two AVX
vectors, compute four pixels at a time, run parallel over the batch and work in
NHWC memory (``torch.channels_last``), which is also the layout they return; on a CPU
with AVX-512 the one-channel layer and the weight gradients use 16-float kernels laid
out for that width instead (``native/avx512.c``). What
runs where was measured per piece (``benchmarks/conv_pieces.py``): on one input
channel the native forward is faster and the native weight gradient far faster; on
LeNet's 6 -> 16 layer the native forward runs where the CPU has AVX-512 (a pixel's 16
channels in one vector; with AVX2 only it is on par with oneDNN's, which then runs), and
the native weight and input gradients are the faster ones (the input gradient is a scatter of
each output pixel's gradient into the input rows it read; oneDNN's transposed
convolution also multiplies the zero border of the padded output gradient). The
layer calls the custom op ``torch.ops.cnnlab.conv2d_small``
(:mod:`cnnlab.native.ops`), so ``torch.compile`` traces through it. Same values as
``F.conv2d`` to float rounding (tested, all gradients too).

Example:
    >>> import torch
    >>> conv = NativeConv2d(6, 16, 5)
    >>> X = torch.rand(4, 6, 14, 14)
    >>> ref = torch.nn.functional.conv2d(X, conv.weight, conv.bias)
    >>> bool(torch.allclose(conv(X), ref, atol=1e-5))
    True
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.native import ops

__all__ = ["NativeConv2d", "native_conv_supported", "native_dgrad_supported"]

MAX_DGRAD_VECTORS = 6  # cnnlab_conv_dgrad's accumulators: a kernel row's span, in 8-float vectors


def native_conv_supported(m: nn.Module) -> bool:
    """Whether ``m`` is an ``nn.Conv2d`` these kernels compute."""
    if type(m) not in (nn.Conv2d, NativeConv2d):
        return False
    k, p = m.kernel_size, m.padding
    return (m.in_channels <= ops.MAX_CHANNELS and m.out_channels <= ops.MAX_CHANNELS
            and m.groups == 1 and m.stride == (1, 1) and m.dilation == (1, 1)
            and m.padding_mode == "zeros" and not isinstance(p, str) and p[0] == p[1]
            and k[0] == k[1] <= ops.MAX_KERNEL)


def native_dgrad_supported(m: nn.Module) -> bool:
    """Whether the native input-gradient kernel takes ``m`` (a k > 1 convolution whose
    kernel row spans at most MAX_DGRAD_VECTORS vectors: k * in_channels <= 41)."""
    if not native_conv_supported(m):
        return False
    k, p = m.kernel_size[0], m.padding[0]
    return k > 1 and p < k and (7 + k * m.in_channels + 7) // 8 <= MAX_DGRAD_VECTORS


def native_conv_for(m: nn.Module) -> NativeConv2d | None:
    """The :class:`NativeConv2d` sharing ``m``'s parameters, for convolutions the native
    kernels pay for: one input channel (native forward and weight gradient), or a
    kernel row the input-gradient kernel takes. 1x1 convolutions stay: matrix products."""
    if not (type(m) is nn.Conv2d and native_conv_supported(m)
            and (m.in_channels == 1 or native_dgrad_supported(m))):
        return None
    new = NativeConv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding,
                       bias=m.bias is not None, device="meta")
    new.weight, new.bias = m.weight, m.bias  # the same Parameters: optimizers, checkpoints
    new.train(m.training)
    return new


class NativeConv2d(nn.Conv2d):
    """``nn.Conv2d`` (few channels, stride 1) whose training step runs the native kernels.

    Same parameters and ``state_dict`` as the ``nn.Conv2d`` it replaces. Takes the
    ``nn.Conv2d`` path for whatever the native op does not take: a configuration the
    kernels do not compute, an input or a parameter that is not a CPU float32 tensor
    (:func:`cnnlab.native.ops.accepts`), or autocast. A batch and weights on different
    devices (a CPU batch with GPU weights) is a clear error.
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.device != self.weight.device:
            # PyTorch itself would compute garbage from meta weights with a CPU batch
            raise ValueError(f"{type(self).__name__}: the batch is on {X.device} but the "
                             f"weights are on {self.weight.device}; move the model and the "
                             "batch to one device (model.to(device), X.to(device))")
        if (not native_conv_supported(self) or X.dim() != 4 or X.shape[0] == 0
                or X.shape[1] != self.in_channels
                or not ops.accepts(X, self.weight, self.bias)
                or torch.is_autocast_enabled("cpu")
                or min(X.shape[-2:]) + 2 * self.padding[0] < self.kernel_size[0]):
            return super().forward(X)
        return ops.conv2d_small(X, self.weight, self.bias, self.padding[0])
