"""d2l for chapters 2-8 of d2l 1.0.3 and 3-7 of d2l 0.17: ``from cnnlab import d2l``.

Replace ``from d2l import torch as d2l`` with ``from cnnlab import d2l`` and the
PyTorch cells of d2l 1.0.3's chapters 2-8 run unchanged, without d2l's pinned
numpy, pandas, matplotlib and scipy, and without torchvision. The module also holds
d2l 0.17's functions (``load_data_fashion_mnist``, ``train_ch3``, ``train_ch6``,
``Animator``, ...), as 1.0.3's own module keeps most of them; the three names whose
meaning 1.0.3 changed (``Residual``, ``try_all_gpus``, ``download``) have 1.0.3's
meaning here, and 0.17's in :mod:`cnnlab.d2l017` (``from cnnlab import d2l017 as
d2l`` for a 0.17 notebook). docs/d2l.md lists every name and every difference.

``Trainer.fit``, ``train_ch3`` and ``train_ch6`` run on cnnlab's training loop
where the book's steps allow (batches made on the device from the in-memory set, no
per-step host synchronisation, cnnlab.accel's CPU kernels) and draw the book's board
or animator: live in Jupyter, as a PNG file elsewhere (its path is printed).

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
    >>> d2l.squared_loss(d2l.tensor([[1.0], [3.0]]), d2l.tensor([2.0, 1.0]))
    tensor([[0.5000],
            [2.0000]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.nn import functional as F  # noqa: F401 - the book's cells reach it as d2l.F

from cnnlab._d2l.animator import Animator
from cnnlab._d2l.board import ProgressBoard
from cnnlab._d2l.core import Classifier, DataModule, HyperParameters, Module
from cnnlab._d2l.data import FashionMNIST
from cnnlab._d2l.hub import DATA_HUB, DATA_URL, download, download_all, download_extract, extract
from cnnlab._d2l.legacy import (
    accuracy,
    evaluate_accuracy,
    evaluate_accuracy_gpu,
    evaluate_loss,
    get_dataloader_workers,
    grad_clipping,
    linreg,
    load_array,
    load_data_fashion_mnist,
    sgd,
    squared_loss,
    synthetic_data,
)
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
from cnnlab._d2l.regression import (
    MLP,
    SGD,
    LinearRegression,
    LinearRegressionScratch,
    MLPScratch,
    SoftmaxRegression,
    SyntheticRegressionData,
)
from cnnlab._d2l.trainer import Trainer
from cnnlab._d2l.training import predict_ch3, train_ch3, train_ch6, train_epoch_ch3
from cnnlab._d2l.utils import (  # noqa: F401 - the d2l namespace is the point
    Accumulator,
    Timer,
    abs,
    arange,
    argmax,
    astype,
    batch_matmul,
    concat,
    corr2d,
    cos,
    cosh,
    cpu,
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
    # 1.0.3: chapters 2-8 and the book's utilities
    "Accumulator", "Animator", "Classifier", "DATA_HUB", "DATA_URL", "DataModule",
    "FashionMNIST", "HyperParameters", "LeNet", "LinearRegression", "LinearRegressionScratch",
    "Module", "ProgressBoard", "ResNeXtBlock", "Residual", "SGD", "SoftmaxRegression",
    "SyntheticRegressionData", "Timer", "Trainer", "accuracy", "add_to_class", "corr2d", "cpu",
    "download", "download_extract", "evaluate_accuracy_gpu", "evaluate_loss", "extract",
    "get_dataloader_workers", "get_fashion_mnist_labels", "gpu", "grad_clipping", "init_cnn",
    "linreg", "load_array", "load_data_fashion_mnist", "num_gpus", "plot", "set_axes",
    "set_figsize", "sgd", "show_images", "squared_loss", "synthetic_data", "train_ch6",
    "try_all_gpus", "try_gpu", "use_svg_display",
    # 0.17 only
    "download_all", "evaluate_accuracy", "predict_ch3", "train_ch3", "train_epoch_ch3",
    # cnnlab additions: models of 5.2 and chapter 8 as their sections define them
    "MLP", "MLPScratch", "ResNet", "ResNet18", "VGG", "vgg_block",
]


def __getattr__(name: str) -> Any:
    # d2l.plt: pyplot on first use, so that importing cnnlab.d2l stays light.
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module 'cnnlab.d2l' has no attribute {name!r}")
