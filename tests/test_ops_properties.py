"""ops.conv2d / max_pool2d / avg_pool2d against torch.nn.functional: values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnlab import ops

ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tensors are tiny: a second thread only adds hand-off cost on a busy machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> None:
    assert a.shape == b.shape
    # Gradients of larger sums get a tolerance that scales with their magnitude.
    assert torch.allclose(a, b, atol=atol, rtol=1e-5), float((a - b).abs().max())


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph) + 7))
    W = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw) + 7))
    return dict(N=draw(st.integers(1, 3)), c_in=c_in, c_out=c_out, H=H, W=W,
                kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                groups=groups, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_conv2d_matches_functional(case):
    g = torch.Generator().manual_seed(case["seed"])
    X = torch.randn(case["N"], case["c_in"], case["H"], case["W"], generator=g)
    weight = torch.randn(case["c_out"], case["c_in"] // case["groups"], *case["kernel"],
                         generator=g)
    bias = torch.randn(case["c_out"], generator=g) if case["bias"] else None
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    leaves = [t.clone().requires_grad_() for t in (X, weight) + ((bias,) if case["bias"] else ())]
    refs = [t.clone().requires_grad_() for t in leaves]
    Y = ops.conv2d(leaves[0], leaves[1], leaves[2] if case["bias"] else None, *args)
    Y_ref = F.conv2d(refs[0], refs[1], refs[2] if case["bias"] else None, *args)
    _close(Y, Y_ref)
    grad_Y = torch.randn(Y_ref.shape, generator=g)
    for got, want in zip(torch.autograd.grad(Y, leaves, grad_Y),
                         torch.autograd.grad(Y_ref, refs, grad_Y)):
        _close(got, want, atol=1e-4)


@st.composite
def pool_cases(draw, with_dilation: bool):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if with_dilation else (1, 1)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph) + 8))
    W = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw) + 8))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 3)), H=H, W=W,
                kernel=(kh, kw), stride=stride, padding=(ph, pw), dilation=(dh, dw),
                seed=draw(st.integers(0, 2**16)), ties=draw(st.booleans()),
                ceil_mode=draw(st.booleans()))


def _pool_input(case) -> torch.Tensor:
    g = torch.Generator().manual_seed(case["seed"])
    X = torch.randn(case["N"], case["C"], case["H"], case["W"], generator=g)
    # Ties (as after a ReLU) check that the whole gradient goes to one pixel, like F.
    return X.round().clamp(min=0) if case["ties"] else X


@settings(max_examples=150, deadline=None)
@given(pool_cases(with_dilation=True))
def test_max_pool2d_matches_functional(case):
    X = _pool_input(case)
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"],
            case["ceil_mode"])
    # A dilated window can fall entirely into the padding: its value is -inf in both, but
    # F then credits the gradient to an arbitrary (even out-of-plane) pixel; skip those.
    assume(not torch.isinf(F.max_pool2d(torch.zeros_like(X), *args)).any())
    a, b = X.clone().requires_grad_(), X.clone().requires_grad_()
    Y, Y_ref = ops.max_pool2d(a, *args), F.max_pool2d(b, *args)
    assert torch.equal(Y, Y_ref)
    grad_Y = torch.randn(Y_ref.shape)
    Y.backward(grad_Y)
    Y_ref.backward(grad_Y)
    _close(a.grad, b.grad)


@settings(max_examples=150, deadline=None)
@given(pool_cases(with_dilation=False))
def test_avg_pool2d_matches_functional(case):
    X = _pool_input(case)
    args = (case["kernel"], case["stride"], case["padding"], case["ceil_mode"])
    a, b = X.clone().requires_grad_(), X.clone().requires_grad_()
    Y, Y_ref = ops.avg_pool2d(a, *args), F.avg_pool2d(b, *args)
    _close(Y, Y_ref)
    grad_Y = torch.randn(Y_ref.shape)
    Y.backward(grad_Y)
    Y_ref.backward(grad_Y)
    _close(a.grad, b.grad)


def test_gradcheck_conv2d_float64():
    torch.manual_seed(0)
    X = torch.randn(2, 4, 5, 4, dtype=torch.float64, requires_grad=True)
    W = torch.randn(4, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def f(X, W, b):
        return ops.conv2d(X, W, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)

    assert torch.autograd.gradcheck(f, (X, W, b))
    assert torch.autograd.gradgradcheck(f, (X, W, b))


def test_gradcheck_pooling_float64():
    torch.manual_seed(0)
    X = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda X: ops.max_pool2d(X, 3, 2, 1), (X,))
    assert torch.autograd.gradcheck(lambda X: ops.max_pool2d(X, (2, 3), 1, (1, 1), 2), (X,))
    assert torch.autograd.gradcheck(lambda X: ops.avg_pool2d(X, 3, 2, 1), (X,))
    assert torch.autograd.gradcheck(lambda X: ops.avg_pool2d(X, 2), (X,))
    assert torch.autograd.gradcheck(lambda X: ops.avg_pool2d(X, 3, 2, 1, True), (X,))
    assert torch.autograd.gradcheck(lambda X: ops.max_pool2d(X, 2, 2, 0, 1, True), (X,))
    assert torch.autograd.gradgradcheck(lambda X: ops.avg_pool2d(X, (3, 2), (1, 2), 1), (X,))


def test_unbatched_input_like_functional():
    torch.manual_seed(0)
    X, W, b = torch.randn(4, 9, 9), torch.randn(6, 2, 3, 3), torch.randn(6)
    _close(ops.conv2d(X, W, b, 2, 1, 1, 2), F.conv2d(X, W, b, 2, 1, 1, 2))
    assert torch.equal(ops.max_pool2d(X, 3, 2, 1), F.max_pool2d(X, 3, 2, 1))
    _close(ops.avg_pool2d(X, 3, 2, 1), F.avg_pool2d(X, 3, 2, 1))


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel, dilation", [((3, 4), (1, 1)), ((2, 3), (2, 1))])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_string_padding_like_functional(padding, kernel, dilation):
    torch.manual_seed(0)
    X, W = torch.randn(2, 3, 8, 9), torch.randn(5, 3, *kernel)
    _close(ops.conv2d(X, W, padding=padding, dilation=dilation),
           F.conv2d(X, W, padding=padding, dilation=dilation))


def test_max_pool2d_nan_propagates_like_functional():
    X = torch.randn(1, 2, 6, 6)
    X[0, 0, 1, 1] = X[0, 1, 4, 4] = X[0, 1, 4, 5] = float("nan")
    a, b = X.clone().requires_grad_(), X.clone().requires_grad_()
    Y, Y_ref = ops.max_pool2d(a, 3, 2, 1), F.max_pool2d(b, 3, 2, 1)
    assert torch.equal(Y.isnan(), Y_ref.isnan())
    assert torch.equal(Y.nan_to_num(), Y_ref.nan_to_num())
    Y.sum().backward()
    Y_ref.sum().backward()
    assert torch.equal(a.grad, b.grad)
