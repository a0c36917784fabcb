"""cnnlab.accel.kernels and cnnlab.accel: same values and gradients as the torch modules."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.accel import FastAvgPool2d, FastConv2d, accelerate
from cnnlab.accel.kernels import avg_pool2d_fast, conv2d_fast

ATOL = 1e-5


def _grads(fn, *tensors):
    """Value of fn(*tensors) and the gradients of a fixed random projection of it."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    proj = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * proj).sum().backward()
    return out.detach(), [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("B,C_in,C_out,H,W,k,p", [
    (4, 1, 6, 28, 28, 5, 2),   # LeNet conv1
    (3, 6, 16, 14, 14, 5, 0),  # LeNet conv2, odd batch
    (1, 3, 5, 9, 7, 3, 1),     # batch of one, non-square
    (2, 2, 4, 8, 8, (3, 1), (1, 0)),
])
def test_conv2d_fast_matches_conv2d(B, C_in, C_out, H, W, k, p):
    g = torch.Generator().manual_seed(0)
    kh, kw = (k, k) if isinstance(k, int) else k
    X = torch.randn(B, C_in, H, W, generator=g)
    Wt = torch.randn(C_out, C_in, kh, kw, generator=g)
    b = torch.randn(C_out, generator=g)
    ref, ref_g = _grads(lambda x, w, bb: F.conv2d(x, w, bb, padding=p), X, Wt, b)
    out, out_g = _grads(lambda x, w, bb: conv2d_fast(x, w, bb, padding=p), X, Wt, b)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5)
    for a, r in zip(out_g, ref_g):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)


def test_conv2d_fast_accepts_non_contiguous_and_channels_last():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(5, 16, 12, 3, generator=g).permute(0, 3, 1, 2)  # (5, 3, 16, 12), NHWC
    Wt = torch.randn(4, 3, 3, 3, generator=g)
    for inp in (X, X.contiguous(memory_format=torch.channels_last), X[:, :, ::2, :]):
        ref, ref_g = _grads(lambda x, w: F.conv2d(x, w, padding=1), inp, Wt)
        out, out_g = _grads(lambda x, w: conv2d_fast(x, w, None, padding=1), inp, Wt)
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5)
        for a, r in zip(out_g, ref_g):
            torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape,k", [((4, 6, 28, 28), 2), ((3, 16, 10, 10), 2),
                                     ((2, 3, 7, 9), 2), ((5, 2, 9, 9), 3), ((1, 1, 4, 4), 2)])
def test_avg_pool2d_fast_matches_avg_pool2d(shape, k):
    X = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    ref, (ref_g,) = _grads(lambda x: F.avg_pool2d(x, k), X)
    out, (out_g,) = _grads(lambda x: avg_pool2d_fast(x, k), X)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(out_g, ref_g, atol=ATOL, rtol=1e-5)


def test_avg_pool2d_fast_keeps_channel_major_layout():
    # A channel-major (C, B, H, W) buffer viewed as (B, C, H, W): what FastConv2d may emit.
    X = torch.randn(6, 4, 8, 8).transpose(0, 1)
    out = avg_pool2d_fast(X, 2)
    assert out.transpose(0, 1).is_contiguous()
    torch.testing.assert_close(out, F.avg_pool2d(X.contiguous(), 2))
    Xl = X.detach().clone().requires_grad_(True)
    avg_pool2d_fast(Xl, 2).sum().backward()
    assert Xl.grad.stride() == Xl.stride()
    torch.testing.assert_close(Xl.grad, torch.full_like(Xl, 0.25))


def _lenet_like() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 10))


def test_accelerate_swaps_layers_and_keeps_state_dict():
    ref = _lenet_like()
    net = accelerate(copy.deepcopy(ref), "cpu", threads=1, use_native=False)
    assert isinstance(net[0], FastConv2d) and isinstance(net[3], FastConv2d)
    assert isinstance(net[2], FastAvgPool2d) and isinstance(net[5], FastAvgPool2d)
    assert list(net.state_dict()) == list(ref.state_dict())
    # A checkpoint of one loads into the other, both ways.
    net.load_state_dict(ref.state_dict())
    copy.deepcopy(ref).load_state_dict(net.state_dict())


def test_accelerate_on_two_threads_gives_nhwc_weights_and_the_same_outputs():
    ref = _lenet_like()
    net = accelerate(copy.deepcopy(ref), "cpu", threads=2, use_native=False)
    assert type(net[0]) is nn.Conv2d and type(net[2]) is nn.AvgPool2d  # nothing swapped
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(net.state_dict()) == list(ref.state_dict())
    X = torch.rand(4, 1, 28, 28)  # NCHW input: oneDNN follows the weights' format
    torch.testing.assert_close(net(X), ref(X), rtol=1e-5, atol=1e-5)
    # a model these kernels would not take is left alone, whatever the threads
    big = nn.Sequential(nn.Conv2d(64, 64, 3))
    assert accelerate(big, "cpu", threads=2, use_native=False)[0].weight.is_contiguous()


def test_accelerate_keeps_outputs_and_a_training_step():
    ref = _lenet_like()
    net = accelerate(copy.deepcopy(ref), torch.device("cpu"), threads=1, use_native=False)
    X = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.arange(7) % 10
    for model in (ref, net):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(X), y).backward()
            opt.step()
    for (name, a), (_, b) in zip(ref.named_parameters(), net.named_parameters()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(net(X), ref(X), atol=1e-5, rtol=1e-4)


def test_accelerate_reuses_parameter_objects():
    net = _lenet_like()
    params = [id(p) for p in net.parameters()]
    accelerate(net, "cpu", threads=1, use_native=False)
    assert [id(p) for p in net.parameters()] == params


def test_accelerate_leaves_unsupported_layers_and_other_devices():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 3, groups=2),
                        nn.Conv2d(8, 64, 3), nn.AvgPool2d(3, stride=2), nn.AvgPool2d(2, padding=1))
    accelerate(net, "cpu", threads=1, use_native=False)
    assert [type(m) for m in net] == [nn.Conv2d, nn.Conv2d, nn.Conv2d, nn.AvgPool2d, nn.AvgPool2d]
    lenet = _lenet_like()
    assert type(accelerate(lenet, "meta")[0]) is nn.Conv2d

    class Cfg:
        device = "cpu"

    assert type(accelerate(lenet, Cfg(), threads=1, use_native=False)[0]) is FastConv2d


def test_fast_modules_fall_back_outside_their_domain():
    conv = accelerate(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1)), "cpu", threads=1,
                      use_native=False)[0]
    X = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    conv = conv.double()
    torch.testing.assert_close(conv(X), F.conv2d(X, conv.weight, conv.bias, padding=1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        Y = conv.float()(X.float())
    assert Y.dtype == torch.bfloat16


def test_registry_lenet_is_accelerated():
    models = pytest.importorskip("cnnlab.models")
    net = models.create_model("lenet")
    keys = list(net.state_dict())
    accelerate(net, "cpu", threads=1, use_native=False)
    assert type(net.conv1) is FastConv2d and type(net.pool2) is FastAvgPool2d
    assert list(net.state_dict()) == keys
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_fast_avg_pool_keeps_channels_last():
    pool = accelerate(nn.Sequential(nn.AvgPool2d(2)), "cpu", threads=1, use_native=False)[0]
    assert isinstance(pool, FastAvgPool2d)
    X = torch.randn(3, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    Y = pool(X)
    assert Y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(Y, F.avg_pool2d(X, 2))
