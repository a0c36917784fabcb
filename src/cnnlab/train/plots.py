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

# zlib level 1 instead of Pillow's 6: the files ~10% larger, written in less time (the
# figures are drawn at the end of every run: benchmarks/results/startup.md)
PNG = {"compress_level": 1}
# the book's colours and line styles for (train_loss, val_loss, val_acc)
_CURVES = (("train_loss", "-", "C0"), ("val_loss", "--", "C1"), ("val_acc", "-.", "C2"))


def _figure(size: tuple[float, float], dpi: float | None = None):
    # A Figure with an Agg canvas, independent of pyplot's global backend and state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
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
        fig.savefig(tmp, dpi=100, format="png", pil_kwargs=PNG)
    return path


def prepare_confusion(classes: Sequence[str], title: str | None = None) -> None:
    """Build and draw everything of a confusion figure of ``classes`` and ``title`` that
    does not depend on the counts (labels, title, layout, colour bar), for the next
    :func:`confusion_figure` with those classes and title, in this process or in one
    forked from it; :func:`plot_confusion` then draws only the cells and their counts
    over it.

    The plotting helper (:mod:`cnnlab.train.plotter`) calls it once the run's classes
    and title are known, before the first epoch, so the figure written after the last
    epoch starts from there. The file is the same bytes either way (tested).
    """
    labels = [str(c) for c in classes]
    if labels:
        skeleton = _labelled_skeleton(labels, title)
        _draw_background(skeleton)
        _READY[(tuple(labels), title)] = skeleton


def warm_confusion(n: int) -> None:
    """Build the label-free parts of an ``n``-class confusion figure (figure, axes, colour
    bar) and the counts' digit outlines, for :func:`prepare_confusion` to finish: the
    helper does this while the training process imports torch."""
    _BARE[n] = _confusion_skeleton(n)
    _digits(COUNT_SIZE)
    # what writing the file imports, imported here rather than in each drawing
    import matplotlib.image  # noqa: F401
    from PIL import PngImagePlugin  # noqa: F401

    import cnnlab.guards  # noqa: F401


_BARE: dict[int, tuple[Any, Any, Any]] = {}  # n -> a label-free skeleton no figure has used
# (labels, title) -> a labelled skeleton whose background is drawn on its canvas
_READY: dict[tuple[tuple[str, ...], str | None], tuple[Any, Any, Any]] = {}
COUNT_SIZE = 6.0  # points: the cell counts' font size
# confusion.png's pixels per inch, also the figure's own: tight_layout then measures the
# labels with the renderer savefig draws with, which reuses those measurements
CONFUSION_DPI = 110
_GLYPHS: dict[float, tuple[dict[str, tuple[Any, Any, float]], float]] = {}


def _digits(size: float) -> tuple[dict[str, tuple[Any, Any, float]], float]:
    """The outline (vertices in points, path codes) and advance of each digit and '-' in
    the default font at ``size`` points, and the digits' height; made once a process."""
    if size not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath, TextToPath

        prop, measure = FontProperties(size=size), TextToPath()
        glyphs = {}
        for c in "0123456789-":
            path = TextPath((0, 0), c, prop=prop)
            advance = measure.get_text_width_height_descent(c, prop, ismath=False)[0]
            glyphs[c] = (path.vertices, path.codes, advance)
        _GLYPHS[size] = glyphs, TextPath((0, 0), "0", prop=prop).get_extents().y1
    return _GLYPHS[size]


def _count_paths(cm: Any, size: float) -> list[Any]:
    """Each count of ``cm`` as one Path of its digits' outlines, in points, centred on (0, 0).

    Why outlines and not a Text per cell: each Text is laid out (shaped) twice as it is
    drawn, which was about half of confusion.png's drawing time after the last epoch
    (benchmarks/results/startup.md); the digits' outlines are made once per process (the
    plotting helper makes them before training) and placed by numpy."""
    import numpy as np
    from matplotlib.path import Path as MplPath

    glyphs, height = _digits(size)
    paths = []
    for value in cm.flat:
        text = str(int(value))
        x = -sum(glyphs[c][2] for c in text) / 2
        verts, codes = [], []
        for c in text:
            v, k, advance = glyphs[c]
            verts.append(v + (x, -height / 2))
            codes.append(k)
            x += advance
        paths.append(MplPath(np.concatenate(verts), np.concatenate(codes)))
    return paths


