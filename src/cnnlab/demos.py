"""The chapter-7 demonstrations and exercises as functions that check their own claims.

Each demo computes with :mod:`cnnlab.ops`, returns a :class:`DemoResult` (the numbers
and a printable report) and raises ``AssertionError`` if a claim does not hold (an
explicit check, so it also runs under ``python -O``). ``cnnlab demo NAME`` prints the
report; ``cnnlab demo --list`` lists them.

Example:
    >>> from cnnlab.demos import run_demo
    >>> r = run_demo("edge")
    >>> r.values["edge_columns"]
    [1, 5]
    >>> r.values["transposed_abs_sum"]
    0.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812 - only to cross-check cnnlab.ops below

from cnnlab import ops
from cnnlab.errors import ConfigError


@dataclass
class DemoResult:
    """What a demo found: ``values`` (numbers, for tests and notebooks) and ``lines``."""

    name: str
    title: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"== {self.name}: {self.title}", *self.lines])


def _check(condition: bool, claim: str) -> None:
    if not condition:
        raise AssertionError(f"demo claim failed: {claim}")


def _fmt(T: torch.Tensor, decimals: int = 2) -> str:
    rows = T.detach().to(torch.float64).round(decimals=decimals).tolist()
    return "\n".join("    " + " ".join(f"{v + 0.0:6g}" for v in row) for row in rows)  # no -0


DEMOS: dict[str, tuple[Callable[..., DemoResult], str]] = {}


def _demo(name: str, title: str):
    def wrap(fn: Callable[..., DemoResult]) -> Callable[..., DemoResult]:
        DEMOS[name] = (fn, title)
        return fn
    return wrap


def list_demos() -> list[tuple[str, str]]:
    """``[(name, one-line description), ...]`` in the book's order."""
    return [(name, title) for name, (_, title) in DEMOS.items()]


def run_demo(name: str, **kwargs: Any) -> DemoResult:
    """Run the demo ``name`` (see :func:`list_demos`) and return its result."""
    if name not in DEMOS:
        raise ConfigError(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}")
    return DEMOS[name][0](**kwargs)


# ------------------------------------------------------------------ 7.2

def edge_image() -> torch.Tensor:
    """The book's 6x8 image: ones with a black vertical band in columns 2-5 (d2l 7.2.3)."""
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    return X


@_demo("edge", "a [1, -1] kernel finds vertical edges, and nothing in the transposed image")
def edge() -> DemoResult:
    X, K = edge_image(), torch.tensor([[1.0, -1.0]])
    Y = ops.corr2d(X, K)
    cols = sorted({int(c) for c in Y.nonzero()[:, 1]})
    _check(tuple(Y.shape) == (6, 7), "output is 6x7")
    _check(bool((Y[:, 1] == 1).all() and (Y[:, 5] == -1).all()), "1 in column 1, -1 in column 5")
    _check(cols == [1, 5], "zeros everywhere else")
    YT = ops.corr2d(X.t(), K)
    _check(tuple(YT.shape) == (8, 5) and float(YT.abs().sum()) == 0.0,
           "X.T (horizontal edges) gives all zeros (8x5)")
    YTT = ops.corr2d(X.t(), K.t())
    _check(torch.equal(YTT, Y.t()), "transposing both X and K transposes the output")
    return DemoResult("edge", DEMOS["edge"][1], {
        "Y": Y.tolist(), "edge_columns": cols, "transposed_shape": tuple(YT.shape),
        "transposed_abs_sum": float(YT.abs().sum())}, [
        "X (6x8):", _fmt(X), "corr2d(X, [[1, -1]]) (6x7): 1 = light->dark, -1 = dark->light",
        _fmt(Y), f"corr2d(X.T, K) is {YT.shape[0]}x{YT.shape[1]} and all zeros: the kernel only "
        "sees changes along a row", "corr2d(X.T, K.T) == corr2d(X, K).T: True"])


