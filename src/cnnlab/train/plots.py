"""Training figures: the book's board (loss and accuracy against epoch) and a confusion matrix.

The curves follow d2l's ``ProgressBoard`` look: train_loss solid, val_loss
dashed, val_acc dash-dot, x = epoch. Files are drawn with matplotlib's Agg
backend (no display needed); inside Jupyter the same figure is also shown live.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_acc": 0.6},
    ...         {"epoch": 2, "train_loss": 0.7, "val_loss": 0.8, "val_acc": 0.7}]
    >>> plot_curves(rows, p).exists()
    True
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# the book's colours and line styles for (train_loss, val_loss, val_acc)
_CURVES = (("train_loss", "-", "C0"), ("val_loss", "--", "C1"), ("val_acc", "-.", "C2"))


def _figure(size: tuple[float, float]):
    # A Figure with an Agg canvas, independent of pyplot's global backend and state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def curves_figure(history: Sequence[dict[str, Any]], title: str | None = None):
    """A matplotlib Figure of train_loss, val_loss and val_acc against epoch."""
    fig = _figure((4.5, 3.2))
    ax = fig.add_subplot()
    epochs = [row["epoch"] for row in history]
    for key, style, colour in _CURVES:
        # epochs skipped by --val-every have None: join the validated ones, with markers
        points = [(e, row.get(key)) for e, row in zip(epochs, history) if row.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            marker = "o" if len(points) < len(epochs) else None
            ax.plot(xs, ys, linestyle=style, color=colour, label=key, marker=marker,
                    markersize=3)
    ax.set_xlabel("epoch")
    if epochs:
        ax.set_xlim(min(epochs) - 0.05, max(max(epochs), 2) + 0.05)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    # fixed margins: tight_layout would draw the figure twice, every epoch
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9 if title else 0.96)
    return fig


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path,
                title: str | None = None) -> Path:
    """Write the board to ``path`` (PNG) and return the path."""
    path = Path(path)
    fig = curves_figure(history, title)
    from cnnlab.guards import atomic_output

    with atomic_output(path) as tmp:  # a viewer never sees a half-written PNG
        fig.savefig(tmp, dpi=100, format="png")
    return path


def prepare_confusion(n: int) -> None:
    """Build the parts of an ``n``-class confusion figure that do not depend on the counts
    (figure, axes, colour bar, ticks) for the next :func:`confusion_figure` of ``n``
    classes, in this process or in one forked from it.

    The plotting helper (:mod:`cnnlab.train.plotter`) calls it while the training process
    imports torch, so the figure drawn after the last epoch starts from there. The figure is
    the same either way: :func:`confusion_figure` always fills such a skeleton.
    """
    _SPARE[n] = _confusion_skeleton(n)


_SPARE: dict[int, tuple[Any, Any, Any]] = {}  # n -> a skeleton no figure has used yet


def _confusion_skeleton(n: int) -> tuple[Any, Any, Any]:
    import numpy as np

    fig = _figure((1.2 + 0.55 * n, 1.0 + 0.5 * n))
    ax = fig.add_subplot()
    # placeholder counts of the right shape (the extent and the axes limits come from it);
    # confusion_figure puts the real counts and their colour range in
    im = ax.imshow(np.arange(n * n, dtype=np.int64).reshape(n, n), cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig, ax, im


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                     title: str | None = None):
    """A matplotlib Figure of the confusion matrix (rows: true class, columns: predicted),
    each cell coloured by and labelled with its count.

    Example:
        >>> fig = confusion_figure([[8, 2], [1, 9]], ["cat", "dog"], title="pets")
        >>> [t.get_text() for t in fig.axes[0].texts]
        ['8', '2', '1', '9']
    """
    import numpy as np

    cm = np.asarray(confusion, dtype=np.int64)
    n = len(cm)
    skeleton = _SPARE.pop(n, None)  # a prepared one is used once
    fig, ax, im = skeleton if skeleton is not None else _confusion_skeleton(n)
    im.set_data(cm)
    im.autoscale()  # the colour range of these counts (min to max), as imshow(cm) chooses
    labels = list(classes) if len(classes) == n else [str(i) for i in range(n)]
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticklabels(labels, fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    # the layout before the n*n counts: they sit inside the axes, so they do not move
    # its edges, and tight_layout would measure every one of them
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, and savefig runs a whole
    # draw without rendering for any engine: one pass over every text artist for
    # nothing. No engine: the same bytes, one draw.
    fig.set_layout_engine(None)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if cm[i, j] > threshold else "black")
    return fig


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                   path: str | Path, title: str | None = None) -> Path:
    """Write the confusion matrix of :func:`confusion_figure` to ``path`` (PNG)."""
    path = Path(path)
    fig = confusion_figure(confusion, classes, title)
    from cnnlab.guards import atomic_output

    with atomic_output(path) as tmp:  # like curves.png: never a half-written file
        fig.savefig(tmp, dpi=110, format="png")
    return path


def in_notebook() -> bool:
    """True inside an IPython kernel, where figures can be shown live in the cell output.

    The one Jupyter check of the package. A kernel is JupyterLab, the classic
    Notebook, VS Code's notebooks or Colab: all run ipykernel's
    ``ZMQInteractiveShell`` or a subclass of it (Colab's is
    ``google.colab._shell.Shell``), started by an ``IPKernelApp``. The terminal
    ``ipython`` (``TerminalInteractiveShell``), plain Python and scripts are not.

    Example:
        >>> in_notebook()  # doctests run in a plain interpreter
        False
    """
    ipython = sys.modules.get("IPython")  # never import IPython just to ask
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an exotic or half-imported IPython: a script
        return False
    if shell is None:
        return False
    for cls in type(shell).__mro__:  # the kernel's shell or any subclass (Colab's)
        if cls.__name__ == "ZMQInteractiveShell" or cls.__module__.startswith(
                ("ipykernel.", "google.colab.")):
            return True
    try:  # a kernel whose shell class we do not know: its app is still an IPKernelApp
        return "IPKernelApp" in shell.config
    except Exception:  # noqa: BLE001 - no usable config: not a kernel
        return False


def show_live(history: Sequence[dict[str, Any]], title: str | None = None) -> None:
    """Redraw the board in the notebook output cell (replaces the previous drawing)."""
    from IPython.display import clear_output, display

    clear_output(wait=True)
    display(curves_figure(history, title))
