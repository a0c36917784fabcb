"""Swap PyTorch's conv and pooling layers for cnnlab's from-scratch ones (same parameter names).

``to_scratch(model)`` replaces, in place, every ``nn.Conv2d``, ``nn.MaxPool2d`` and
``nn.AvgPool2d`` with :mod:`cnnlab.layers`' ``ScratchConv2d``, ``ScratchMaxPool2d``
and ``ScratchAvgPool2d``, copying the weights. The state_dict keys stay the same,
so weights load both ways. ``nn.AdaptiveAvgPool2d`` (global pooling) stays.

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
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in _SWAPS:
                setattr(parent, name, _swap(child))
    return model


def _swap(old: nn.Module) -> nn.Module:
    new = _SWAPS[type(old)](old)
    tensors = list(old.parameters()) + list(old.buffers())
    if tensors:
        new.to(device=tensors[0].device, dtype=tensors[0].dtype)
    new.load_state_dict(old.state_dict())
    new.train(old.training)
    return new
