"""cnnlab.native.ops: the custom-op boundary around the C kernels.

opcheck for every op (with the native library and without it), torch.compile through
the accelerated LeNet without graph breaks, the one check before C (device, dtype,
contiguity, sizes), allocation failure inside C, and the x86-64-only rule.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cnnlab import native
from cnnlab.accel import accelerated
from cnnlab.accel.fused import SigmoidAvgPool2d, sigmoid_avg_pool2d
from cnnlab.accel.smallconv import NativeConv2d
from cnnlab.data.transforms import interpolation_band, resize
from cnnlab.models import create_model
from cnnlab.native import ops

needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"no native kernels here: {native.status()}")
CL = torch.channels_last


def _case_args():
    g = torch.Generator().manual_seed(0)

    def r(*shape, grad=False):
        return torch.randn(*shape, generator=g).requires_grad_(grad)

    ys, wy = interpolation_band(28, 40)
    xs, wx = interpolation_band(28, 13)
    u8 = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=g)
    return [
        ("resample_u8", ops.resample_u8, (u8, ys, wy, xs, wx, 1 / 255, 0.25)),
        ("sigmoid_avg_pool2d nchw", ops.sigmoid_avg_pool2d, (r(2, 6, 8, 8, grad=True), 2)),
        ("sigmoid_avg_pool2d nhwc k3", ops.sigmoid_avg_pool2d,
         (r(2, 5, 7, 9).contiguous(memory_format=CL).requires_grad_(), 3)),
        ("sigmoid_avg_pool2d_backward", ops.sigmoid_avg_pool2d_backward,
         (torch.sigmoid(r(2, 3, 6, 6)), r(2, 3, 3, 3), 2)),
        ("conv2d_small 1ch", ops.conv2d_small,
         (r(3, 1, 10, 10, grad=True), r(6, 1, 5, 5, grad=True), r(6, grad=True), 2)),
        ("conv2d_small 6ch", ops.conv2d_small,
         (r(2, 6, 9, 9, grad=True).contiguous(memory_format=CL), r(16, 6, 5, 5, grad=True),
          None, 0)),
        ("conv2d_small_backward", ops.conv2d_small_backward,
         (r(2, 16, 5, 5), r(2, 6, 9, 9), r(16, 6, 5, 5), 0, True, True)),
        ("conv2d_small_backward 1ch weight only", ops.conv2d_small_backward,
         (r(3, 6, 10, 10), r(3, 1, 10, 10), r(6, 1, 5, 5), 2, False, True)),
        ("conv2d_small_backward input only", ops.conv2d_small_backward,
         (r(2, 16, 5, 5), r(2, 6, 9, 9), r(16, 6, 5, 5), 0, True, False)),
    ]


CASES = _case_args()


@pytest.mark.parametrize("with_native", [True, False], ids=["native", "pytorch"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_opcheck(case, with_native, monkeypatch):
    """Schema, fake kernel, registered autograd and AOT dispatch (dynamic shapes) of each op,
    on the C path and on the op's own PyTorch path."""
    if with_native and not native.available():
        pytest.skip(f"no native kernels here: {native.status()}")
    if not with_native:
        monkeypatch.setattr(native, "load", lambda: None)
    _, op, args = CASES[case]
    result = torch.library.opcheck(op, args)
    assert set(result.values()) == {"SUCCESS"}, result
    assert len(ops.OPS) == 5 and op in ops.OPS


def test_every_op_is_registered_under_the_cnnlab_namespace():
    names = {op._schema.name for op in ops.OPS}
    assert names == {f"cnnlab::{n}" for n in (
        "resample_u8", "sigmoid_avg_pool2d", "sigmoid_avg_pool2d_backward", "conv2d_small",
        "conv2d_small_backward")}
    for name in names:
        assert hasattr(torch.ops.cnnlab, name.split("::")[1])


