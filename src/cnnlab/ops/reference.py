"""The book's readable loops (d2l 7.2, 7.4, 7.5), kept as the reference.

These are slow on purpose: one Python iteration per output element. The
vectorised operators in :mod:`cnnlab.ops.conv` and :mod:`cnnlab.ops.pool` are
tested against ``torch.nn.functional``; these loops are tested against the values
the book prints.

Example:
    >>> import torch
    >>> X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    >>> K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> corr2d(X, K)
    tensor([[19., 25.],
            [37., 43.]])
"""

from __future__ import annotations

import torch

from cnnlab.errors import ConfigError


def _tensors(**named: object) -> None:
    # a str or a list where a tensor belongs: one line naming the argument, not .dim()
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise ConfigError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def _check_2d(X: torch.Tensor, K: torch.Tensor | tuple[int, int], what: str) -> None:
    _tensors(X=X)
    if not isinstance(K, (torch.Tensor, tuple, list)):
        raise ConfigError(f"{what} must be a tensor or a (height, width) pair, got {K!r}")
    if X.dim() != 2:
        raise ConfigError(f"X must be 2-D (height, width), got shape {tuple(X.shape)}")
    k = tuple(K.shape) if isinstance(K, torch.Tensor) else tuple(K)
    if len(k) != 2 or k[0] < 1 or k[1] < 1 or k[0] > X.shape[0] or k[1] > X.shape[1]:
        raise ConfigError(
            f"{what} {k} must be 2-D, >= 1 and no larger than X {tuple(X.shape)}")


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of X (h, w) with kernel K (kh, kw), no padding, stride 1.

    Output shape ``(h - kh + 1, w - kw + 1)`` (d2l 7.2.1). Differentiable in X and K.
    """
    _check_2d(X, K, "kernel K")
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1),
                    dtype=torch.result_type(X, K), device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Sum over input channels of corr2d: X (c, h, w), K (c, kh, kw) -> (h', w') (d2l 7.4.1).

    Example:
        >>> X = torch.stack([torch.arange(9.0).reshape(3, 3), torch.arange(1.0, 10).reshape(3, 3)])
        >>> K = torch.tensor([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
        >>> corr2d_multi_in(X, K)
        tensor([[ 56.,  72.],
                [104., 120.]])
    """
    _tensors(X=X, K=K)
    if X.dim() != 3 or K.dim() != 3 or X.shape[0] != K.shape[0]:
        raise ConfigError(
            f"X (channels, h, w) and K (channels, kh, kw) must be 3-D with the same number "
            f"of channels, got X {tuple(X.shape)} and K {tuple(K.shape)}")
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """One corr2d_multi_in per output channel: K (c_o, c_i, kh, kw) -> (c_o, h', w') (d2l 7.4.2)."""
    _tensors(X=X, K=K)
    if K.dim() != 4:
        raise ConfigError(
            f"K must be 4-D (out_channels, in_channels, kh, kw), got shape {tuple(K.shape)}")
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as one matrix product (d2l 7.4.3): X (c_i, h, w), K (c_o, c_i, 1, 1).

    Example:
        >>> X, K = torch.ones(3, 2, 2), torch.ones(2, 3, 1, 1)
        >>> corr2d_multi_in_out_1x1(X, K)[:, 0, 0]
        tensor([3., 3.])
    """
    _tensors(X=X, K=K)
    if X.dim() != 3 or K.dim() != 4 or K.shape[2:] != (1, 1) or K.shape[1] != X.shape[0]:
        raise ConfigError(
            f"need X (c_i, h, w) and K (c_o, c_i, 1, 1), got X {tuple(X.shape)} and "
            f"K {tuple(K.shape)}")
    c_i, h, w = X.shape
    c_o = K.shape[0]
    Y = torch.matmul(K.reshape(c_o, c_i), X.reshape(c_i, h * w))
    return Y.reshape(c_o, h, w)


def pool2d(X: torch.Tensor, pool_size: tuple[int, int], mode: str = "max") -> torch.Tensor:
    """The book's pooling loop (d2l 7.5.1): X (h, w), window pool_size, stride 1, no padding.

    Example:
        >>> X = torch.arange(9.0).reshape(3, 3)
        >>> pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
        (tensor([[4., 5.],
                [7., 8.]]), tensor([[2., 3.],
                [5., 6.]]))
    """
    if mode not in ("max", "avg"):
        raise ConfigError(f"mode must be 'max' or 'avg', got {mode!r}")
    if isinstance(pool_size, int):
        pool_size = (pool_size, pool_size)
    _check_2d(X, pool_size, "pool_size")
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1),
                    dtype=X.dtype if X.is_floating_point() else torch.float32, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w]
            if mode == "max":
                Y[i, j] = window.max()
            else:
                Y[i, j] = window.to(Y.dtype).mean()
    return Y
