"""cnnlab.layers: drop-in replacements of nn.Conv2d / MaxPool2d / AvgPool2d."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.layers import Conv2D, ScratchAvgPool2d, ScratchConv2d, ScratchMaxPool2d

CONV_CONFIGS = [
    dict(in_channels=1, out_channels=6, kernel_size=5, padding=2),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
         dilation=(1, 2), groups=2, bias=False),
    dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", padding_mode="reflect"),
    dict(in_channels=3, out_channels=4, kernel_size=(2, 3), padding=1, padding_mode="circular"),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding="valid"),
]


@pytest.mark.parametrize("config", CONV_CONFIGS)
def test_scratch_conv_is_a_drop_in_for_nn_conv(config):
    torch.manual_seed(0)
    ref = nn.Conv2d(**config)
    torch.manual_seed(0)
    conv = ScratchConv2d(**config)
    # Same default init, draw for draw.
    assert torch.equal(conv.weight, ref.weight)
    assert (conv.bias is None) == (ref.bias is None)
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                 "dilation", "groups", "padding_mode"):
        assert getattr(conv, name) == getattr(ref, name), name
    assert repr(conv).replace("ScratchConv2d", "Conv2d") == repr(ref)
    # state_dicts load both ways.
    other = nn.Conv2d(**config)
    other.load_state_dict(conv.state_dict())
    conv.load_state_dict(ref.state_dict())
    X = torch.randn(2, config["in_channels"], 9, 8, requires_grad=True)
    X2 = X.detach().clone().requires_grad_()
    Y, Y_ref = conv(X), ref(X2)
    assert torch.allclose(Y, Y_ref, atol=1e-5)
    Y.square().sum().backward()
    Y_ref.square().sum().backward()
    assert torch.allclose(X.grad, X2.grad, atol=1e-4)
    assert torch.allclose(conv.weight.grad, ref.weight.grad, atol=1e-4)


@pytest.mark.parametrize("scratch, ref, args", [
    (ScratchMaxPool2d, nn.MaxPool2d, (3, 2, 1)),
    (ScratchMaxPool2d, nn.MaxPool2d, ((2, 3),)),
    (ScratchAvgPool2d, nn.AvgPool2d, (2,)),
    (ScratchAvgPool2d, nn.AvgPool2d, (3, 2, 1)),
    (ScratchAvgPool2d, nn.AvgPool2d, (3, 2, 1, True)),
])
def test_scratch_pools_match_nn(scratch, ref, args):
    pool, pool_ref = scratch(*args), ref(*args)
    for name in ("kernel_size", "stride", "padding", "ceil_mode"):
        assert getattr(pool, name) == getattr(pool_ref, name), name
    assert repr(pool).replace("Scratch", "") == repr(pool_ref)
    X = torch.randn(2, 3, 9, 10)
    assert torch.allclose(pool(X), pool_ref(X), atol=1e-6)


def test_scratch_max_pool_ceil_mode_matches_nn():
    pool, pool_ref = ScratchMaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(3, 2, ceil_mode=True)
    X = torch.randn(2, 3, 8, 10)
    assert pool.ceil_mode and torch.equal(pool(X), pool_ref(X))
    assert repr(pool).replace("Scratch", "") == repr(pool_ref)


def test_swapping_layers_in_a_lenet_keeps_outputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(400, 10))
    scratch = nn.Sequential(ScratchConv2d(1, 6, 5, padding=2), nn.Sigmoid(),
                            ScratchAvgPool2d(2, 2), ScratchConv2d(6, 16, 5), nn.Sigmoid(),
                            ScratchMaxPool2d(2), nn.Flatten(), nn.Linear(400, 10))
    scratch.load_state_dict(net.state_dict())
    X = torch.rand(4, 1, 28, 28)
    assert torch.allclose(scratch(X), net(X), atol=1e-5)


def test_book_conv2d_learns_with_autograd():
    torch.manual_seed(0)
    layer = Conv2D((1, 2))
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    Y = torch.zeros(6, 7)
    Y[:, 1], Y[:, 5] = 1.0, -1.0
    loss = ((layer(X) - Y) ** 2).sum()
    loss.backward()
    assert layer.weight.grad.shape == (1, 2) and layer.bias.grad.shape == (1,)


@pytest.mark.parametrize("make", [
    lambda: ScratchConv2d(3, 4, 3, groups=2),
    lambda: ScratchConv2d(0, 4, 3),
    lambda: ScratchConv2d(1, 4, 0),
    lambda: ScratchConv2d(1, 4, 3, stride=2, padding="same"),
    lambda: ScratchConv2d(1, 4, 3, padding_mode="mirror"),
    lambda: ScratchMaxPool2d(0),
    lambda: ScratchAvgPool2d(2, stride=0),
])
def test_bad_layer_arguments(make):
    with pytest.raises(ConfigError):
        make()
