"""d2l's ``ProgressBoard``: curves drawn point by point while a model trains.

In Jupyter the figure is redrawn in the cell output (as the book's); anywhere else
(a script, a terminal, CI) it is written to a PNG file, by default
``./d2l-board.png`` or the run directory of the training run, and its path is printed
once. The file is rewritten at most once per ``CNNLAB_D2L_PNG_INTERVAL`` seconds and
once more when training ends (see :mod:`cnnlab._d2l.throttle`).

Example:
    >>> from cnnlab.d2l import ProgressBoard
    >>> board = ProgressBoard("x", display=False)
    >>> for x in range(4):
    ...     board.draw(x, x * x, "square", every_n=2)
    >>> [(p.x, p.y) for p in board.data["square"]]
    [(0.5, 0.5), (2.5, 6.5)]
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

from cnnlab._d2l.core import HyperParameters
from cnnlab._d2l.throttle import ThrottledRender
from cnnlab.train.plots import in_notebook

Point = collections.namedtuple("Point", ["x", "y"])


def _scalar(y: Any) -> float:
    # d2l passes 0-d tensors (possibly on the GPU); the board stores plain floats.
    if hasattr(y, "detach"):
        return float(y.detach().float().cpu())
    return float(y)


class ProgressBoard(HyperParameters, ThrottledRender):
    """Plot data points as they come (d2l 3.2.4).

    ``draw(x, y, label, every_n)`` averages every ``every_n`` points of a label into
    one plotted point. ``ls`` and ``colors`` go to the labels in order of first use:
    the book's train_loss (solid), val_loss (dashed), val_acc (dash-dot).
    """

    def __init__(self, xlabel: Any = None, ylabel: Any = None, xlim: Any = None,
                 ylim: Any = None, xscale: str = "linear", yscale: str = "linear",
                 ls: Any = ("-", "--", "-.", ":"), colors: Any = ("C0", "C1", "C2", "C3"),
                 fig: Any = None, axes: Any = None, figsize: tuple[float, float] = (3.5, 2.5),
                 display: bool = True) -> None:
        self.save_hyperparameters()
        self.png_path: str | None = None  # where the figure goes outside Jupyter
        self._announced: str | None = None

    def draw(self, x: Any, y: Any, label: str, every_n: int = 1) -> None:
        """Add point (x, y) to curve ``label``; plot the mean of every ``every_n`` points."""
        if not hasattr(self, "raw_points"):
            self.raw_points: collections.OrderedDict = collections.OrderedDict()
            self.data: collections.OrderedDict = collections.OrderedDict()
        if label not in self.raw_points:
            self.raw_points[label] = []
            self.data[label] = []
        points = self.raw_points[label]
        points.append(Point(float(x), _scalar(y)))
        if len(points) != max(int(every_n), 1):
            return
        self.data[label].append(Point(sum(p.x for p in points) / len(points),
                                      sum(p.y for p in points) / len(points)))
        points.clear()
        if self.display:
            self.refresh()

    def writes_png(self) -> bool:
        return not in_notebook()

    def png_file(self) -> str:
        return self.png_path or os.environ.get("CNNLAB_D2L_BOARD") or "d2l-board.png"

    def render(self) -> None:
        """Redraw every curve: in the notebook output, or into the PNG file."""
        jupyter = in_notebook()  # the package's one Jupyter check (Colab, Lab, VS Code)
        if self.fig is None:
            if jupyter:
                import matplotlib.pyplot as plt

                self.fig = plt.figure(figsize=self.figsize)
            else:
                # A bare Figure: no GUI backend, no pyplot state, safe in threads and CI.
                from matplotlib.figure import Figure

                self.fig = Figure(figsize=self.figsize)
        axes = self.axes if self.axes is not None else (
            self.fig.axes[0] if self.fig.axes else self.fig.add_subplot())
        axes.cla()
        lines, labels = [], []
        for (k, v), ls, color in zip(self.data.items(), self.ls, self.colors):
            lines.append(axes.plot([p.x for p in v], [p.y for p in v], linestyle=ls,
                                   color=color)[0])
            labels.append(k)
        if self.xlim:
            axes.set_xlim(self.xlim)
        if self.ylim:
            axes.set_ylim(self.ylim)
        axes.set_xlabel(self.xlabel if self.xlabel else "x")
        if self.ylabel:
            axes.set_ylabel(self.ylabel)
        axes.set_xscale(self.xscale)
        axes.set_yscale(self.yscale)
        axes.legend(lines, labels)
        if jupyter:
            from IPython import display

            display.display(self.fig)
            display.clear_output(wait=True)
            return
        path = self.png_file()
        from cnnlab.guards import atomic_output

        with atomic_output(path) as tmp:  # redrawn each epoch: never half a picture
            self.fig.savefig(tmp, dpi=100, bbox_inches="tight",
                             format=Path(path).suffix[1:].lower() or "png")
        self.png_saved()
        if self._announced != path:
            print(f"d2l board: {Path(path).resolve()}")
            self._announced = path
