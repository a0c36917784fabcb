"""cnnlab.accel without the native kernels (use_native=False): NHWC weights only, same
values and gradients as the user's model, and its layers left alone."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.accel import accelerated


def _lenet_like() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 10))


def test_without_native_only_the_weights_become_nhwc():
    ref = _lenet_like()
    net = copy.deepcopy(ref)
    types = [type(m) for m in net]
    X = torch.rand(4, 1, 28, 28)  # NCHW input: oneDNN follows the weights' format
    with accelerated(net, "cpu", use_native=False):
        assert [type(m) for m in net] == types
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert list(net.state_dict()) == list(ref.state_dict())
        torch.testing.assert_close(net(X), ref(X), rtol=1e-5, atol=1e-5)
    assert net[0].weight.is_contiguous() and net[3].weight.is_contiguous()


def test_a_model_without_small_convolutions_is_left_alone():
    big = nn.Sequential(nn.Conv2d(64, 64, 3), nn.Conv2d(64, 64, 3, stride=2))
    with accelerated(big, "cpu", use_native=False):
        assert all(m.weight.is_contiguous() for m in big)


def test_training_steps_inside_match_the_plain_model():
    ref = _lenet_like()
    net = copy.deepcopy(ref)
    X = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.arange(7) % 10
    with accelerated(net, torch.device("cpu"), use_native=False):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(net(X), y).backward()
            opt.step()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        opt.step()
    for (name, a), (_, b) in zip(ref.named_parameters(), net.named_parameters()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(net(X), ref(X), atol=1e-5, rtol=1e-4)


def test_an_optimizer_built_before_keeps_its_parameters():
    net = _lenet_like()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    params = [id(p) for p in net.parameters()]
    with accelerated(net, "cpu"):
        assert [id(p) for p in net.parameters()] == params
        assert [id(p) for p in opt.param_groups[0]["params"]] == params


def test_a_config_object_decides_the_device():
    class Cfg:
        device = "cpu"

    net = _lenet_like()
    with accelerated(net, Cfg(), use_native=False):
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert net[0].weight.is_contiguous()


def test_float64_and_autocast_inside_the_block_compute_what_torch_does():
    net = _lenet_like().double()
    ref = copy.deepcopy(net)
    X = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    with accelerated(net, "cpu"):
        torch.testing.assert_close(net(X), ref(X))
    net = _lenet_like()
    with accelerated(net, "cpu"), torch.autocast("cpu", dtype=torch.bfloat16):
        Y = net(X.float())
    assert Y.dtype == torch.bfloat16