@_demo("learn-kernel", "learn the [1, -1] kernel from X and Y by gradient descent")
def learn_kernel(seed: int = 0, lr: float = 3e-2, num_iters: int = 10) -> DemoResult:
    X = edge_image().reshape(1, 1, 6, 8)
    Y = ops.corr2d(edge_image(), torch.tensor([[1.0, -1.0]])).reshape(1, 1, 6, 7)
    g = torch.Generator().manual_seed(seed)
    # nn.Conv2d's default init for fan_in = 2: uniform(-1/sqrt(2), 1/sqrt(2))
    weight = ((torch.rand((1, 1, 1, 2), generator=g) * 2 - 1) / 2 ** 0.5).requires_grad_()
    losses, lines = [], []
    for i in range(num_iters):
        Y_hat = ops.conv2d(X, weight)
        loss = ((Y_hat - Y) ** 2).sum()
        weight.grad = None
        loss.backward()
        with torch.no_grad():
            weight -= lr * weight.grad
        if (i + 1) % 2 == 0:  # as the book: print the loss every 2 iterations
            losses.append(float(loss.detach()))
            lines.append(f"epoch {i + 1}, loss {losses[-1]:.3f}")
    learned = weight.detach().reshape(1, 2)
    # The loss is quadratic in the 2 weights with Hessian 2 X^T X = [[36, 24], [24, 36]]
    # (eigenvalues 60 along [1, 1], 12 along [1, -1]); with lr 0.03 the error shrinks by
    # |1 - 0.03 * 60| = 0.8 and |1 - 0.03 * 12| = 0.64 per step, so over the 8 steps
    # between the first and the last print the loss falls 36x to 1300x depending on the
    # random start (the book's run: 9.263 -> 0.008). We claim > 30x.
    _check(losses[-1] < losses[0] / 30, "the loss falls by more than an order of magnitude")
    _check(float((learned - torch.tensor([[1.0, -1.0]])).abs().max()) < 0.15,
           "the learned kernel is close to [1, -1]")
    lines.append(f"learned kernel: {[[round(v, 4) for v in learned[0].tolist()]]} "
                 f"(true [[1, -1]]); loss fell {losses[0] / max(losses[-1], 1e-12):.0f}x")
    return DemoResult("learn-kernel", DEMOS["learn-kernel"][1],
                      {"losses": losses, "kernel": learned.tolist()}, lines)


@_demo("diagonal", "a diagonal edge: what [1, -1] and its transpose find")
def diagonal(size: int = 6) -> DemoResult:
    # lower triangle of ones: a light/dark edge along the diagonal
    X = torch.tril(torch.ones(size, size))
    K = torch.tensor([[1.0, -1.0]])
    Y, YK = ops.corr2d(X, K), ops.corr2d(X, K.t())
    YX = ops.corr2d(X.t(), K)
    _check(torch.equal(Y, torch.eye(size, size - 1)), "[1, -1] marks the diagonal with +1")
    _check(int((YK != 0).sum()) == size - 1 and float(YK.sum()) == -(size - 1),
           "K.T marks it too, with -1 (one per column)")
    _check(torch.equal(ops.corr2d(X.t(), K.t()), Y.t()),
           "transposing X and K transposes the output")
    return DemoResult("diagonal", DEMOS["diagonal"][1], {
        "Y": Y.tolist(), "Y_kernel_t": YK.tolist(), "Y_image_t": YX.tolist()}, [
        f"X = lower triangle of ones ({size}x{size}):", _fmt(X),
        "corr2d(X, [[1, -1]]): +1 on every row where the diagonal edge is", _fmt(Y),
        "corr2d(X, [[1], [-1]]): the same edge, seen vertically, with -1", _fmt(YK),
        "corr2d(X.T, [[1, -1]]): the image flipped over the diagonal: -1 below it", _fmt(YX),
        "a diagonal edge is both a horizontal and a vertical change, so both kernels fire"])


@_demo("second-derivative", "kernels for the second derivative (7.2 exercise)")
def second_derivative(size: int = 8) -> DemoResult:
    j = torch.arange(size, dtype=torch.float64)
    ramp, parabola = j.repeat(size, 1), (j ** 2).repeat(size, 1)  # f(x) = x, f(x) = x^2
    K = torch.tensor([[1.0, -2.0, 1.0]], dtype=torch.float64)  # f(x-1) - 2f(x) + f(x+1)
    d2_ramp, d2_par = ops.corr2d(ramp, K), ops.corr2d(parabola, K)
    _check(float(d2_ramp.abs().max()) == 0.0, "f'' of a linear ramp is 0")
    _check(bool((d2_par == 2).all()), "f'' of x^2 is 2 everywhere")
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64)
    bowl = j.reshape(-1, 1) ** 2 + j ** 2  # x^2 + y^2, Laplacian 4
    lap_bowl = ops.corr2d(bowl, lap)
    _check(bool((lap_bowl == 4).all()), "the 3x3 Laplacian of x^2 + y^2 is 4")
    return DemoResult("second-derivative", DEMOS["second-derivative"][1], {
        "d2_ramp": float(d2_ramp.abs().max()), "d2_parabola": d2_par[0].tolist(),
        "laplacian_bowl": float(lap_bowl.mean())}, [
        "K = [[1, -2, 1]] computes f(x-1) - 2 f(x) + f(x+1) ~ f''(x)",
        f"on f = x:   {d2_ramp[0].tolist()}", f"on f = x^2: {d2_par[0].tolist()}",
        "the 2-D version (Laplacian) [[0,1,0],[1,-4,1],[0,1,0]] on x^2 + y^2 gives "
        f"{float(lap_bowl.mean()):g} everywhere",
        "a kernel for the d-th derivative needs at least d + 1 taps"])