def _labels(classes: Sequence[str], n: int) -> list[str]:
    return [str(c) for c in classes] if len(classes) == n else [str(i) for i in range(n)]


def _confusion_skeleton(n: int) -> tuple[Any, Any, Any]:
    import numpy as np

    fig = _figure((1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=CONFUSION_DPI)
    ax = fig.add_subplot()
    # each cell is coloured by its share of the true class (its row), as in
    # cnnlab.viz.confusion: a fixed colour range, so everything but the cells can be
    # drawn before the counts are known, and rare classes show as clearly as common ones
    im = ax.imshow(np.zeros((n, n)), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.tick_params(length=0)  # the labels name the cells; no marks that touch the cells
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig, ax, im


def _labelled_skeleton(labels: list[str], title: str | None) -> tuple[Any, Any, Any]:
    n = len(labels)
    fig, ax, im = _BARE.pop(n, None) or _confusion_skeleton(n)  # a bare one is used once
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
    return fig, ax, im


def _cells(ax: Any, im: Any) -> list[Any]:
    """What a drawn background leaves out: the cells' image and the axes' frame, which
    the image would overlap, drawn over it in the order a whole drawing uses."""
    return [im, *ax.spines.values()]


def _draw_background(skeleton: tuple[Any, Any, Any]) -> None:
    fig, ax, im = skeleton
    cells = _cells(ax, im)
    for a in cells:
        a.set_visible(False)
    fig.canvas.draw()  # onto the canvas's renderer, which plot_confusion draws over
    for a in cells:
        a.set_visible(True)
    fig._cnnlab_background = True


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                     title: str | None = None):
    """A matplotlib Figure of the confusion matrix (rows: true class, columns: predicted),
    each cell coloured by its fraction of the true class and labelled with its count.
    The counts are drawn as the outlines of their digits, one PathCollection whose
    ``counts`` lists them row by row.

    Example:
        >>> fig = confusion_figure([[8, 2], [1, 9]], ["cat", "dog"], title="pets")
        >>> fig.axes[0].collections[-1].counts
        ['8', '2', '1', '9']
    """
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.transforms import Affine2D

    cm = np.asarray(confusion, dtype=np.int64)
    n = len(cm)
    labels = _labels(classes, n)
    ready = _READY.pop((tuple(labels), title), None)  # a prepared one is used once
    fig, ax, im = ready if ready is not None else _labelled_skeleton(labels, title)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im.set_data(share)
    rows, cols = np.indices(cm.shape)
    counts = PathCollection(
        _count_paths(cm, COUNT_SIZE), offsets=np.column_stack([cols.ravel(), rows.ravel()]),
        offset_transform=ax.transData, facecolors=np.where(share.ravel() > 0.5, "white",
                                                           "black"),
        edgecolors="none", linewidths=0, zorder=3)
    counts.set_transform(Affine2D().scale(1 / 72) + fig.dpi_scale_trans)  # points, any dpi
    counts.counts = [str(int(v)) for v in cm.flat]
    ax.add_collection(counts, autolim=False)
    return fig


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                   path: str | Path, title: str | None = None) -> Path:
    """Write the confusion matrix of :func:`confusion_figure` to ``path`` (PNG)."""
    path = Path(path)
    fig = confusion_figure(confusion, classes, title)
    from cnnlab.guards import atomic_output

    with atomic_output(path) as tmp:  # like curves.png: never a half-written file
        if getattr(fig, "_cnnlab_background", False):
            # prepare_confusion drew the rest: the cells, the frame and the counts over it
            # make the whole figure, the bytes savefig writes (tested)
            from matplotlib.image import imsave

            ax = fig.axes[0]
            for a in [*_cells(ax, ax.get_images()[0]), ax.collections[-1]]:
                ax.draw_artist(a)
            imsave(tmp, fig.canvas.buffer_rgba(), format="png", origin="upper",
                   dpi=fig.dpi, pil_kwargs=PNG)
        else:
            fig.savefig(tmp, dpi=CONFUSION_DPI, format="png", pil_kwargs=PNG)
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
