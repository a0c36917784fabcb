"""Swap the layers of a built model for faster CPU equivalents, keeping every name.

``accelerate(model, device)`` replaces, in place, each ``nn.Conv2d`` whose shape
the fast kernels of :mod:`cnnlab.accel.kernels` handle (stride 1, no groups, few
channels, e.g. LeNet's 1->6 and 6->16) with :class:`FastConv2d`, and each
non-overlapping ``nn.AvgPool2d`` with :class:`FastAvgPool2d`. Both are subclasses
of the torch modules with the same parameter objects, so ``state_dict`` keys,
optimizers built before or after, checkpoints and printing are unchanged. On a
non-CPU device, or for a model with nothing to swap, it is a no-op. With the
native kernels of :mod:`cnnlab.native` built, small convolutions (one input channel,
or a kernel row the input-gradient kernel takes) become
:class:`~cnnlab.accel.smallconv.NativeConv2d` and each ``Sigmoid`` + ``AvgPool2d``
pair runs as one kernel (:mod:`cnnlab.accel.fused`); on two or more threads the
other small convolutions keep oneDNN's kernels with NHWC weights. Measured gains
(LeNet step on 2 threads, 21.1 -> 11.0 ms): benchmarks/results/lenet.md.
:func:`accelerated` does the same for a ``with`` block and puts the original
layer objects back afterwards (the d2l compat Trainer uses it).

Example:
    >>> import torch
    >>> from cnnlab.models import create_model
    >>> from cnnlab.accel import accelerate
    >>> net = create_model("lenet")
    >>> keys = list(net.state_dict())
    >>> net = accelerate(net, "cpu", threads=1, use_native=False)
    >>> list(net.state_dict()) == keys
    True
    >>> type(net.conv1).__name__
    'FastConv2d'
    >>> net2 = accelerate(create_model("lenet"), "cpu", threads=2)  # NHWC weights instead
    >>> net2.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from cnnlab import native
from cnnlab.accel.fused import SigmoidAvgPool2d, SigmoidInNextPool
from cnnlab.accel.kernels import avg_pool2d_fast, conv2d_fast, conv_supported
from cnnlab.accel.memory import keep_freed_memory
from cnnlab.accel.smallconv import NativeConv2d, native_conv_supported, native_dgrad_supported

__all__ = ["FastAvgPool2d", "FastConv2d", "accelerate", "accelerated", "keep_freed_memory"]

# Where the custom kernels pay (measured on 2 EPYC cores, benchmarks/results/lenet.md):
# few channels, where oneDNN's backward kernels are latency-bound. Wider layers keep
# the library convolution.
MAX_IN_CHANNELS = 16
MAX_OUT_CHANNELS = 32


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose training step uses :func:`cnnlab.accel.kernels.conv2d_fast`."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if (isinstance(self.padding, str) or self.padding_mode != "zeros"
                or not conv_supported(X, self.weight, self.stride, self.dilation, self.groups)):
            return super().forward(X)
        return conv2d_fast(X, self.weight, self.bias, self.padding)


class FastAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` (kernel = stride, no padding) computed by reshaped sums."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() != 4 or X.device.type != "cpu" or not X.is_floating_point() or (
                X.is_contiguous(memory_format=torch.channels_last) and not X.is_contiguous()):
            return super().forward(X)  # NHWC stays NHWC: the library kernel keeps it
        return avg_pool2d_fast(X, _side(self.kernel_size))


def _side(v: Any) -> int | None:
    """The common side of a square int/tuple size, else None."""
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    return None


def _fast_conv(m: nn.Module) -> FastConv2d | None:
    if type(m) is not nn.Conv2d or m.groups != 1 or m.stride != (1, 1) \
            or m.dilation != (1, 1) or isinstance(m.padding, str) or m.padding_mode != "zeros" \
            or m.in_channels > MAX_IN_CHANNELS or m.out_channels > MAX_OUT_CHANNELS:
        return None
    new = FastConv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding,
                     bias=m.bias is not None, device="meta")
    new.weight = m.weight  # the same Parameter objects: optimizers and checkpoints agree
    new.bias = m.bias
    new.train(m.training)
    return new


def _fast_pool(m: nn.Module) -> FastAvgPool2d | None:
    if type(m) is not nn.AvgPool2d:
        return None
    k, s = _side(m.kernel_size), _side(m.stride if m.stride is not None else m.kernel_size)
    if k is None or k != s or _side(m.padding) != 0 or m.ceil_mode \
            or m.divisor_override is not None:
        return None
    new = FastAvgPool2d(k, k)
    new.train(m.training)
    return new


def accelerate(model: nn.Module, config_or_device: Any = "cpu",
               threads: int | None = None, use_native: bool = True) -> nn.Module:
    """Swap supported layers of ``model`` in place for fast CPU versions; return ``model``.

    ``config_or_device``: a device, a device string, or an object with a ``device``
    attribute (a TrainConfig; ``"auto"`` means CPU when CUDA is unavailable). Not on
    CPU: nothing changes. A config with ``channels_last=True`` keeps the library
    convolutions (faster in NHWC than these kernels). ``threads`` (default: torch's
    current setting): with two or more, a model whose convolutions these kernels
    would take gets NHWC weights instead, which made oneDNN pick its NHWC kernels
    and beat ours on 2 threads (LeNet: 19.4 vs 22.8 ms per step,
    benchmarks/results/lenet.md); ours win on one thread (30.4 vs 34.1 CPU ms).
    ``use_native`` (when :mod:`cnnlab.native` builds): small convolutions run its
    kernels (:mod:`cnnlab.accel.smallconv`: forward for one input channel, weight and
    input gradients; whatever the threads or layout), and a sigmoid followed by an
    average pool in a Sequential runs as one kernel (:mod:`cnnlab.accel.fused`).
    """
    device = getattr(config_or_device, "device", config_or_device)
    if device == "auto" or device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type != "cpu":
        return model
    # With channels_last, oneDNN's NHWC kernels beat ours (measured on fastnet: our
    # convs made its step ~20% slower), so only the pools are swapped.
    convs = not getattr(config_or_device, "channels_last", False)
    threads = torch.get_num_threads() if threads is None else int(threads)
    small = any(_fast_conv(m) is not None for m in model.modules())
    if use_native and native.available():
        _fuse_sigmoid_pools(model)
        _swap_native_convs(model)
    if convs and threads >= 2 and small:
        # the inputs may stay NCHW: oneDNN follows the weights' format
        return model.to(memory_format=torch.channels_last)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = (_fast_conv(child) if convs else None) or _fast_pool(child)
            if new is not None:
                setattr(parent, name, new)
    return model


@contextlib.contextmanager
def accelerated(model: nn.Module, config_or_device: Any = "cpu",
                threads: int | None = None) -> Iterator[nn.Module]:
    """:func:`accelerate` for the length of a ``with`` block: afterwards every swapped
    layer is the user's own module object again (holding the trained parameters, which
    the swapped-in layers shared), so code that walks the layers sees what it built.
    Weights may keep the NHWC memory format accelerate gave them (same values).

    Example:
        >>> import torch
        >>> from cnnlab.models import create_model
        >>> net = create_model("lenet")
        >>> before = [type(m) for m in net.modules()]
        >>> with accelerated(net, "cpu") as fast:
        ...     loss = fast(torch.rand(2, 1, 28, 28)).sum()
        >>> [type(m) for m in net.modules()] == before
        True
    """
    children = [(parent, name, child) for parent in model.modules()
                for name, child in parent.named_children()]
    try:
        yield accelerate(model, config_or_device, threads)
    finally:
        for parent, name, child in children:
            setattr(parent, name, child)


def _swap_native_convs(model: nn.Module) -> None:
    """Convolutions the native kernels take become :class:`NativeConv2d` (same parameters).

    Those with one input channel (native forward and weight gradient) and, with more,
    those whose input gradient the native scatter kernel takes (LeNet's 6 -> 16 layer:
    1.5 vs 3.2 ms for oneDNN's transposed convolution, batch 128, 2 threads;
    ``benchmarks/conv_pieces.py``). 1x1 convolutions stay: they are matrix products.
    """
    for parent in list(model.modules()):
        for name, m in list(parent.named_children()):
            if (type(m) is nn.Conv2d and native_conv_supported(m)
                    and (m.in_channels == 1 or native_dgrad_supported(m))):
                new = NativeConv2d(m.in_channels, m.out_channels, m.kernel_size,
                                   padding=m.padding, bias=m.bias is not None, device="meta")
                new.weight, new.bias = m.weight, m.bias
                new.train(m.training)
                setattr(parent, name, new)


def _fuse_sigmoid_pools(model: nn.Module) -> None:
    """Each ``nn.Sigmoid`` directly followed by a non-overlapping ``nn.AvgPool2d`` in an
    ``nn.Sequential`` becomes :class:`SigmoidInNextPool` + :class:`SigmoidAvgPool2d`."""
    for parent in list(model.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            act, pool = parent._modules[a], parent._modules[b]
            if type(act) is nn.Sigmoid and _fast_pool(pool) is not None:
                fused = SigmoidAvgPool2d(pool.kernel_size, pool.stride)
                fused.train(pool.training)
                setattr(parent, a, SigmoidInNextPool())
                setattr(parent, b, fused)
