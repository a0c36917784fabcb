"""cnnlab.native: the C kernels built on first use, checked against the PyTorch paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import native
from cnnlab.data import DataModule, make_synthetic
from cnnlab.data.transforms import interpolation_band, interpolation_matrix, resize, resize_uint8

needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"no native kernels here: {native.status()}")


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """A native module that has not tried to load yet, caching into tmp_path."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("CNNLAB_NATIVE", raising=False)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_why", native._why)
    return native


def test_status_says_where_it_came_from_or_why_not():
    line = native.status()
    assert line.startswith("loaded ") == native.available()
    assert "\n" not in line


def test_builds_into_the_cache_once(fresh_native, tmp_path):
    if fresh_native._compiler() is None:
        pytest.skip("no C compiler here")
    lib = fresh_native.load()
    assert lib is not None and lib.cnnlab_native_version() >= 2
    built = list((tmp_path / "native").glob("cnnlab_native-*.so"))
    assert len(built) == 1 and not list((tmp_path / "native").glob("*.tmp*"))
    assert fresh_native.load() is lib  # loaded once per process


def test_broken_compiler_falls_back_with_a_reason(fresh_native, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setattr(fresh_native, "_compiler", lambda: "false")
    assert fresh_native.load() is None
    assert "unavailable" in fresh_native.status()
    assert not list((tmp_path / "native").glob("*.so"))  # nothing half-written is left
    X = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    ref = resize(X.float() / 255, (40, 40))
    assert torch.allclose(resize_uint8(X, (40, 40)), ref, atol=1e-6)


def test_disabled_by_environment():
    code = "from cnnlab import native; print(native.available(), native.status())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "CNNLAB_NATIVE": "0"}, check=True).stdout
    assert out.strip() == "False disabled by CNNLAB_NATIVE=0"


@pytest.mark.parametrize("n_in,n_out", [(28, 96), (28, 224), (28, 20), (5, 3), (7, 7), (1, 4)])
def test_interpolation_band_rebuilds_the_matrix(n_in, n_out):
    start, taps = interpolation_band(n_in, n_out)
    M = torch.zeros(n_out, n_in)
    for i in range(n_out):
        M[i, int(start[i]):int(start[i]) + taps.shape[1]] = taps[i]
    assert torch.equal(M, interpolation_matrix(n_in, n_out))


@needs_native
@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 40),
       H=st.integers(1, 120), W=st.integers(1, 120), normalize=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_native_resize_matches_pytorch(b, c, h, w, H, W, normalize, seed):
    X = torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(seed))
    scale, shift = (1 / (255 * 0.353), -0.286 / 0.353) if normalize else (1 / 255, 0.0)
    ours = resize_uint8(X, (H, W), scale, shift)
    ref = resize(X.float() * scale + shift, (H, W))
    assert ours.shape == (b, c, H, W) and ours.dtype == torch.float32
    assert float((ours - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))


@needs_native
def test_datamodule_batches_equal_with_and_without_native(monkeypatch):
    data = make_synthetic(seed=0, num_train=300, num_test=100)
    kw = dict(batch_size=64, resize=48, normalize=True, augment="crop+flip", dataset=data)
    fast = [X for X, _ in DataModule(**kw).train_dataloader()]
    monkeypatch.setattr(native, "load", lambda: None)
    slow = [X for X, _ in DataModule(**kw).train_dataloader()]
    assert len(fast) == len(slow) == 5
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-5)


