"""Faster CPU training for the length of a ``with`` block; the user's model comes back as built.

``with accelerated(model, config_or_device):`` is the one way cnnlab speeds up a
model it is handed (``Trainer.fit`` and the d2l compat layer use it). On the CPU it:

* fuses each ``nn.Sigmoid`` directly followed by a non-overlapping ``nn.AvgPool2d``
  in an ``nn.Sequential`` into one native kernel (:mod:`cnnlab.accel.fused`) and
  runs small convolutions on native kernels (:mod:`cnnlab.accel.smallconv`), when
  :mod:`cnnlab.native` is available (x86-64 with a C compiler, not ``CNNLAB_NATIVE=0``);
* gives a model with small convolutions NHWC (``channels_last``) weights, which makes
  oneDNN pick its NHWC kernels for them (the inputs may stay NCHW).

The swapped-in layers share the user's ``Parameter`` objects, so ``state_dict`` keys,
optimizers built before or after, and checkpoints are unchanged. On exit -- normal or
not -- every original module object is back in its place and the weights have their
memory format again (same values). It never replaces a module that carries a forward,
forward-pre, backward or full-backward hook, and replaces nothing while global module
hooks (``torch.nn.modules.module.register_module_forward_hook`` and friends) are
registered: a hook sees what the user's network computes. Not on the CPU (device or
parameters), or with ``enabled=False``: a no-op. Measured gains:
benchmarks/results/lenet.md.

Example:
    >>> import torch
    >>> from cnnlab.models import create_model
    >>> from cnnlab.accel import accelerated
    >>> net = create_model("lenet")
    >>> before = [type(m) for m in net.modules()]
    >>> with accelerated(net, "cpu") as fast:
    ...     loss = fast(torch.rand(2, 1, 28, 28)).sum()
    >>> [type(m) for m in net.modules()] == before
    True
    >>> net.conv1.weight.is_contiguous()  # the memory format is restored too
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module
from torch.nn.parameter import is_lazy

from cnnlab import native
from cnnlab.accel.fused import SigmoidAvgPool2d, SigmoidInNextPool, square_side
from cnnlab.accel.smallconv import native_conv_for
from cnnlab.models.scratch import restore_modules, swap_modules
from cnnlab.native.memory import keep_freed_memory

__all__ = ["accelerated", "has_hooks", "keep_freed_memory"]

# Convolutions whose NHWC weights pay (oneDNN's NCHW kernels for few channels are
# latency-bound; measured on LeNet and fastnet, benchmarks/results/lenet.md).
MAX_IN_CHANNELS = 16
MAX_OUT_CHANNELS = 32

_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                 "_global_backward_hooks", "_global_backward_pre_hooks")


def has_hooks(m: nn.Module) -> bool:
    """Whether ``m`` carries a forward, forward-pre, backward or full-backward hook."""
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or m._backward_pre_hooks)


def _global_hooks() -> bool:
    """Whether hooks for every module are registered (torch.nn.modules.module's globals)."""
    return any(getattr(_module, name, None) for name in _GLOBAL_HOOKS)


def _on_cpu(model: nn.Module, config_or_device: Any) -> bool:
    device = getattr(config_or_device, "device", config_or_device)
    if device is None or device == "auto":
        device = "cpu" if not torch.cuda.is_available() else "cuda"
    if torch.device(device).type != "cpu":
        return False
    # the tensors themselves decide too: GPU (or meta) weights are never swapped
    return all(t.device.type == "cpu" for t in (*model.parameters(), *model.buffers()))


def _small_conv(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and m.groups == 1 and m.stride == (1, 1)
            and m.dilation == (1, 1) and not isinstance(m.padding, str)
            and m.padding_mode == "zeros" and m.in_channels <= MAX_IN_CHANNELS
            and m.out_channels <= MAX_OUT_CHANNELS)


def _plain_pool(m: nn.Module) -> int | None:
    """The side of a non-overlapping ``nn.AvgPool2d`` (kernel = stride, no padding)."""
    if type(m) is not nn.AvgPool2d:
        return None
    k = square_side(m.kernel_size)
    s = square_side(m.stride if m.stride is not None else m.kernel_size)
    if k is None or k != s or square_side(m.padding) != 0 or m.ceil_mode \
            or m.divisor_override is not None:
        return None
    return k


def _fusable_pairs(model: nn.Module) -> dict[int, nn.Module]:
    """id(module) -> its replacement, for each ``Sigmoid`` + pool pair of a Sequential whose
    two modules are registered once and carry no hooks."""
    uses: dict[int, int] = {}
    for _, m in model.named_modules(remove_duplicate=False):
        uses[id(m)] = uses.get(id(m), 0) + 1
    out: dict[int, nn.Module] = {}
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        mods = list(parent._modules.values())
        for act, pool in zip(mods, mods[1:]):
            k = _plain_pool(pool)
            if (type(act) is nn.Sigmoid and k is not None and uses[id(act)] == 1
                    and uses[id(pool)] == 1 and not has_hooks(act) and not has_hooks(pool)
                    and id(act) not in out and id(pool) not in out):
                fused = SigmoidAvgPool2d(k, k)
                fused.train(pool.training)
                out[id(act)], out[id(pool)] = SigmoidInNextPool(), fused
    return out


def _nhwc_weights(model: nn.Module) -> list[nn.Parameter]:
    """Give the model's 4-D parameters NHWC memory; return those changed. Lazy ones not
    yet initialised (the book's LazyConv2d before its first batch) have no memory yet:
    they stay as the first forward makes them."""
    changed = []
    for p in model.parameters():
        if is_lazy(p):
            continue
        if p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last):
            p.data = p.data.contiguous(memory_format=torch.channels_last)
            changed.append(p)
    return changed


@contextlib.contextmanager
def accelerated(model: nn.Module, config_or_device: Any = "cpu", *, enabled: bool = True,
                use_native: bool | None = None) -> Iterator[nn.Module]:
    """Run the ``with`` block with ``model``'s layers swapped for faster CPU ones; yield
    ``model`` (the same object) and restore every swapped module and weight layout on exit.

    ``config_or_device``: a device, a device string, or an object with a ``device``
    attribute (a TrainConfig; ``"auto"``: CPU when CUDA is unavailable). Nothing
    changes when it is not the CPU, when any parameter or buffer is not on the CPU,
    when ``enabled`` is False, or for a model without layers to swap. ``use_native``:
    None or True use :mod:`cnnlab.native` where it is available, False never.
    Modules with hooks are left as they are (see the module docstring).
    """
    if not enabled or not _on_cpu(model, config_or_device) or _global_hooks():
        yield model
        return
    with_native = use_native is not False and native.available()
    fused = _fusable_pairs(model) if with_native else {}

    def replace(m: nn.Module) -> nn.Module | None:
        if has_hooks(m):
            return None
        if id(m) in fused:
            return fused[id(m)]
        return native_conv_for(m) if with_native else None

    swaps, changed = [], []
    try:
        swaps = swap_modules(model, replace)
        if any(_small_conv(m) for m in model.modules()):
            changed = _nhwc_weights(model)
        yield model
    finally:
        restore_modules(swaps)
        for p in changed:
            if p.is_contiguous(memory_format=torch.channels_last):
                p.data = p.data.contiguous()
