"""Vectorised max and average pooling from scratch (d2l 7.5).

Semantics of PyTorch's functional max_pool2d / avg_pool2d with their defaults: the stride
defaults to the kernel size, max pooling pads with -inf, average pooling counts
the zero padding in the divisor (``count_include_pad=True``), padding may be at
most half the kernel, and no window starts in the padding alone.

Two paths:

Both work on strided slices, one per kernel offset, never on a copied
(..., kh*kw) window tensor: reductions over tiny trailing axes are several times
slower on CPU than a few elementwise operations on strided views.

* max pooling tracks the running maximum and its offset (F's rule: the first
  maximum wins, NaN propagates), then *gathers* the winners, so that autograd
  routes each gradient to exactly one input pixel through gather's scatter-add;
* average pooling is separable: kh strided row slices are summed, then kw
  strided column slices; its backward is the adjoint, written out by hand.

Example:
    >>> import torch
    >>> X = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> max_pool2d(X, 3, stride=2, padding=1)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    >>> avg_pool2d(X, 2)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError
from cnnlab.ops.shape import IntOrPair, nonnegative_pair, output_side, positive_pair


def _pool_setup(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None,
                padding: IntOrPair, dilation: IntOrPair, ceil_mode: bool, name: str):
    """Validate like F (ConfigError instead of RuntimeError); return the resolved geometry.

    With ceil_mode the last window may run past the padded input (never starting in the
    right/bottom padding, as in F); ``extra`` is how far, in pixels.
    """
    if not isinstance(X, torch.Tensor) or X.dim() not in (3, 4):
        shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ConfigError(f"{name}: X must be 4-D (N, C, H, W) or 3-D (C, H, W), got {shape}")
    k = positive_pair(kernel_size, "kernel_size")
    # F treats stride=None and stride=() as "same as the kernel".
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else positive_pair(stride, "stride")
    p = nonnegative_pair(padding, "padding")
    d = positive_pair(dilation, "dilation")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ConfigError(f"{name}: padding {p} must be at most half of kernel_size {k}; "
                          "use a smaller padding or a larger kernel")
    H, W = X.shape[-2:]
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    if H + 2 * p[0] < span[0] or W + 2 * p[1] < span[1]:
        raise ConfigError(f"{name}: kernel_size {k} (dilation {d}) is larger than the padded "
                          f"input {(H + 2 * p[0], W + 2 * p[1])} of X {tuple(X.shape)}; use a "
                          "smaller kernel or more padding")
    out, extra = [], []
    for i, n in enumerate((H, W)):
        o = output_side(n, k[i], p[i], s[i], d[i], ceil_mode=ceil_mode)
        out.append(o)
        extra.append(max(0, (o - 1) * s[i] + span[i] - (n + 2 * p[i])))
    return k, s, p, d, tuple(out), tuple(extra)


def _window_slices(k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
                   out: tuple[int, int]):
    """For each kernel offset (i, j): the (rows, columns) slices it reads, one per window."""
    for i in range(k[0]):
        rows = slice(i * d[0], i * d[0] + s[0] * (out[0] - 1) + 1, s[0])
        for j in range(k[1]):
            yield rows, slice(j * d[1], j * d[1] + s[1] * (out[1] - 1) + 1, s[1])


def _line_slices(k: int, s: int, out: int):
    """Slices along one dimension (no dilation): slice i reads offset i of every window."""
    return [slice(i, i + s * (out - 1) + 1, s) for i in range(k)]


def max_pool2d(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1,
               ceil_mode: bool = False) -> torch.Tensor:
    """Maximum over each window, like PyTorch's functional max_pool2d.

    Args:
        X: (N, C, H, W) or (C, H, W). kernel_size, stride, padding, dilation: int or pair;
        stride defaults to kernel_size; padding (filled with -inf) is at most kernel/2.
        ceil_mode: round the output size up (a last, partial window), as in F.
        A dilated window that lies entirely in the padding yields -inf and passes no
        gradient back (F credits it to an arbitrary pixel).

    Example:
        >>> import torch
        >>> max_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 3)
        tensor([[[[10.]]]])
    """
    k, s, p, d, (oh, ow), extra = _pool_setup(X, kernel_size, stride, padding, dilation,
                                              ceil_mode, "max_pool2d")
    lead = X.shape[:-2]
    pads = (p[1], p[1] + extra[1], p[0], p[0] + extra[0])
    Xp = F.pad(X, pads, value=-float("inf")) if any(pads) else X
    Hp, Wp = Xp.shape[-2:]
    flat = Xp.reshape(-1, Hp, Wp)
    with torch.no_grad():
        # One pass per kernel offset over strided views (k*k elementwise ops on the output
        # size; much faster than reducing a copied (..., k*k) window tensor). The update
        # rule is F's: a later element wins only if strictly larger, or if it is NaN
        # (NaN is checked only when X has one: the check costs a pass per offset).
        has_nan = X.is_floating_point() and bool(torch.isnan(X).any())
        offsets = list(_window_slices(k, s, d, (oh, ow)))
        best = flat[(slice(None), *offsets[0])]
        small = len(offsets) <= 256
        arg = torch.zeros(best.shape, dtype=torch.uint8 if small else torch.int64,
                          device=X.device)
        for t, (rows, cols) in enumerate(offsets[1:], start=1):
            value = flat[:, rows, cols]
            better = value > best
            if has_nan:
                better |= value.isnan()
                best = torch.where(better, value, best)
            else:
                best = torch.maximum(best, value)
            arg.masked_fill_(better, t)
        # Flat index into the padded image: window origin + offset inside the window.
        step = torch.tensor([r.start * Wp + c.start for r, c in offsets], device=X.device)
        origin = (torch.arange(oh, device=X.device).view(oh, 1) * (s[0] * Wp)
                  + torch.arange(ow, device=X.device).view(1, ow) * s[1])
        index = step[arg.long() if small else arg] + origin
    # gather's backward scatter-adds each gradient onto the one winning input pixel.
    picked = flat.reshape(-1, Hp * Wp).gather(1, index.reshape(-1, oh * ow))
    return picked.reshape(*lead, oh, ow)


def _window_sum(Xp: torch.Tensor, k: tuple[int, int], s: tuple[int, int],
                out: tuple[int, int]) -> torch.Tensor:
    """Separable sum over every window: k[0] row slices, then k[1] column slices."""
    row_slices, col_slices = _line_slices(k[0], s[0], out[0]), _line_slices(k[1], s[1], out[1])
    rows = Xp[..., row_slices[0], :]
    for r in row_slices[1:]:
        rows = rows + Xp[..., r, :]
    total = rows[..., col_slices[0]]
    for c in col_slices[1:]:
        total = total + rows[..., c]
    return total


def _window_sum_transpose(grad: torch.Tensor, padded_hw: tuple[int, int],
                          k: tuple[int, int], s: tuple[int, int]) -> torch.Tensor:
    """Adjoint of _window_sum: every window adds its gradient back to all its pixels."""
    out = tuple(grad.shape[-2:])
    row_slices, col_slices = _line_slices(k[0], s[0], out[0]), _line_slices(k[1], s[1], out[1])
    rows = grad.new_zeros((*grad.shape[:-2], out[0], padded_hw[1]))
    for c in col_slices:
        rows[..., c].add_(grad)
    full = grad.new_zeros((*grad.shape[:-2], *padded_hw))
    for r in row_slices:
        full[..., r, :].add_(rows)
    return full


class _AvgPoolFunction(torch.autograd.Function):
    """Separable window sum / window area; the backward is the adjoint sum (linear)."""

    @staticmethod
    def forward(ctx, X, k, s, p, out, extra, divisor):  # noqa: D102
        pads = (p[1], p[1] + extra[1], p[0], p[0] + extra[0])
        Xp = F.pad(X, pads) if any(pads) else X
        ctx.conf = (k, s, p, tuple(Xp.shape[-2:]), tuple(X.shape[-2:]), divisor)
        return _window_sum(Xp, k, s, out) / divisor

    @staticmethod
    def backward(ctx, grad_Y):  # noqa: D102
        k, s, p, padded_hw, (H, W), divisor = ctx.conf
        # Differentiable ops only, so that double backward works as well.
        full = _window_sum_transpose(grad_Y / divisor, padded_hw, k, s)
        return full[..., p[0]:p[0] + H, p[1]:p[1] + W], None, None, None, None, None, None


def _divisor(X: torch.Tensor, k, s, p, out, ceil_mode: bool) -> float | torch.Tensor:
    """Window areas counting the padding (F's count_include_pad=True): k*k, except that a
    ceil_mode window running past the padded input counts only its part inside it."""
    if not ceil_mode:
        return float(k[0] * k[1])
    sides = []
    for n, ki, si, pi, o in zip(X.shape[-2:], k, s, p, out):
        start = torch.arange(o, device=X.device) * si - pi
        sides.append((torch.clamp(start + ki, max=n + pi) - start).to(X.dtype))
    return sides[0].view(-1, 1) * sides[1].view(1, -1)


def avg_pool2d(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False) -> torch.Tensor:
    """Mean over each window, like PyTorch's functional avg_pool2d (padding counts as 0).

    Example:
        >>> import torch
        >>> avg_pool2d(torch.ones(1, 1, 2, 2), 2, stride=1, padding=1)
        tensor([[[[0.2500, 0.5000, 0.2500],
                  [0.5000, 1.0000, 0.5000],
                  [0.2500, 0.5000, 0.2500]]]])
    """
    k, s, p, _, out, extra = _pool_setup(X, kernel_size, stride, padding, 1, ceil_mode,
                                         "avg_pool2d")
    if not X.is_floating_point():
        raise ConfigError(f"avg_pool2d needs a floating-point X, got {X.dtype}")
    return _AvgPoolFunction.apply(X, k, s, p, out, extra, _divisor(X, k, s, p, out, ceil_mode))
