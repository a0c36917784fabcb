"""The small helpers of d2l 1.0.3 (and 0.17): devices, tensor aliases, timers, plotting.

The aliases (``d2l.zeros``, ``d2l.reshape``, ...) are the book's framework-neutral
names from its ``config.ini``; cells such as ``d2l.arange(16, dtype=d2l.float32)``
(7.5) or ``d2l.reduce_sum(d2l.abs(Y1 - Y2))`` (7.4) need them.

Example:
    >>> from cnnlab import d2l
    >>> d2l.reshape(d2l.arange(4), (2, 2)).shape
    torch.Size([2, 2])
    >>> d2l.cpu()
    device(type='cpu')
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from cnnlab import ops

# --- devices (d2l 6.7, "GPUs") -------------------------------------------------------


def cpu() -> torch.device:
    """The CPU device."""
    return torch.device("cpu")


def gpu(i: int = 0) -> torch.device:
    """The i-th CUDA device (not checked: d2l's semantics)."""
    return torch.device(f"cuda:{i}")


def num_gpus() -> int:
    """How many CUDA devices there are (0 on a CPU-only machine)."""
    return torch.cuda.device_count()


def try_gpu(i: int = 0) -> torch.device:
    """``gpu(i)`` if it exists, else ``cpu()``."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def try_all_gpus() -> list[torch.device]:
    """All CUDA devices; an empty list without any (as d2l 1.0.3, not [cpu()])."""
    return [gpu(i) for i in range(num_gpus())]


# --- 7.2 -------------------------------------------------------------------------------


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation (d2l 7.2.1): output (n_h-k_h+1, n_w-k_w+1).

    Delegates to :func:`cnnlab.ops.corr2d`; like the book, the result has the default
    float dtype whatever the input dtype.

    Example:
        >>> X = torch.tensor([[0.0, 1, 2], [3, 4, 5], [6, 7, 8]])
        >>> corr2d(X, torch.tensor([[0.0, 1], [2, 3]]))
        tensor([[19., 25.],
                [37., 43.]])
    """
    return ops.corr2d(X, K).to(torch.get_default_dtype())


# --- timing and counting (d2l 3.x, kept for the exercises) ------------------------------


class Timer:
    """Record several running times (seconds)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start()

    def start(self) -> None:
        self.tik = time.time()

    def stop(self) -> float:
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self) -> float:
        return sum(self.times) / len(self.times)

    def sum(self) -> float:
        return sum(self.times)

    def cumsum(self) -> list[float]:
        return np.array(self.times).cumsum().tolist()


class Accumulator:
    """Running sums over ``n`` variables."""

    def __init__(self, n: int) -> None:
        self.data = [0.0] * n

    def add(self, *args: Any) -> None:
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]


# --- plotting (d2l 2.4 helpers; matplotlib is imported on first use) ---------------------


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def use_svg_display() -> None:
    """SVG figures in Jupyter; a no-op elsewhere."""
    try:
        from matplotlib_inline import backend_inline
    except ImportError:
        return
    backend_inline.set_matplotlib_formats("svg")


def set_figsize(figsize: tuple[float, float] = (3.5, 2.5)) -> None:
    """Default figure size, inches."""
    use_svg_display()
    _plt().rcParams["figure.figsize"] = figsize


def set_axes(axes: Any, xlabel: Any, ylabel: Any, xlim: Any, ylim: Any, xscale: str,
             yscale: str, legend: Any) -> None:
    """Label, scale and limit one matplotlib Axes."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def plot(X: Any, Y: Any = None, xlabel: Any = None, ylabel: Any = None, legend: Any = None,
         xlim: Any = None, ylim: Any = None, xscale: str = "linear", yscale: str = "linear",
         fmts: tuple[str, ...] = ("-", "m--", "g-.", "r:"),
         figsize: tuple[float, float] = (3.5, 2.5), axes: Any = None) -> None:
    """Plot one or several curves (d2l's ``plot``)."""

    def one_axis(a: Any) -> bool:
        return (hasattr(a, "ndim") and a.ndim == 1) or (
            isinstance(a, list) and not hasattr(a[0], "__len__"))

    if one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    set_figsize(figsize)
    axes = axes if axes is not None else _plt().gca()
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend or [])


def show_images(imgs: Any, num_rows: int, num_cols: int, titles: Any = None,
                scale: float = 1.5) -> Any:
    """A grid of images with optional titles; returns the axes."""
    _, axes = _plt().subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    axes = np.asarray(axes).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if torch.is_tensor(img):
            img = img.detach().cpu().numpy()
        ax.imshow(img)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes


def get_fashion_mnist_labels(labels: Any) -> list[str]:
    """Text labels of Fashion-MNIST class indices (the book's lower-case names)."""
    return [TEXT_LABELS[int(i)] for i in labels]


TEXT_LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]

# --- the book's tensor aliases (d2l config.ini, PyTorch tab) -----------------------------

ones_like = torch.ones_like
ones = torch.ones
zeros_like = torch.zeros_like
zeros = torch.zeros
tensor = torch.tensor
arange = torch.arange
meshgrid = torch.meshgrid
sin = torch.sin
sinh = torch.sinh
cos = torch.cos
cosh = torch.cosh
tanh = torch.tanh
linspace = torch.linspace
exp = torch.exp
log = torch.log
normal = torch.normal
rand = torch.rand
randn = torch.randn
matmul = torch.matmul
int32 = torch.int32
int64 = torch.int64
float32 = torch.float32
concat = torch.cat
stack = torch.stack
abs = torch.abs  # noqa: A001 - the book's name
eye = torch.eye
sigmoid = torch.sigmoid
batch_matmul = torch.bmm


def numpy(x: torch.Tensor, *args: Any, **kwargs: Any) -> np.ndarray:
    return x.detach().numpy(*args, **kwargs)


def size(x: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return x.numel(*args, **kwargs)


def reshape(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.reshape(*args, **kwargs)


def to(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.to(*args, **kwargs)


def reduce_sum(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.sum(*args, **kwargs)


def argmax(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.argmax(*args, **kwargs)


def astype(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.type(*args, **kwargs)


def transpose(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.t(*args, **kwargs)


def reduce_mean(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.mean(*args, **kwargs)


def expand_dims(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.unsqueeze(*args, **kwargs)


def swapaxes(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.swapaxes(*args, **kwargs)


def repeat(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x.repeat(*args, **kwargs)
