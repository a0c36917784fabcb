"""The d2l 1.0.3 API that the book's chapters 7-8 use: ``from cnnlab import d2l``.

Replace ``from d2l import torch as d2l`` with ``from cnnlab import d2l`` and the
cells of sections 7.2-7.6, 8.2 and 8.6 run unchanged, without d2l's pinned numpy,
pandas, matplotlib and scipy, and without torchvision. ``Trainer.fit`` runs on
cnnlab's training loop (batches made on the device from the in-memory set, no
per-step host synchronisation) and draws the book's board: live in Jupyter, as a
PNG file elsewhere (its path is printed; ``./d2l-board.png`` by default).

What is here: ``HyperParameters``, ``Module``, ``Classifier``, ``DataModule``,
``FashionMNIST``, ``Trainer``, ``ProgressBoard``, ``add_to_class``; ``corr2d``,
``init_cnn``, ``LeNet``, ``Residual``, ``ResNeXtBlock`` (plus ``vgg_block``, ``VGG``,
``ResNet``, ``ResNet18`` as the chapters define them); ``cpu``, ``gpu``,
``num_gpus``, ``try_gpu``, ``try_all_gpus``; ``Timer``, ``Accumulator``, ``plot``,
``show_images``, ``plt`` and the book's tensor aliases (``d2l.zeros``,
``d2l.reshape``, ``d2l.reduce_sum``, ...). Differences from d2l are listed in
:mod:`cnnlab._d2l.trainer` (training) and :mod:`cnnlab._d2l.board` (plots).

Example:
    >>> import torch
    >>> from cnnlab import d2l
    >>> X = d2l.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    >>> d2l.corr2d(X, d2l.tensor([[0.0, 1.0], [2.0, 3.0]]))
    tensor([[19., 25.],
            [37., 43.]])
    >>> d2l.LeNet().layer_summary((1, 1, 28, 28))  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Conv2d output shape:	 torch.Size([1, 6, 28, 28])
    ...
    Linear output shape:	 torch.Size([1, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.nn import functional as F  # noqa: F401 - the book's cells reach it as d2l.F

from cnnlab._d2l.board import ProgressBoard
from cnnlab._d2l.core import Classifier, DataModule, HyperParameters, Module
from cnnlab._d2l.data import FashionMNIST
from cnnlab._d2l.models import (
    VGG,
    LeNet,
    Residual,
    ResNet,
    ResNet18,
    ResNeXtBlock,
    init_cnn,
    vgg_block,
)
from cnnlab._d2l.trainer import Trainer
from cnnlab._d2l.utils import (  # noqa: F401 - the d2l namespace is the point
    Accumulator,
    Timer,
    abs,
    accuracy,
    arange,
    argmax,
    astype,
    batch_matmul,
    concat,
    corr2d,
    cos,
    cosh,
    cpu,
    evaluate_accuracy_gpu,
    exp,
    expand_dims,
    eye,
    float32,
    get_fashion_mnist_labels,
    gpu,
    int32,
    int64,
    linspace,
    log,
    matmul,
    meshgrid,
    normal,
    num_gpus,
    numpy,
    ones,
    ones_like,
    plot,
    rand,
    randn,
    reduce_mean,
    reduce_sum,
    repeat,
    reshape,
    set_axes,
    set_figsize,
    show_images,
    sigmoid,
    sin,
    sinh,
    size,
    stack,
    swapaxes,
    tanh,
    tensor,
    to,
    transpose,
    try_all_gpus,
    try_gpu,
    use_svg_display,
    zeros,
    zeros_like,
)

nn_Module = nn.Module


def add_to_class(Class: type) -> Callable[[Any], Any]:
    """Decorator: attach the decorated function to ``Class`` under its own name.

    Unlike the book's (which returns None) the function is also returned, so the
    decorated name stays usable.
    """

    def wrapper(obj: Any) -> Any:
        setattr(Class, obj.__name__, obj)
        return obj

    return wrapper


__all__ = [
    "Accumulator", "Classifier", "DataModule", "FashionMNIST", "HyperParameters", "LeNet",
    "Module", "ProgressBoard", "ResNeXtBlock", "ResNet", "ResNet18", "Residual", "Timer",
    "Trainer", "VGG", "add_to_class", "corr2d", "cpu", "gpu", "init_cnn", "num_gpus",
    "plot", "set_figsize", "show_images", "try_all_gpus", "try_gpu", "use_svg_display",
    "vgg_block",
]


def __getattr__(name: str) -> Any:
    # d2l.plt: pyplot on first use, so that importing cnnlab.d2l stays light.
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module 'cnnlab.d2l' has no attribute {name!r}")