@_demo("blur", "blur kernels: box and Gaussian (7.2 exercise)")
def blur(seed: int = 0, size: int = 64) -> DemoResult:
    g = torch.Generator().manual_seed(seed)
    box = torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64)
    t = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    gauss = (torch.outer(t, t) / 16).reshape(1, 1, 3, 3)  # binomial ~ Gaussian, sigma ~ 0.7
    const = torch.full((1, 1, size, size), 0.7, dtype=torch.float64)
    noise = torch.randn((1, 1, size, size), generator=g, dtype=torch.float64)
    values, lines = {}, []
    for name, K in (("box", box), ("gaussian", gauss)):
        _check(torch.allclose(ops.conv2d(const, K), const[..., 1:-1, 1:-1]),
               f"{name}: a constant image stays the same (the weights sum to 1)")
        ratio = float(ops.conv2d(noise, K).std() / noise.std())
        expected = float(K.pow(2).sum().sqrt())  # std of a weighted mean of iid pixels
        _check(abs(ratio - expected) < 0.1 * expected, f"{name}: noise std shrinks to ~{expected}")
        values[f"{name}_noise_std_ratio"] = ratio
        lines.append(f"{name}: weights sum to 1; noise std x{ratio:.3f} "
                     f"(theory sqrt(sum w^2) = {expected:.3f})")
    edge = ops.conv2d(edge_image().to(torch.float64).reshape(1, 1, 6, 8), box)[0, 0, 0]
    values["blurred_edge_row"] = edge.tolist()
    lines.append(f"a sharp edge row 1 1 0 0 0 0 1 1 blurred by the box: "
                 f"{' '.join(f'{v:.2f}' for v in edge.tolist())}")
    return DemoResult("blur", DEMOS["blur"][1], values, lines)


# ------------------------------------------------------------------ 7.3-7.5

@_demo("stacked", "two stacked kernels (no nonlinearity) equal one (k1+k2-1) kernel")
def stacked(seed: int = 0, k1: int = 3, k2: int = 5, size: int = 12) -> DemoResult:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn((size, size), generator=g, dtype=torch.float64)
    K1 = torch.randn((k1, k1), generator=g, dtype=torch.float64)
    K2 = torch.randn((k2, k2), generator=g, dtype=torch.float64)
    two_steps = ops.corr2d(ops.corr2d(X, K1), K2)
    # K[m, n] = sum_ij K1[m-i, n-j] K2[i, j]: the full convolution of K1 and K2, i.e.
    # cross-correlating K1 (zero-padded by k2-1) with K2 flipped
    padded = F.pad(K1, (k2 - 1,) * 4)
    K = ops.corr2d(padded, torch.flip(K2, (0, 1)))
    one_step = ops.corr2d(X, K)
    diff = float((two_steps - one_step).abs().max())
    _check(tuple(K.shape) == (k1 + k2 - 1,) * 2, "the combined kernel is (k1+k2-1) square")
    _check(diff < 1e-10, "corr2d(corr2d(X, K1), K2) == corr2d(X, K)")
    return DemoResult("stacked", DEMOS["stacked"][1], {
        "kernel_shape": tuple(K.shape), "max_abs_diff": diff}, [
        f"K1 {k1}x{k1}, K2 {k2}x{k2}, X {size}x{size} (random normal, seed {seed})",
        f"combined kernel K = full convolution of K1 and K2: {K.shape[0]}x{K.shape[1]}",
        f"max |corr2d(corr2d(X, K1), K2) - corr2d(X, K)| = {diff:.2e}",
        "so depth without a nonlinearity adds no expressive power, only a larger kernel"])