# ------------------------------------------------- fused sigmoid + average pooling
def _in_layout(Z: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nhwc":
        return Z.contiguous(memory_format=torch.channels_last)
    if layout == "cnhw":  # neither: the op copies it to NCHW first
        return Z.transpose(0, 1).contiguous().transpose(0, 1)
    return Z.contiguous()


@needs_native
@settings(max_examples=80, deadline=None)
@given(b=st.integers(1, 4), c=st.integers(1, 17), h=st.integers(1, 30), w=st.integers(1, 30),
       k=st.integers(1, 4), layout=st.sampled_from(["nchw", "nhwc", "cnhw"]),
       seed=st.integers(0, 2**31 - 1))
def test_sigmoid_avg_pool_matches_pytorch_values_and_gradients(b, c, h, w, k, layout, seed):
    from cnnlab.accel.fused import sigmoid_avg_pool2d

    if min(h, w) < k:
        h, w = max(h, k), max(w, k)
    g = torch.Generator().manual_seed(seed)
    Z = _in_layout(torch.randn(b, c, h, w, generator=g) * 6, layout)
    Z1, Z2 = Z.clone().requires_grad_(), Z.clone().requires_grad_()
    ours = sigmoid_avg_pool2d(Z1, k)
    ref = torch.nn.functional.avg_pool2d(torch.sigmoid(Z2), k)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    G = torch.randn(ref.shape, generator=g)
    ours.backward(G)
    ref.backward(G)
    torch.testing.assert_close(Z1.grad, Z2.grad, rtol=1e-5, atol=1e-6)


@needs_native
def test_sigmoid_avg_pool_keeps_nan_and_saturates():
    from cnnlab.accel.fused import sigmoid_avg_pool2d

    Z = torch.tensor([[[[float("nan"), 0.0], [0.0, 0.0]],
                       [[-1e4, -1e4], [1e4, 1e4]]]])
    out = sigmoid_avg_pool2d(Z, 2)
    assert torch.isnan(out[0, 0]).all() and float(out[0, 1]) == 0.5


def test_sigmoid_avg_pool_without_native_is_pytorch(monkeypatch):
    from cnnlab.accel import fused

    monkeypatch.setattr(native, "load", lambda: None)
    Z = torch.randn(2, 3, 6, 6)
    ref = torch.nn.functional.avg_pool2d(torch.sigmoid(Z), 2)
    assert torch.equal(fused.sigmoid_avg_pool2d(Z, 2), ref)


@needs_native
def test_accelerated_fuses_lenet_and_keeps_its_function():
    import copy

    from cnnlab.accel import accelerated
    from cnnlab.accel.fused import SigmoidAvgPool2d, SigmoidInNextPool
    from cnnlab.accel.smallconv import NativeConv2d
    from cnnlab.models import create_model

    torch.manual_seed(0)
    ref = create_model("lenet")
    net = copy.deepcopy(ref)
    X = torch.rand(16, 1, 28, 28)
    y = torch.arange(16) % 10
    with accelerated(net, "cpu"):
        assert isinstance(net.act1, SigmoidInNextPool) and isinstance(net.pool1, SigmoidAvgPool2d)
        assert isinstance(net.act2, SigmoidInNextPool) and isinstance(net.pool2, SigmoidAvgPool2d)
        assert type(net.act3) is torch.nn.Sigmoid  # no pool after it
        assert isinstance(net.conv1, NativeConv2d) and isinstance(net.conv2, NativeConv2d)
        assert list(net.state_dict()) == list(ref.state_dict())
        torch.testing.assert_close(net(X), ref(X), rtol=1e-5, atol=1e-5)
        for m in (net, ref):
            torch.nn.functional.cross_entropy(m(X), y).backward()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


# ------------------------------------------------------ small convolutions
@needs_native
@settings(max_examples=80, deadline=None)
@given(b=st.integers(1, 5), c=st.integers(1, 16), h=st.integers(1, 20), w=st.integers(1, 20),
       m=st.integers(1, 16), k=st.integers(1, 7), p=st.integers(0, 3), bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_native_conv_matches_conv2d_values_and_gradients(b, c, h, w, m, k, p, bias, seed):
    from cnnlab.accel.smallconv import NativeConv2d

    if min(h, w) + 2 * p < k:
        h, w = h + k, w + k
    torch.manual_seed(seed)
    conv = NativeConv2d(c, m, k, padding=p, bias=bias)
    ref = torch.nn.Conv2d(c, m, k, padding=p, bias=bias)
    ref.load_state_dict(conv.state_dict())
    X = torch.randn(b, c, h, w)
    X1, X2 = X.clone().requires_grad_(c > 1), X.clone().requires_grad_(c > 1)
    Y, Y_ref = conv(X1), ref(X2)
    assert Y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(Y, Y_ref, rtol=1e-5, atol=1e-5)
    G = torch.randn_like(Y_ref)
    Y.backward(G)
    Y_ref.backward(G)
    scale = max(1.0, float(ref.weight.grad.abs().max()))
    torch.testing.assert_close(conv.weight.grad / scale, ref.weight.grad / scale,
                               rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(conv.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    if c > 1:
        torch.testing.assert_close(X1.grad, X2.grad, rtol=1e-4, atol=1e-5)


def test_native_conv_input_gradient_of_one_channel_images():
    from cnnlab.accel.smallconv import NativeConv2d

    torch.manual_seed(0)
    conv = NativeConv2d(1, 4, 3, padding=1)
    X = torch.randn(2, 1, 8, 8, requires_grad=True)  # e.g. a saliency map
    conv(X).sum().backward()
    X2 = X.detach().requires_grad_()
    torch.nn.functional.conv2d(X2, conv.weight, conv.bias, padding=1).sum().backward()
    torch.testing.assert_close(X.grad, X2.grad)


@needs_native
@pytest.mark.parametrize("shape", [(128, 6, 16, 14, 14, 5, 0),   # LeNet's second layer
                                   (3, 1, 6, 28, 28, 5, 2),      # LeNet's first
                                   (2, 3, 5, 9, 7, 3, 1), (2, 2, 9, 6, 11, 4, 3)])
def test_native_input_gradient_kernel_matches_pytorch(shape, monkeypatch):
    """The C scatter kernel itself (PyTorch's transposed convolution, the op's fallback,
    is made to fail) against torch's conv2d_input."""
    from cnnlab.native import ops

    B, C, M, H, W, k, p = shape
    torch.manual_seed(0)
    X = torch.randn(B, C, H, W)
    weight = torch.randn(M, C, k, k)
    dY = torch.randn_like(torch.nn.functional.conv2d(X, weight, padding=p))
    ref = torch.nn.grad.conv2d_input(X.shape, weight, dY, padding=p)

    def no_fallback(*args, **kwargs):
        raise AssertionError("the native kernel declined")

    monkeypatch.setattr(ops.F, "conv_transpose2d", no_fallback)
    dX = ops.conv2d_small_backward(dY, X, weight, p, True, False)[0]
    assert dX.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(dX, ref, rtol=1e-4, atol=1e-4)


@pytest.fixture
def avx2_only_lib(native_variant):
    """The library built without avx512.c's kernels, as on an AVX2-only CPU."""
    return native_variant("CNNLAB_NO_AVX512")


def _cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        return next((set(line.split(":", 1)[1].split()) for line in f
                     if line.startswith("flags")), set())


@needs_native
def test_the_cpu_chooses_the_one_channel_kernels(avx2_only_lib):
    """conv1.c's AVX-512 path is in the build exactly where the CPU reports AVX-512 (the
    library is compiled for this machine), and status() says which path runs."""
    has = "avx512f" in _cpu_flags()
    assert native.load().cnnlab_native_avx512() == has
    assert native.status().endswith("(AVX-512)" if has else "(AVX2)")
    assert avx2_only_lib.cnnlab_native_avx512() == 0


@needs_native
@pytest.mark.parametrize("build", ["machine", "avx2"])
@pytest.mark.parametrize("shape", [(3, 28, 28, 6, 5, 2),    # LeNet's first layer
                                   (2, 28, 28, 16, 3, 1),   # 28 vectors a row: 3 chunks
                                   (2, 9, 33, 15, 7, 3), (5, 12, 10, 13, 4, 0),
                                   (2, 3, 3, 7, 3, 2), (1, 1, 1, 6, 1, 0), (2, 6, 50, 16, 5, 2)])
def test_one_channel_kernels_match_pytorch(build, shape, avx2_only_lib, monkeypatch):
    """The one-input-channel forward and weight gradient of each build (the machine's, and
    the AVX2 one every x86-64 CPU with AVX2 runs) against PyTorch; PyTorch's own paths
    are made to fail, so the C kernels are what is compared."""
    from cnnlab.native import ops

    if build == "avx2":
        monkeypatch.setattr(native, "load", lambda: avx2_only_lib)
    B, H, W, M, k, p = shape
    torch.manual_seed(sum(shape))
    X, w, b = torch.randn(B, 1, H, W), torch.randn(M, 1, k, k), torch.randn(M)
    ref = torch.nn.functional.conv2d(X, w, b, padding=p)
    dY = torch.randn_like(ref)
    dW_ref = torch.nn.grad.conv2d_weight(X, w.shape, dY, padding=p)

    def no_fallback(*args, **kwargs):
        raise AssertionError("the native kernel declined")

    monkeypatch.setattr(ops.F, "conv2d", no_fallback)
    monkeypatch.setattr(torch.nn.grad, "conv2d_weight", no_fallback)
    Y = ops.conv2d_small(X, w, b, p)
    assert Y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(Y, ref, rtol=1e-5, atol=1e-5)
    _, dW, db = ops.conv2d_small_backward(dY, X, w, p, False, True)
    scale = float(dW_ref.abs().max())
    torch.testing.assert_close(dW / scale, dW_ref / scale, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(db, dY.sum((0, 2, 3)), rtol=1e-4, atol=1e-4)


@needs_native
@pytest.mark.parametrize("build", ["machine", "avx2"])
@pytest.mark.parametrize("shape", [(3, 6, 14, 14, 16, 5, 0),   # LeNet's second layer
                                   (2, 3, 9, 7, 12, 3, 1),     # 12 outputs: masked stores
                                   (2, 16, 30, 13, 16, 3, 1),  # 13 pixels a row: 2 chunks
                                   (1, 2, 5, 20, 9, 7, 3), (2, 4, 6, 6, 5, 3, 1)])  # 5: AVX2's
def test_several_channel_forward_of_each_build_matches_pytorch(build, shape, avx2_only_lib):
    """cnnlab_conv_fwd of several input channels in each build (avx512.c's kernel for 9..16
    outputs where the CPU has AVX-512, else conv.c's) against F.conv2d; nothing is
    written past Y's last float."""
    lib = native.load() if build == "machine" else avx2_only_lib
    B, C, H, W, M, k, p = shape
    torch.manual_seed(sum(shape))
    X, w, b = torch.randn(B, H, W, C), torch.randn(M, C, k, k), torch.randn(M)  # X: NHWC
    Mp = 8 if M <= 8 else 16
    Wt, bp = torch.zeros(k * k * C, Mp), torch.zeros(Mp)
    Wt[:, :M], bp[:M] = w.permute(2, 3, 1, 0).reshape(k * k * C, M), b
    ref = torch.nn.functional.conv2d(X.permute(0, 3, 1, 2), w, b, padding=p).permute(0, 2, 3, 1)
    out = torch.full((ref.numel() + 64,), 7.0)
    assert lib.cnnlab_conv_fwd(X.data_ptr(), Wt.data_ptr(), bp.data_ptr(), out.data_ptr(),
                               B, H, W, C, M, k, p) == 0
    torch.testing.assert_close(out[:ref.numel()].view(ref.shape), ref, rtol=1e-5, atol=1e-5)
    assert (out[ref.numel():] == 7.0).all()


@needs_native
@pytest.mark.parametrize("build", ["machine", "avx2"])
def test_the_second_lenet_forward_runs_native_only_with_avx512(build, avx2_only_lib,
                                                               monkeypatch):
    """conv2d_small sends LeNet's 6 -> 16 forward to the C kernel where the build has the
    AVX-512 one (faster than oneDNN's in a training step), and to PyTorch elsewhere."""
    from cnnlab.native import ops

    lib = native.load() if build == "machine" else avx2_only_lib
    monkeypatch.setattr(native, "load", lambda: lib)
    calls = []

    def conv2d(*args, **kwargs):
        calls.append(1)
        return torch.conv2d(*args, **kwargs)

    monkeypatch.setattr(ops.F, "conv2d", conv2d)
    X, w, b = torch.randn(2, 6, 14, 14), torch.randn(16, 6, 5, 5), torch.randn(16)
    Y = ops.conv2d_small(X, w, b, 0)
    torch.testing.assert_close(Y, torch.conv2d(X, w, b), rtol=1e-5, atol=1e-5)
    assert bool(calls) != bool(lib.cnnlab_native_avx512())


@needs_native
@pytest.mark.parametrize("build", ["machine", "avx2"])
@pytest.mark.parametrize("shape", [(3, 6, 28, 28), (2, 16, 10, 10),  # LeNet's two pools
                                   (2, 5, 9, 7), (1, 17, 3, 33), (2, 1, 2, 2)])
@pytest.mark.parametrize("nhwc", [False, True])
def test_sigmoid_pool_kernels_of_each_build_match_pytorch(build, shape, nhwc, avx2_only_lib):
    """The C entry points of the 2x2 sigmoid + average pool, forward and backward, called
    directly (0: computed in C) for each build, against PyTorch; odd sizes too (floor)."""
    lib = native.load() if build == "machine" else avx2_only_lib
    B, C, H, W = shape
    torch.manual_seed(sum(shape))
    Z = torch.randn(B, C, H, W) * 6
    Z[0, 0, 0, 0], Z[-1, -1, -1, -1] = -100.0, float("nan")
    ref_S = torch.sigmoid(Z)
    ref_P = torch.nn.functional.avg_pool2d(ref_S, 2)
    dP = torch.randn_like(ref_P)
    ref_dZ = torch.ops.aten.avg_pool2d_backward(dP, ref_S, [2, 2], [2, 2], [0, 0], False, True,
                                                None) * ref_S * (1 - ref_S)
    mf = torch.channels_last if nhwc else torch.contiguous_format
    planes, c = (B, C) if nhwc else (B * C, 1)
    Z, dP = Z.contiguous(memory_format=mf), dP.contiguous(memory_format=mf)
    S, P, dZ = (torch.full_like(t, 7.0).contiguous(memory_format=mf) for t in (Z, ref_P, Z))
    assert lib.cnnlab_sigmoid_avgpool_fwd(Z.data_ptr(), S.data_ptr(), P.data_ptr(), planes,
                                          H, W, c, 2) == 0
    assert lib.cnnlab_sigmoid_avgpool_bwd(S.data_ptr(), dP.data_ptr(), dZ.data_ptr(), planes,
                                          H, W, c, 2) == 0
    torch.testing.assert_close(S, ref_S, rtol=1e-6, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(P, ref_P, rtol=1e-6, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(dZ, ref_dZ, rtol=1e-5, atol=1e-6, equal_nan=True)


@needs_native
def test_one_channel_kernels_keep_inf_and_nan_where_pytorch_has_them():
    """Each lane computes only its own output's products: a non-finite pixel reaches the
    outputs (and weight-gradient entries) PyTorch's conv2d gives it, no others."""
    from cnnlab.native import ops

    torch.manual_seed(0)
    X, w = torch.randn(2, 1, 12, 12), torch.randn(6, 1, 5, 5)
    X[1, 0, 3, 4] = float("inf")
    Y, ref = ops.conv2d_small(X, w, None, 2), torch.nn.functional.conv2d(X, w, padding=2)
    torch.testing.assert_close(Y, ref, equal_nan=True)
    assert torch.isfinite(Y[0]).all() and not torch.isfinite(Y[1]).all()
    dY = torch.randn_like(ref)
    dY[0, 2, 5, 5] = float("nan")
    _, dW, db = ops.conv2d_small_backward(dY, torch.randn(2, 1, 12, 12), w, 2, False, True)
    assert torch.isnan(dW[2]).all() and torch.isfinite(dW[[0, 1, 3, 4, 5]]).all()
    assert torch.isnan(db[2]) and torch.isfinite(db[[0, 1, 3, 4, 5]]).all()


@needs_native
def test_native_input_gradient_kernel_declines_what_it_cannot_do():
    from cnnlab.accel.smallconv import native_dgrad_supported
    from cnnlab.native import ops

    # a kernel row of 7 x 16 floats does not fit the kernel's 6 accumulators: PyTorch's
    dY, weight = torch.randn(1, 16, 4, 4), torch.randn(16, 16, 7, 7)
    dX = ops.conv2d_small_backward(dY, torch.zeros(1, 16, 4, 4), weight, 3, True, False)[0]
    ref = torch.nn.grad.conv2d_input((1, 16, 4, 4), weight, dY, padding=3)
    torch.testing.assert_close(dX, ref, rtol=1e-4, atol=1e-4)
    assert not native_dgrad_supported(torch.nn.Conv2d(16, 16, 7, padding=3))
    assert native_dgrad_supported(torch.nn.Conv2d(6, 16, 5))
    assert not native_dgrad_supported(torch.nn.Conv2d(6, 16, 1))  # a matrix product
    assert not native_dgrad_supported(torch.nn.Conv2d(6, 16, 5, stride=2))


@needs_native
def test_native_conv_input_gradient_with_inf_is_pytorchs():
    """inf in the output gradient: the kernel declines (rc 1) and the result, NaNs and
    all, is PyTorch's, not NaN spread to neighbouring pixels."""
    from cnnlab.accel.smallconv import NativeConv2d

    torch.manual_seed(0)
    conv = NativeConv2d(6, 16, 5)
    X = torch.randn(4, 6, 14, 14, requires_grad=True)
    G = torch.randn(4, 16, 10, 10)
    G[1, 3, 4, 5] = float("inf")
    conv(X).backward(G)
    X2 = X.detach().requires_grad_()
    torch.nn.functional.conv2d(X2, conv.weight, conv.bias).backward(G)
    assert torch.isnan(X.grad).any() or torch.isinf(X.grad).any()
    torch.testing.assert_close(X.grad, X2.grad, equal_nan=True)


@needs_native
def test_accelerated_keeps_every_registered_models_function():
    """Each registered model that accelerated() changes: same outputs and gradients."""
    import copy

    from cnnlab.accel import accelerated
    from cnnlab.models import create_model, get_model_info, list_models

    changed = []
    for name in list_models():
        if name == "vgg11":  # 129 M parameters at 224 px; vgg11-narrow has its layers
            continue
        torch.manual_seed(0)
        ref = create_model(name)
        net = copy.deepcopy(ref)
        with accelerated(net, "cpu"):
            if [type(m) for m in net.modules()] == [type(m) for m in ref.modules()]:
                continue
            changed.append(name)
            side = get_model_info(name).input_size
            X = torch.rand(2, 1, side, side)
            y = torch.arange(2)
            outs = []
            for m in (net, ref):  # the same dropout masks: swapped layers draw no random numbers
                torch.manual_seed(1)
                outs.append(m(X))
                torch.nn.functional.cross_entropy(outs[-1], y).backward()
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5, msg=name)
        # relative to the model's largest gradient: a conv bias before BatchNorm has a
        # gradient of zero in exact arithmetic, i.e. pure rounding noise in both
        scale = max(float(q.grad.abs().max()) for q in ref.parameters())
        for (pname, p), q in zip(net.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad / scale, q.grad / scale, rtol=1e-3, atol=1e-4,
                                       msg=f"{name} {pname}")
    assert {"lenet", "lenet-bn", "lenet-modern", "fastnet"} <= set(changed)