# ----------------------------------------------------------------- torch.compile
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compile_traces_the_accelerated_lenet_without_graph_breaks(backend):
    import torch._dynamo

    torch.manual_seed(0)
    ref = create_model("lenet")
    net = copy.deepcopy(ref)
    X = torch.rand(8, 1, 28, 28)
    y = torch.arange(8)
    with accelerated(net, "cpu"):
        if native.available():
            assert isinstance(net.conv1, NativeConv2d) and isinstance(net.pool1, SigmoidAvgPool2d)
        torch._dynamo.reset()
        explain = torch._dynamo.explain(net)(X)
        assert explain.graph_break_count == 0 and explain.graph_count == 1, explain.break_reasons
        compiled = torch.compile(net, backend=backend, fullgraph=True)
        out = compiled(X)
        F.cross_entropy(out, y).backward()
    F.cross_entropy(ref(X), y).backward()
    torch.testing.assert_close(out, ref(X), rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    torch._dynamo.reset()


# ------------------------------------------------------------ the one check before C
def test_ptr_refuses_everything_but_contiguous_cpu_memory_of_the_right_kind():
    X = torch.zeros(2, 3, 4, 4)
    assert ops._ptr(X, torch.float32, (2, 3, 4, 4), "X") == X.data_ptr()
    bad = {
        "meta": (X.to("meta"), torch.float32, (2, 3, 4, 4), "not the CPU"),
        "dtype": (X.double(), torch.float32, (2, 3, 4, 4), "not torch.float32"),
        "strides": (X.transpose(2, 3), torch.float32, (2, 3, 4, 4), "not contiguous"),
        "nhwc read as nchw": (X.contiguous(memory_format=CL), torch.float32, (2, 3, 4, 4),
                              "not contiguous"),
        "shape": (X, torch.float32, (2, 3, 4, 5), "expects"),
        "empty": (torch.zeros(0, 3), torch.float32, (0, 3), "empty"),
        "sparse": (torch.zeros(2, 2).to_sparse(), torch.float32, (2, 2), "layout"),
    }
    for name, (t, dtype, shape, msg) in bad.items():
        with pytest.raises(ValueError, match=msg):
            ops._ptr(t, dtype, shape, name)
    assert ops.accepts(X, None) and not ops.accepts(X, X.to("meta"))
    assert not ops.accepts(X.to(torch.uint8)) and ops.accepts(X.to(torch.uint8), dtype=torch.uint8)


def test_ops_name_what_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        ops.conv2d_small(torch.zeros(1, 1, 3, 3), torch.zeros(2, 1, 5, 5), None, 0)
    with pytest.raises(ValueError, match="weight"):
        ops.conv2d_small(torch.zeros(1, 2, 8, 8), torch.zeros(2, 1, 5, 5), None, 0)
    with pytest.raises(ValueError, match="bias"):
        ops.conv2d_small(torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 5, 5), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="dY"):
        ops.conv2d_small_backward(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 8, 8),
                                  torch.zeros(2, 1, 5, 5), 0, True, True)
    with pytest.raises(ValueError, match="k >= 1"):
        ops.sigmoid_avg_pool2d(torch.zeros(1, 1, 2, 2), 3)
    ys, wy = interpolation_band(28, 40)
    with pytest.raises(ValueError, match="outside"):  # a band past the image: never read
        ops.resample_u8(torch.zeros(1, 1, 20, 28, dtype=torch.uint8), ys, wy, ys, wy, 1.0, 0.0)


@pytest.mark.parametrize("where", ["weights", "batch"])
def test_mixed_devices_never_reach_c(where):
    """A CPU batch with weights elsewhere (meta stands in for CUDA), and the reverse: a
    clear error from the conv layer (PyTorch's own conv computes garbage from meta weights
    with a CPU batch); the pool, which has no weights, takes PyTorch's path."""
    conv = NativeConv2d(1, 6, 5, padding=2)
    X = torch.rand(4, 1, 28, 28)
    if where == "weights":
        conv = conv.to("meta")
    else:
        X = X.to("meta")
    with pytest.raises(ValueError, match="one device"):
        conv(X)
    pool = SigmoidAvgPool2d(2, 2)
    Z = torch.randn(2, 6, 8, 8, device="meta" if where == "batch" else "cpu")
    assert pool(Z).shape == (2, 6, 4, 4) and pool(Z).device == Z.device
    # the op itself, and its gradients, handed a meta weight with a CPU batch (or the
    # reverse): a clear error, whichever kernel the dispatcher picks
    W = torch.zeros(6, 1, 5, 5, device="meta" if where == "weights" else "cpu")
    with pytest.raises(ValueError, match="different devices"):
        ops.conv2d_small(X, W, None, 2)
    with pytest.raises(ValueError, match="different devices"):
        other = "cpu" if W.device.type == "meta" else "meta"
        ops.conv2d_small_backward(torch.zeros(4, 6, 28, 28, device=other),
                                  torch.zeros(4, 1, 28, 28, device=other), W, 2, True, True)
    with pytest.raises(ValueError, match="different devices"):
        ops.sigmoid_avg_pool2d_backward(torch.zeros(2, 6, 8, 8),
                                        torch.zeros(2, 6, 4, 4, device="meta"), 2)


