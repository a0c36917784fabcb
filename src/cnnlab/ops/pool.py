"""Vectorised max and average pooling from scratch (d2l 7.5).

Semantics of ``F.max_pool2d`` / ``F.avg_pool2d`` with their defaults: the stride
defaults to the kernel size, max pooling pads with -inf, average pooling counts
the zero padding in the divisor (``count_include_pad=True``), padding may be at
most half the kernel, and no window starts in the padding alone.

Two paths:

* fast path, the common LeNet/VGG case (stride == kernel, no padding, no dilation):
  the input is reshaped to (N, C, OH, kh, OW, kw) with no copy and reduced;
* general path: max pooling finds the arg-max of each window on an ``as_strided``
  view and then *gathers* the winners, so that autograd routes each gradient to
  exactly one input pixel (the first maximum, as F does) through ``gather``'s
  scatter-add backward; average pooling is separable: kh strided row slices are
  summed, then kw strided column slices.

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
from cnnlab.ops.shape import IntOrPair, nonnegative_pair, positive_pair


def _pool_setup(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None,
                padding: IntOrPair, dilation: IntOrPair, name: str):
    """Validate like F (ConfigError instead of RuntimeError); return the resolved geometry."""
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
    out = ((H + 2 * p[0] - span[0]) // s[0] + 1, (W + 2 * p[1] - span[1]) // s[1] + 1)
    if H + 2 * p[0] < span[0] or W + 2 * p[1] < span[1] or min(out) < 1:
        raise ConfigError(f"{name}: kernel_size {k} (dilation {d}) is larger than the padded "
                          f"input {(H + 2 * p[0], W + 2 * p[1])} of X {tuple(X.shape)}; use a "
                          "smaller kernel or more padding")
    return k, s, p, d, out


def _is_tiling(X: torch.Tensor, k, s, p, d) -> bool:
    """True when the windows tile the input exactly: the reshape fast path applies."""
    return (s == k and p == (0, 0) and d == (1, 1)
            and X.shape[-2] % k[0] == 0 and X.shape[-1] % k[1] == 0)


def max_pool2d(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1) -> torch.Tensor:
    """Maximum over each window, like ``F.max_pool2d`` (ceil_mode=False).

    Args:
        X: (N, C, H, W) or (C, H, W). kernel_size, stride, padding, dilation: int or pair;
        stride defaults to kernel_size; padding (filled with -inf) is at most kernel/2.

    Example:
        >>> import torch
        >>> max_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 3)
        tensor([[[[10.]]]])
    """
    k, s, p, d, (oh, ow) = _pool_setup(X, kernel_size, stride, padding, dilation, "max_pool2d")
    lead = X.shape[:-2]
    if _is_tiling(X, k, s, p, d):
        tiles = X.reshape(*lead, oh, k[0], ow, k[1]).transpose(-3, -2)
        # max(-1) (not amax) so that ties send the whole gradient to the first maximum.
        return tiles.reshape(*lead, oh, ow, k[0] * k[1]).max(-1).values
    Xp = F.pad(X, (p[1], p[1], p[0], p[0]), value=-float("inf")) if p != (0, 0) else X
    Xp = Xp.contiguous()
    Hp, Wp = Xp.shape[-2:]
    flat = Xp.reshape(-1, Hp * Wp)
    with torch.no_grad():
        sH, sW = Wp, 1
        windows = flat.as_strided((flat.shape[0], oh, ow, k[0], k[1]),
                                  (Hp * Wp, s[0] * sH, s[1] * sW, d[0] * sH, d[1] * sW))
        arg = windows.reshape(flat.shape[0], oh, ow, k[0] * k[1]).argmax(-1)
        # Flat index into the padded image: window origin + offset inside the window.
        origin = (torch.arange(oh, device=X.device).view(oh, 1) * (s[0] * Wp)
                  + torch.arange(ow, device=X.device).view(1, ow) * s[1])
        index = origin + (arg // k[1]) * (d[0] * Wp) + (arg % k[1]) * d[1]
    return flat.gather(1, index.reshape(flat.shape[0], oh * ow)).reshape(*lead, oh, ow)


def avg_pool2d(X: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> torch.Tensor:
    """Mean over each window, like ``F.avg_pool2d`` (zero padding counted in the mean).

    Example:
        >>> import torch
        >>> avg_pool2d(torch.ones(1, 1, 2, 2), 2, stride=1, padding=1)
        tensor([[[[0.2500, 0.5000, 0.2500],
                  [0.5000, 1.0000, 0.5000],
                  [0.2500, 0.5000, 0.2500]]]])
    """
    k, s, p, _, (oh, ow) = _pool_setup(X, kernel_size, stride, padding, 1, "avg_pool2d")
    lead = X.shape[:-2]
    if not X.is_floating_point():
        raise ConfigError(f"avg_pool2d needs a floating-point X, got {X.dtype}")
    if _is_tiling(X, k, s, p, (1, 1)):
        # Sum the contiguous kw run first (fast inner reduction), then the kh rows.
        rows = X.reshape(*lead, oh, k[0], ow, k[1]).sum(-1)
        return rows.sum(-2) / (k[0] * k[1])
    Xp = F.pad(X, (p[1], p[1], p[0], p[0])) if p != (0, 0) else X
    # Separable window sum: kh row slices, then kw column slices (all strided views).
    rows = Xp[..., 0:s[0] * (oh - 1) + 1:s[0], :]
    for i in range(1, k[0]):
        rows = rows + Xp[..., i:i + s[0] * (oh - 1) + 1:s[0], :]
    total = rows[..., 0:s[1] * (ow - 1) + 1:s[1]]
    for j in range(1, k[1]):
        total = total + rows[..., j:j + s[1] * (ow - 1) + 1:s[1]]
    return total / (k[0] * k[1])
