"""cnnlab.accel.accelerated: scoped, restoring, hook-respecting, and switchable."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import native
from cnnlab.accel import accelerated, has_hooks
from cnnlab.accel import smallconv as smallconv_mod
from cnnlab.accel.fused import SigmoidAvgPool2d, SigmoidInNextPool
from cnnlab.accel.smallconv import NativeConv2d
from cnnlab.models import create_model
from cnnlab.models.scratch import restore_modules, swap_modules

needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"no native kernels here: {native.status()}")


def _types(model: nn.Module) -> list[tuple[str, type]]:
    return [(n, type(m)) for n, m in model.named_modules()]


def _ids(model: nn.Module) -> list[int]:
    return [id(m) for m in model.modules()]


def _lenet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("lenet")


@needs_native
def test_swaps_inside_and_restores_the_same_objects_and_layout():
    net = _lenet()
    types, ids = _types(net), _ids(net)
    params = [id(p) for p in net.parameters()]
    with accelerated(net, "cpu") as fast:
        assert fast is net
        assert isinstance(net.conv1, NativeConv2d) and isinstance(net.pool1, SigmoidAvgPool2d)
        assert net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
        assert [id(p) for p in net.parameters()] == params
    assert _types(net) == types and _ids(net) == ids
    assert all(p.is_contiguous() for p in net.parameters())


@needs_native
def test_restores_after_an_error_in_the_block():
    net = _lenet()
    types, ids = _types(net), _ids(net)
    with pytest.raises(RuntimeError, match="boom"), accelerated(net, "cpu"):
        assert _types(net) != types
        raise RuntimeError("boom")
    assert _types(net) == types and _ids(net) == ids


@needs_native
def test_a_failing_swap_half_way_restores_what_it_swapped(monkeypatch):
    net = _lenet()
    types = _types(net)
    calls = []
    real = smallconv_mod.native_conv_for

    def flaky(m):
        calls.append(m)
        if isinstance(m, nn.Conv2d) and m is net.conv2:
            raise MemoryError("no room")
        return real(m)

    import cnnlab.accel as accel

    monkeypatch.setattr(accel, "native_conv_for", flaky)
    with pytest.raises(MemoryError), accelerated(net, "cpu"):
        pass
    assert _types(net) == types and calls


def test_disabled_is_a_no_op():
    net = _lenet()
    types = _types(net)
    strides = [p.stride() for p in net.parameters()]
    with accelerated(net, "cpu", enabled=False):
        assert _types(net) == types
        assert [p.stride() for p in net.parameters()] == strides


def test_other_devices_and_other_tensors_are_left_alone():
    net = _lenet()
    types = _types(net)
    with accelerated(net, "meta"):
        assert _types(net) == types

    class Cfg:
        device = "cuda"

    with accelerated(net, Cfg()):
        assert _types(net) == types
    meta = copy.deepcopy(net).to("meta")  # weights elsewhere (meta stands in for CUDA)
    meta_types = _types(meta)
    with accelerated(meta, "cpu"):
        assert _types(meta) == meta_types
        assert not any(p.is_contiguous(memory_format=torch.channels_last) and not
                       p.is_contiguous() for p in meta.parameters())


HOOKS = {
    "forward": lambda m, log: m.register_forward_hook(lambda mod, i, o: log.append(o.detach())),
    "forward_pre": lambda m, log: m.register_forward_pre_hook(
        lambda mod, i: log.append(i[0].detach())),
    "full_backward": lambda m, log: m.register_full_backward_hook(
        lambda mod, gi, go: log.append(go[0].detach())),
    "backward_pre": lambda m, log: m.register_full_backward_pre_hook(
        lambda mod, go: log.append(go[0].detach())),
}


@needs_native
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("kind", sorted(HOOKS))
@pytest.mark.parametrize("where", ["conv1", "act1", "pool1"])
def test_modules_with_hooks_are_never_swapped_and_hooks_see_the_same_values(kind, where):
    """A hook on a layer: that layer keeps its class inside the block, and the hook
    records what it records on an untouched copy (the book's sigmoid outputs, not
    pre-activations)."""
    net, ref = _lenet(), _lenet()
    logs: dict[str, list] = {"net": [], "ref": []}
    HOOKS[kind](getattr(net, where), logs["net"])
    HOOKS[kind](getattr(ref, where), logs["ref"])
    X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8)
    before = type(getattr(net, where))
    with accelerated(net, "cpu"):
        assert type(getattr(net, where)) is before
        if where != "conv1":  # the pair is not fused: neither half
            assert type(net.act1) is nn.Sigmoid and type(net.pool1) is nn.AvgPool2d
            assert isinstance(net.act2, SigmoidInNextPool)  # the other pair still is
        F.cross_entropy(net(X), y).backward()
    F.cross_entropy(ref(X), y).backward()
    assert len(logs["net"]) == len(logs["ref"]) == 1
    torch.testing.assert_close(logs["net"][0], logs["ref"][0], rtol=1e-5, atol=1e-6)


@needs_native
def test_global_module_hooks_stop_every_swap():
    from torch.nn.modules.module import register_module_forward_hook

    net = _lenet()
    types = _types(net)
    handle = register_module_forward_hook(lambda m, i, o: None)
    try:
        with accelerated(net, "cpu"):
            assert _types(net) == types
    finally:
        handle.remove()
    with accelerated(net, "cpu"):
        assert _types(net) != types


def test_has_hooks_sees_each_kind():
    for kind, add in HOOKS.items():
        m = nn.Linear(2, 2)
        assert not has_hooks(m)
        handle = add(m, [])
        assert has_hooks(m), kind
        handle.remove()
        assert not has_hooks(m), kind


@needs_native
def test_a_trained_model_afterwards_is_the_users_model():
    """Train a few steps inside the block, then a forward hook on the first sigmoid sees
    sigmoid outputs (in [0, 1]), equal to an untouched copy with the same weights."""
    net = _lenet()
    opt = torch.optim.SGD(net.parameters(), lr=0.9)
    X = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y = torch.arange(16) % 10
    with accelerated(net, "cpu"):
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(X), y).backward()
            opt.step()
    twin = _lenet()
    twin.load_state_dict(net.state_dict())
    seen = []
    for m in (net, twin):
        m.act1.register_forward_hook(lambda mod, i, o: seen.append(o.detach()))
        m(X)
    assert float(seen[0].min()) >= 0 and float(seen[0].max()) <= 1
    torch.testing.assert_close(seen[0], seen[1])


def test_swap_modules_shares_shared_modules_and_undoes_a_failure():
    act = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 2), act, nn.Sequential(act, nn.Linear(2, 2)))
    done = swap_modules(net, lambda m: nn.Tanh() if type(m) is nn.ReLU else None)
    assert len(done) == 2 and net[1] is net[2][0] and type(net[1]) is nn.Tanh
    restore_modules(done)
    assert net[1] is act and net[2][0] is act

    def boom(m):
        if isinstance(m, nn.Linear) and m is net[2][1]:
            raise ValueError("no")
        return nn.Identity() if type(m) is nn.ReLU else None

    with pytest.raises(ValueError):
        swap_modules(net, boom)
    assert net[1] is act and net[2][0] is act
    # a replaced module's children are not visited
    inner = nn.Sequential(nn.ReLU())
    outer = nn.Sequential(inner)
    done = swap_modules(outer, {nn.Sequential: lambda m: nn.Identity(), nn.ReLU: lambda m: None})
    assert type(outer[0]) is nn.Identity and type(inner[0]) is nn.ReLU


def test_lazy_layers_not_yet_initialised_are_left_to_their_first_forward():
    """The book's LazyConv2d LeNet, trained without apply_init: no memory to re-lay yet."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.LazyConv2d(6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.LazyLinear(10))
    X = torch.rand(4, 1, 28, 28)
    with accelerated(net, "cpu"):
        out = net(X)
        F.cross_entropy(out, torch.arange(4)).backward()
    assert type(net[0]) is nn.Conv2d and net[0].weight.shape == (6, 1, 5, 5)
    assert net[0].weight.grad is not None and out.shape == (4, 10)
    torch.testing.assert_close(net(X), out)
