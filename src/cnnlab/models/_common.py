"""Helpers shared by the model families: the book's initialisation and size arithmetic.

Example:
    >>> from torch import nn
    >>> from cnnlab.models._common import init_cnn, conv_out
    >>> net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6)).apply(init_cnn)
    >>> net[0].bias.abs().sum().item(), net[1].weight.mean().item()
    (0.0, 1.0)
    >>> conv_out(224, kernel_size=11, stride=4, padding=1)   # AlexNet's first layer
    54
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.guards import check_int
from cnnlab.ops.shape import output_side


@torch.no_grad()
def init_cnn(module: nn.Module) -> None:
    """Initialise one module the way the book's ``d2l.init_cnn`` intends (use with ``.apply``).

    Xavier-uniform weights and zero biases for every Conv2d and Linear (book 7.6,
    Glorot & Bengio 2010); batch-norm scale 1 and shift 0. Unlike the book's version
    it runs on explicit (non-lazy) layers, so it really happens at construction.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)) or _is_scratch_conv(module):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _is_scratch_conv(module: nn.Module) -> bool:
    # cnnlab.layers.ScratchConv2d mirrors nn.Conv2d's attributes; matched by name to
    # keep the import direction models -> layers one-way and optional.
    return type(module).__name__ == "ScratchConv2d"


def pooled_head(num_channels: int, num_classes: int) -> nn.Sequential:
    """Global average pooling, flatten, one Linear: the head of ResNet and AnyNet (8.6, 8.8)."""
    return nn.Sequential(OrderedDict([
        ("gap", nn.AdaptiveAvgPool2d((1, 1))),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(num_channels, num_classes)),
    ]))


def conv_out(n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution or pooling window (book 7.3); may be < 1 (too small).

    :func:`cnnlab.ops.shape.output_side` with the argument order of the model files.
    """
    return output_side(n, kernel_size, padding=padding, stride=stride)


def smallest_side(side_fn: Callable[[int], int], limit: int = 4096) -> int:
    """The smallest input side n for which ``side_fn(n) >= 1`` (side_fn is non-decreasing)."""
    hi = 1
    while side_fn(hi) < 1:  # doubling first keeps the probes small (they may run forwards)
        hi *= 2
        if hi > limit:
            raise ConfigError(f"no input side up to {limit} fits this architecture; "
                              f"check the arch")
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        if side_fn(mid) >= 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


def check_positive(**values: int) -> None:
    """Raise ConfigError unless every value is a positive int (num_classes, in_channels...)."""
    for key, value in values.items():
        check_int(key, value)


def as_arch(arch: Iterable, width: int, what: str) -> tuple:
    """Normalise an arch given as lists (e.g. from JSON) into a tuple of ``width``-tuples."""
    try:
        out = tuple(tuple(stage) for stage in arch)
    except TypeError:
        raise ConfigError(f"{what} arch must be a sequence of {width}-tuples, "
                          f"got {arch!r}") from None
    if not out or any(len(s) != width for s in out):
        raise ConfigError(f"{what} arch must be a non-empty sequence of {width}-tuples, "
                          f"got {arch!r}")
    return out


def require_side(model_name: str, input_size: int, side_fn: Callable[[int], int],
                 book_size: int) -> int:
    """The feature-map side for ``input_size``; ConfigError when the input is too small."""
    side = side_fn(input_size)
    if side < 1:
        least = smallest_side(side_fn)
        raise ConfigError(f"{model_name} needs inputs of at least {least}x{least}, got "
                          f"{input_size}x{input_size}; resize the images (resize={book_size})")
    return side


def check_min_side(model_name: str, X: torch.Tensor, least: int, book_size: int) -> None:
    """One-line error for an input smaller than a global-pooling model accepts (NiN, DenseNet)."""
    h, w = int(X.shape[-2]), int(X.shape[-1])
    if min(h, w) < least:
        raise ConfigError(f"{model_name} needs inputs of at least {least}x{least}, got "
                          f"{h}x{w}; resize the images (resize={book_size})")


def check_input_side(model_name: str, X: torch.Tensor, built_for: int,
                     side_fn: Callable[[int], int]) -> None:
    """Clear error for a model whose flatten size was fixed at construction (book's LeNet/VGG).

    The book uses a lazy linear layer, which adapts to any input; with explicit layers the
    first Linear's in_features follows from ``built_for``. Inputs whose feature map
    has the same side work; others get a one-line fix instead of a matmul error.
    """
    if X.dim() != 4:
        raise ConfigError(f"{model_name} expects a batch of images (B, C, H, W), "
                          f"got shape {tuple(X.shape)}")
    h, w = int(X.shape[-2]), int(X.shape[-1])
    want = side_fn(built_for)
    if side_fn(h) != want or side_fn(w) != want:
        least = smallest_side(side_fn)
        if min(h, w) < least:
            raise ConfigError(f"{model_name} needs inputs of at least {least}x{least}, "
                              f"got {h}x{w}; resize the images (resize={built_for})")
        raise ConfigError(f"{model_name} was built for {built_for}x{built_for} inputs, got "
                          f"{h}x{w}; resize the images (resize={built_for}) or build it with "
                          f"input_size={h}")
