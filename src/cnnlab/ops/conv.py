"""Vectorised 2-D convolution (cross-correlation) from scratch: im2col + matmul.

``conv2d`` has the semantics of PyTorch's functional conv2d (shapes, values and
gradients) but is built from ``F.pad``, ``Tensor.as_strided`` and ``matmul``:

* forward (im2col, d2l 7.4.3 generalised): every window of the zero-padded input
  becomes one column of a ``(C*kh*kw, N*OH*OW)`` matrix (the batch sits inside the
  column axis), so a layer is one matrix product per group with the
  ``(O, C*kh*kw)`` weight matrix;
* backward (a custom autograd Function: autograd through the ``as_strided`` copy
  works too but was slower in our measurements, since it goes through the generic
  strided-view backward): ``grad_weight = grad_out @ cols^T``, and
  ``grad_input`` = col2im of ``weight^T @ grad_out``: ``kh*kw`` strided additions,
  one per kernel offset, into the padded input.

When the backward runs with ``create_graph=True`` it recomputes the columns from
the saved input with differentiable operations, so double backward is correct too.

Example:
    >>> import torch
    >>> X = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(X, torch.ones(1, 1, 2, 2), stride=2)
    tensor([[[[10., 18.],
              [42., 50.]]]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError
from cnnlab.guards import check_int
from cnnlab.ops.shape import IntOrPair, nonnegative_pair, output_side, positive_pair

Pads = tuple[int, int, int, int]  # (top, bottom, left, right), in pixels


def _resolve_padding(padding: IntOrPair | str, kernel: tuple[int, int],
                     stride: tuple[int, int], dilation: tuple[int, int]) -> Pads:
    """Explicit (top, bottom, left, right) padding; 'valid' and 'same' as in PyTorch's conv2d."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ConfigError(f"padding='same' needs stride 1, got stride {stride}; "
                                  "pass explicit padding for strided convolutions")
            # Total padding d(k-1); the extra pixel of an odd total goes to the end, as in F.
            total = [dilation[i] * (kernel[i] - 1) for i in range(2)]
            return (total[0] // 2, total[0] - total[0] // 2,
                    total[1] // 2, total[1] - total[1] // 2)
        raise ConfigError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    p_h, p_w = nonnegative_pair(padding, "padding")
    return (p_h, p_h, p_w, p_w)


def _im2col(Xp: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], out_hw: tuple[int, int], groups: int) -> torch.Tensor:
    """Windows of the padded input Xp (N, C, Hp, Wp) as (G, C/G*kh*kw, N*OH*OW), contiguous.

    The batch sits inside the column axis so that each matmul below is one large GEMM
    per group (many small per-image GEMMs are several times slower on CPU).
    """
    N, C, _, _ = Xp.shape
    Xp = Xp.contiguous()
    sN, sC, sH, sW = Xp.stride()
    (kh, kw), (st_h, st_w), (d_h, d_w), (oh, ow) = kernel, stride, dilation, out_hw
    # A view with axes (C, kh, kw, N, OH, OW): no copy until reshape below.
    windows = Xp.as_strided((C, kh, kw, N, oh, ow),
                            (sC, d_h * sH, d_w * sW, sN, st_h * sH, st_w * sW))
    return windows.reshape(groups, C // groups * kh * kw, N * oh * ow)


def _col2im(cols: torch.Tensor, padded_hw: tuple[int, int], kernel: tuple[int, int],
            stride: tuple[int, int], dilation: tuple[int, int],
            out_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of _im2col's gather: add each column entry back to its input pixel.

    cols: (C, kh, kw, N, OH, OW) -> (C, N, Hp, Wp). One strided add per kernel
    offset: the windows of one offset never overlap each other.
    """
    C, N = cols.shape[0], cols.shape[3]
    (kh, kw), (st_h, st_w), (d_h, d_w), (oh, ow) = kernel, stride, dilation, out_hw
    grad = cols.new_zeros((C, N, *padded_hw))
    for i in range(kh):
        rows = slice(i * d_h, i * d_h + st_h * (oh - 1) + 1, st_h)
        for j in range(kw):
            columns = slice(j * d_w, j * d_w + st_w * (ow - 1) + 1, st_w)
            # add_ on the view: `grad[...] += x` would also copy the view onto itself.
            grad[:, :, rows, columns].add_(cols[:, i, j])
    return grad


class _Conv2dFunction(torch.autograd.Function):
    """im2col forward, matmul + col2im backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, X, weight, bias, stride, pads, dilation, groups, out_hw):  # noqa: D102
        N = X.shape[0]
        O, Cg, kh, kw = weight.shape
        Xp = F.pad(X, (pads[2], pads[3], pads[0], pads[1])) if any(pads) else X
        cols = _im2col(Xp, (kh, kw), stride, dilation, out_hw, groups)
        W = weight.reshape(groups, O // groups, Cg * kh * kw)
        # (G, O/G, N*L) -> (N, O, OH, OW): one copy of the (small) output.
        Y = torch.matmul(W, cols).reshape(O, N, *out_hw).transpose(0, 1).contiguous()
        if bias is not None:
            Y += bias.reshape(1, O, 1, 1)
        ctx.save_for_backward(X, weight, cols)
        ctx.conf = (stride, pads, dilation, groups, out_hw, tuple(Xp.shape[2:]),
                    bias is not None)
        return Y

    @staticmethod
    def backward(ctx, grad_Y):  # noqa: D102
        X, weight, cols = ctx.saved_tensors
        stride, pads, dilation, groups, out_hw, padded_hw, has_bias = ctx.conf
        N, C = X.shape[:2]
        O, Cg, kh, kw = weight.shape
        if torch.is_grad_enabled():
            # create_graph=True: rebuild the columns from X so that they carry a graph.
            Xp = F.pad(X, (pads[2], pads[3], pads[0], pads[1])) if any(pads) else X
            cols = _im2col(Xp, (kh, kw), stride, dilation, out_hw, groups)
        G = grad_Y.transpose(0, 1).reshape(groups, O // groups, N * out_hw[0] * out_hw[1])
        grad_X = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            W = weight.reshape(groups, O // groups, Cg * kh * kw)
            grad_cols = torch.matmul(W.transpose(1, 2), G).reshape(C, kh, kw, N, *out_hw)
            grad_Xp = _col2im(grad_cols, padded_hw, (kh, kw), stride, dilation, out_hw)
            grad_X = grad_Xp[:, :, pads[0]:pads[0] + X.shape[2], pads[2]:pads[2] + X.shape[3]]
            grad_X = grad_X.transpose(0, 1)
        if ctx.needs_input_grad[1]:
            grad_W = torch.matmul(G, cols.transpose(1, 2)).reshape(weight.shape)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_Y.sum((0, 2, 3))
        return grad_X, grad_W, grad_b, None, None, None, None, None


def conv2d(X: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1,
           groups: int = 1) -> torch.Tensor:
    """2-D cross-correlation of a batch, exactly like PyTorch's functional conv2d.

    Args:
        X: input (N, C, H, W), or (C, H, W) for one unbatched image.
        weight: (O, C/groups, kh, kw). bias: (O,) or None.
        stride, padding, dilation: int or (h, w) pair; padding may be 'valid' or 'same'.
        groups: split the channels into this many independent convolutions.

    Returns:
        (N, O, OH, OW) with OH = floor((H + 2p - d(kh - 1) - 1) / s) + 1 (d2l 7.3).

    Example:
        >>> import torch
        >>> X = torch.randn(2, 4, 8, 8)
        >>> conv2d(X, torch.randn(6, 2, 3, 3), padding=1, groups=2).shape
        torch.Size([2, 6, 8, 8])
    """
    if not isinstance(X, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise ConfigError("X and weight must be torch tensors")
    if X.dim() not in (3, 4):
        raise ConfigError(f"X must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape "
                          f"{tuple(X.shape)}")
    if weight.dim() != 4:
        raise ConfigError(f"weight must be 4-D (out_channels, in_channels/groups, kh, kw), "
                          f"got shape {tuple(weight.shape)}")
    unbatched = X.dim() == 3
    if unbatched:
        X = X.unsqueeze(0)
    stride_, dilation_ = positive_pair(stride, "stride"), positive_pair(dilation, "dilation")
    check_int("groups", groups)
    O, Cg, kh, kw = weight.shape
    C = X.shape[1]
    if min(weight.shape) < 1:
        raise ConfigError(f"weight must have no empty dimension, got shape {tuple(weight.shape)}")
    if O % groups:
        raise ConfigError(f"groups={groups} must divide out_channels, but weight "
                          f"{tuple(weight.shape)} has {O} output channels")
    if C % groups:
        raise ConfigError(f"groups={groups} must divide in_channels, but X "
                          f"{tuple(X.shape)} has {C} channels")
    if Cg * groups != C:
        raise ConfigError(f"channel mismatch: weight {tuple(weight.shape)} with groups={groups} "
                          f"expects {Cg * groups} input channels, but X {tuple(X.shape)} has {C}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != O):
        raise ConfigError(f"bias must have shape ({O},) for weight {tuple(weight.shape)}, "
                          f"got {tuple(bias.shape)}")
    pads = _resolve_padding(padding, (kh, kw), stride_, dilation_)
    padded = (X.shape[2] + pads[0] + pads[1], X.shape[3] + pads[2] + pads[3])
    span = (dilation_[0] * (kh - 1) + 1, dilation_[1] * (kw - 1) + 1)
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ConfigError(
            f"kernel {(kh, kw)} (dilation {dilation_}, span {span}) is larger than the padded "
            f"input {padded} of X {tuple(X.shape)}; use a smaller kernel or more padding")
    out_hw = tuple(output_side(padded[i], (kh, kw)[i], 0, stride_[i], dilation_[i]) for i in (0, 1))
    if X.dtype != weight.dtype or (bias is not None and bias.dtype != X.dtype):
        raise ConfigError(f"X, weight and bias must share one dtype, got {X.dtype}, "
                          f"{weight.dtype}" + (f", {bias.dtype}" if bias is not None else ""))
    Y = _Conv2dFunction.apply(X, weight, bias, stride_, pads, dilation_, groups, out_hw)
    return Y.squeeze(0) if unbatched else Y