def test_cpu_batch_with_meta_weights_in_a_subprocess_does_not_crash():
    """The reported crash (a GPU address handed to C, exit 139), in a process of its own:
    it must end with exit 0 (PyTorch's path) or a Python error, never a signal."""
    code = """if True:
        import torch
        from cnnlab.accel.smallconv import NativeConv2d
        from cnnlab.native import ops
        conv = NativeConv2d(1, 6, 5, padding=2).to("meta")
        try:
            conv(torch.rand(4, 1, 28, 28))
        except (RuntimeError, ValueError, NotImplementedError) as e:
            print("error:", type(e).__name__)
        try:  # the op itself, with its C path, handed a meta weight
            ops.conv2d_small(torch.rand(4, 1, 28, 28), torch.zeros(6, 1, 5, 5, device="meta"),
                             None, 2)
        except (RuntimeError, ValueError, NotImplementedError) as e:
            print("error:", type(e).__name__)
        print("alive")
    """
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("alive")


@pytest.mark.parametrize("kind", ["non-contiguous", "float64", "channels_last"])
def test_other_layouts_and_dtypes_take_the_right_path(kind):
    torch.manual_seed(0)
    conv, ref = NativeConv2d(6, 16, 5), torch.nn.Conv2d(6, 16, 5)
    ref.load_state_dict(conv.state_dict())
    X = torch.randn(3, 6, 14, 20)
    if kind == "non-contiguous":
        X = X[:, :, :, ::2]
    elif kind == "float64":
        X, conv, ref = X.double(), conv.double(), ref.double()
    else:
        X = X.contiguous(memory_format=CL)
    X1, X2 = X.clone().requires_grad_(), X.clone().requires_grad_()
    out, expected = conv(X1), ref(X2)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(X1.grad, X2.grad, rtol=1e-4, atol=1e-5)
    Z = torch.randn(2, 6, 9, 9, dtype=X.dtype)[..., ::1, :8]
    torch.testing.assert_close(sigmoid_avg_pool2d(Z, 2), F.avg_pool2d(torch.sigmoid(Z), 2))


# --------------------------------------------------------- allocation failure in C
@pytest.fixture
def no_memory_lib(native_variant):
    """The library built so that every allocation in C fails."""
    return native_variant("CNNLAB_TEST_NO_MEMORY")


def test_allocation_failure_in_c_falls_back_to_pytorch(no_memory_lib, monkeypatch):
    lib = no_memory_lib
    f = lib.cnnlab_conv_fwd
    X, Wt, b, Y = torch.rand(2, 1, 8, 8), torch.zeros(9, 8), torch.zeros(8), torch.empty(2, 6, 6, 8)
    # the entry points report it (kernels that allocate nothing, e.g. the AVX2 build's k = 2
    # pooling, run; the AVX-512 one allocates its index tables and falls back too)
    assert f(X.data_ptr(), Wt.data_ptr(), b.data_ptr(), Y.data_ptr(), 2, 8, 8, 1, 6, 3, 0) == -1
    monkeypatch.setattr(native, "load", lambda: lib)
    torch.manual_seed(0)
    u8 = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    ys, wy = interpolation_band(28, 40)
    torch.testing.assert_close(ops.resample_u8(u8, ys, wy, ys, wy, 1 / 255, 0.0),
                               resize(u8.float() / 255, (40, 40)), rtol=1e-5, atol=1e-5)
    Z = torch.randn(2, 3, 9, 9, requires_grad=True)
    P = sigmoid_avg_pool2d(Z, 3)  # k = 3 allocates its window sums
    torch.testing.assert_close(P, F.avg_pool2d(torch.sigmoid(Z), 3))
    (g,) = torch.autograd.grad(P.sum(), Z)
    (r,) = torch.autograd.grad(F.avg_pool2d(torch.sigmoid(Z), 3).sum(), Z)
    torch.testing.assert_close(g, r)
    conv, ref = NativeConv2d(1, 6, 5, padding=2), torch.nn.Conv2d(1, 6, 5, padding=2)
    ref.load_state_dict(conv.state_dict())
    X = torch.rand(4, 1, 12, 12)
    torch.testing.assert_close(conv(X), ref(X), rtol=1e-5, atol=1e-5)
    conv(X).sum().backward()
    ref(X).sum().backward()
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    dY, w = torch.randn(2, 16, 5, 5), torch.randn(16, 6, 5, 5)
    X = torch.randn(2, 6, 9, 9)
    torch.testing.assert_close(ops.conv2d_small_backward(dY, X, w, 0, True, False)[0],
                               torch.nn.grad.conv2d_input((2, 6, 9, 9), w, dY),
                               rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------- x86-64 only
def test_other_machines_run_the_pytorch_paths(monkeypatch, tmp_path):
    import platform

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("CNNLAB_NATIVE", raising=False)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_why", native._why)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert native.load() is None and not native.available()
    assert native.status() == ("native kernels are x86-64 only (this is aarch64); "
                               "the PyTorch paths run")
    assert not list(tmp_path.rglob("*.so"))  # nothing was built
    net = create_model("lenet")
    with accelerated(net, "cpu"):
        assert not any(isinstance(m, (NativeConv2d, SigmoidAvgPool2d)) for m in net.modules())
        assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
