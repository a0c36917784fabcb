"""Swap PyTorch's conv and pooling layers for cnnlab's from-scratch ones (same parameter names).

``to_scratch(model)`` replaces, in place, every ``nn.Conv2d``, ``nn.MaxPool2d`` and
``nn.AvgPool2d`` with :mod:`cnnlab.layers`' ``ScratchConv2d``, ``ScratchMaxPool2d``
and ``ScratchAvgPool2d``, copying the weights. The state_dict keys stay the same,
so weights load both ways. ``nn.AdaptiveAvgPool2d`` (global pooling) stays.

:func:`swap_modules` / :func:`restore_modules` are the package's one way of replacing
child modules (``to_scratch`` here, :func:`cnnlab.accel.accelerated`'s scoped swap).

Example:
    >>> import torch
    >>> from cnnlab.models import create_model, to_scratch
    >>> net = create_model("lenet").eval()
    >>> X = torch.rand(2, 1, 28, 28)
    >>> ref = net(X)
    >>> scratch = to_scratch(net)
    >>> type(scratch.conv1).__name__, bool(torch.allclose(scratch(X), ref, atol=1e-4))
    ('ScratchConv2d', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from cnnlab.errors import ConfigError


def _scratch_conv(m: nn.Conv2d) -> nn.Module:
    from cnnlab.layers import ScratchConv2d

    return ScratchConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                         padding=m.padding, dilation=m.dilation, groups=m.groups,
                         bias=m.bias is not None, padding_mode=m.padding_mode)


def _scratch_max_pool(m: nn.MaxPool2d) -> nn.Module:
    from cnnlab.layers import ScratchMaxPool2d

    if m.ceil_mode or m.return_indices:
        raise ConfigError("to_scratch supports MaxPool2d without ceil_mode or return_indices; "
                          "build the model with the defaults")
    return ScratchMaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation)


def _scratch_avg_pool(m: nn.AvgPool2d) -> nn.Module:
    from cnnlab.layers import ScratchAvgPool2d

    has_padding = m.padding not in (0, (0, 0))
    if m.ceil_mode or m.divisor_override or (has_padding and not m.count_include_pad):
        raise ConfigError("to_scratch supports AvgPool2d without ceil_mode, divisor_override "
                          "or count_include_pad=False; build the model with the defaults")
    return ScratchAvgPool2d(m.kernel_size, m.stride, m.padding)


_SWAPS = {nn.Conv2d: _scratch_conv, nn.MaxPool2d: _scratch_max_pool,
          nn.AvgPool2d: _scratch_avg_pool}


def to_scratch(model: nn.Module) -> nn.Module:
    """Replace conv/pool layers of ``model`` in place by cnnlab's from-scratch ones; return it.

    Each new layer gets the old one's weights, device, dtype and training mode, so
    the outputs agree with the original (up to float rounding) and
    ``state_dict()`` keys are unchanged.
    """
    if type(model) in _SWAPS:  # a bare layer: nothing to replace it in, return the swap
        return _swap(model)
    swap_modules(model, dict.fromkeys(_SWAPS, _swap))
    return model


#: one replacement: (parent module, attribute name, the module that was there)
Swap = tuple[nn.Module, str, nn.Module]


def swap_modules(model: nn.Module,
                 replace: Mapping[type, Callable[[nn.Module], nn.Module | None]]
                 | Callable[[nn.Module], nn.Module | None]) -> list[Swap]:
    """Replace, in place, the submodules of ``model`` (not ``model`` itself) that ``replace``
    maps to a new module; return what was replaced, for :func:`restore_modules`.

    ``replace``: a mapping from an exact module type to a factory, or a function of the
    module; either returns the new module or None to keep the old one. A module
    registered in several places (shared) is replaced by one shared new module. All or
    nothing: if a factory raises, the swaps made so far are undone first.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.ReLU(), nn.Sequential(nn.ReLU()))
        >>> done = swap_modules(net, {nn.ReLU: lambda m: nn.Tanh()})
        >>> [type(m).__name__ for m in net.modules()]
        ['Sequential', 'Tanh', 'Sequential', 'Tanh']
        >>> restore_modules(done)
        >>> [type(m).__name__ for m in net.modules()]
        ['Sequential', 'ReLU', 'Sequential', 'ReLU']
    """
    if isinstance(replace, Mapping):
        table = replace

        def replace(m: nn.Module) -> nn.Module | None:
            factory = table.get(type(m))
            return None if factory is None else factory(m)

    done: list[Swap] = []
    new_for: dict[int, nn.Module | None] = {}

    def walk(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if id(child) not in new_for:
                new_for[id(child)] = replace(child)
            new = new_for[id(child)]
            if new is not None and new is not child:
                setattr(parent, name, new)
                done.append((parent, name, child))
            else:  # a replaced module's own children are not visited
                walk(child)

    try:
        walk(model)
    except BaseException:
        restore_modules(done)
        raise
    return done


def restore_modules(swaps: list[Swap]) -> None:
    """Put back the modules :func:`swap_modules` replaced (latest first)."""
    for parent, name, old in reversed(swaps):
        setattr(parent, name, old)


def _swap(old: nn.Module) -> nn.Module:
    new = _SWAPS[type(old)](old)
    tensors = list(old.parameters()) + list(old.buffers())
    if tensors:
        new.to(device=tensors[0].device, dtype=tensors[0].dtype)
    new.load_state_dict(old.state_dict())
    new.train(old.training)
    return new