@_demo("maxpool-not-linear", "max-pooling is not linear, so no convolution can compute it")
def maxpool_not_linear() -> DemoResult:
    A = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    B = torch.tensor([[0.0, 0.0], [0.0, 1.0]])

    def pool(X: torch.Tensor) -> float:
        # + 0.0: -A holds IEEE -0.0 entries, and max(-0.0, ...) = -0.0 would print "-0"
        return float(ops.pool2d(X, (2, 2), mode="max")[0, 0]) + 0.0

    add_lhs, add_rhs = pool(A + B), pool(A) + pool(B)
    neg_lhs, neg_rhs = pool(-A), -pool(A)
    _check(add_lhs != add_rhs, "max(A + B) != max(A) + max(B)")
    _check(neg_lhs != neg_rhs, "max(-A) != -max(A)")
    # average pooling IS linear: it equals a convolution with a 1/k^2 kernel, stride k
    g = torch.Generator().manual_seed(0)
    X = torch.randn((1, 1, 6, 6), generator=g)
    as_conv = ops.conv2d(X, torch.full((1, 1, 2, 2), 0.25), stride=2)
    avg_diff = float((ops.avg_pool2d(X, 2) - as_conv).abs().max())
    _check(avg_diff < 1e-6, "avg-pooling equals a convolution with weights 1/4, stride 2")
    return DemoResult("maxpool-not-linear", DEMOS["maxpool-not-linear"][1], {
        "pool_sum": add_lhs, "sum_pools": add_rhs, "pool_neg": neg_lhs, "neg_pool": neg_rhs,
        "avgpool_vs_conv": avg_diff}, [
        "A = [[1, 0], [0, 0]], B = [[0, 0], [0, 1]], 2x2 max-pooling:",
        f"  pool(A + B) = {add_lhs:g}  but  pool(A) + pool(B) = {add_rhs:g}",
        f"  pool(-A) = {neg_lhs:g}  but  -pool(A) = {neg_rhs:g}",
        "a convolution is linear (conv(A + B) = conv(A) + conv(B)), so none equals max-pooling",
        f"average pooling is linear: it equals conv with weights 1/4, stride 2 "
        f"(max diff {avg_diff:.1e})"])


@_demo("conv1x1-matmul", "a 1x1 convolution is a matrix product over channels")
def conv1x1_matmul(seed: int = 0) -> DemoResult:
    g = torch.Generator().manual_seed(seed)
    X = torch.normal(0, 1, (3, 3, 3), generator=g)
    K = torch.normal(0, 1, (2, 3, 1, 1), generator=g)
    Y1 = ops.corr2d_multi_in_out_1x1(X, K)
    Y2 = ops.corr2d_multi_in_out(X, K)
    diff = float((Y1 - Y2).abs().sum())
    _check(tuple(Y1.shape) == (2, 3, 3), "output (c_o, h, w) = (2, 3, 3)")
    _check(diff < 1e-6, "matmul and loop agree to < 1e-6 (sum of abs diff)")
    return DemoResult("conv1x1-matmul", DEMOS["conv1x1-matmul"][1], {"sum_abs_diff": diff}, [
        "X (c_i=3, 3, 3), K (c_o=2, c_i=3, 1, 1), both N(0, 1)",
        "1x1 conv = K.reshape(c_o, c_i) @ X.reshape(c_i, h*w), reshaped to (c_o, h, w)",
        f"sum |matmul - loop| = {diff:.2e}",
        "each pixel's channel vector goes through the same fully connected layer"])


@_demo("equivariance", "convolution is translation-equivariant; pooling buys local invariance")
def equivariance(seed: int = 0, size: int = 24) -> DemoResult:
    g = torch.Generator().manual_seed(seed)
    X = torch.zeros((1, 1, size, size))
    X[..., 8:14, 9:13] = torch.rand((6, 4), generator=g) + 0.5  # an object away from the border
    W = torch.randn((4, 1, 3, 3), generator=g)

    def feats(Z: torch.Tensor) -> torch.Tensor:
        return torch.relu(ops.conv2d(Z, W, padding=1))

    def rel_change(f, shift) -> float:
        a, b = f(X), f(torch.roll(X, shift, dims=(2, 3)))
        return float((a - b).norm() / a.norm())

    shifted = torch.roll(X, (2, 3), dims=(2, 3))
    equi = float((feats(shifted) - torch.roll(feats(X), (2, 3), dims=(2, 3))).abs().max())
    _check(equi < 1e-5, "conv(shift(X)) == shift(conv(X))")
    pipelines = {
        "conv": feats,
        "conv + maxpool 2x2": lambda Z: ops.max_pool2d(feats(Z), 2),
        "conv + maxpool 4x4": lambda Z: ops.max_pool2d(feats(Z), 4),
        "conv + global max": lambda Z: feats(Z).amax(dim=(2, 3)),
    }
    shifts = [(0, 1), (1, 0), (1, 1)]
    change = {name: sum(rel_change(f, s) for s in shifts) / len(shifts)
              for name, f in pipelines.items()}
    c = list(change.values())
    _check(c[1] < c[0] and c[2] < c[0], "pooled features change less than conv features")
    _check(c[3] < 1e-6, "a global max is invariant to any shift inside the image")
    lines = [f"object {6}x{4} in a {size}x{size} image, 4 random 3x3 kernels + ReLU",
             f"equivariance: max |conv(shift X) - shift(conv X)| = {equi:.1e}",
             "relative change ||f(shifted X) - f(X)|| / ||f(X)|| for 1-pixel shifts:"]
    lines += [f"  {name:<20} {v:.3f}" for name, v in change.items()]
    lines.append("larger pooling windows: features move less when the input moves a little")
    return DemoResult("equivariance", DEMOS["equivariance"][1],
                      {"equivariance_error": equi, "relative_change": change}, lines)
