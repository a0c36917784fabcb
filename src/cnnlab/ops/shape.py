"""Output sizes and argument checks shared by the vectorised operators.

The output size of a convolution or pooling window along one dimension (d2l 7.3,
generalised with dilation as in the PyTorch docs) is
``floor((n + 2p - d(k - 1) - 1) / s) + 1``.

Example:
    >>> output_shape(8, 3, padding=1, stride=2)
    (4, 4)
    >>> output_shape((8, 8), (3, 5), padding=(0, 1), stride=(3, 4))
    (2, 2)
    >>> output_side(28, 5, padding=2)
    28

This module is the one place the formula is written: :func:`cnnlab.shapes.explain`,
the model families' size arithmetic (``cnnlab.models._common.conv_out``) and the
operators all call :func:`output_side` or :func:`output_shape`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.errors import ConfigError

IntOrPair = int | Sequence[int]


def pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 5) -> (3, 5)``; anything else is a ConfigError naming ``name``."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in items):
        raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
    return items  # type: ignore[return-value]


def positive_pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """A pair whose entries are all >= 1 (kernel sizes, strides, dilations)."""
    result = pair(value, name)
    if min(result) < 1:
        raise ConfigError(f"{name} must be >= 1 in every dimension, got {value!r}")
    return result


def nonnegative_pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """A pair whose entries are all >= 0 (paddings)."""
    result = pair(value, name)
    if min(result) < 0:
        raise ConfigError(f"{name} must be >= 0 in every dimension, got {value!r}")
    return result


def output_side(n: int, kernel_size: int, padding: int = 0, stride: int = 1,
                dilation: int = 1, ceil_mode: bool = False) -> int:
    """One output side ``floor((n + 2p - d(k - 1) - 1) / s) + 1``, unchecked (d2l 7.3).

    With ``d = 1`` this is the book's ``floor((n - k + 2p + s) / s)``. A kernel wider
    than the padded input gives a side < 1; callers that need a valid size use
    :func:`output_shape`, which checks. ``ceil_mode`` (pooling) rounds up instead, but,
    as in PyTorch, drops a last window that would start in the right padding.
    """
    numerator = n + 2 * padding - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return numerator // stride + 1
    side = -(-numerator // stride) + 1
    return side - 1 if (side - 1) * stride >= n + padding else side


def output_shape(input_size: IntOrPair, kernel_size: IntOrPair, padding: IntOrPair = 0,
                 stride: IntOrPair = 1, dilation: IntOrPair = 1) -> tuple[int, int]:
    """Spatial output size ``(h, w)`` of a convolution or pooling window (d2l 7.3).

    Each dimension is ``floor((n + 2p - d(k - 1) - 1) / s) + 1``; a kernel that does
    not fit into the padded input is a ConfigError.

    Example:
        >>> output_shape((8, 8), (5, 3), padding=(2, 1))
        (8, 8)
    """
    n = positive_pair(input_size, "input_size")
    k = positive_pair(kernel_size, "kernel_size")
    p = nonnegative_pair(padding, "padding")
    s = positive_pair(stride, "stride")
    d = positive_pair(dilation, "dilation")
    out = tuple(output_side(n[i], k[i], p[i], s[i], d[i]) for i in range(2))
    if min(out) < 1:
        raise ConfigError(
            f"kernel_size {k} (dilation {d}) is larger than the padded input "
            f"{(n[0] + 2 * p[0], n[1] + 2 * p[1])} (input_size {n}, padding {p}); "
            "use a smaller kernel or more padding")
    return out  # type: ignore[return-value]
