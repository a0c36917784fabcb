"""d2l's ``Animator`` (0.17, and 1.0.3's utilities): several curves redrawn as points come.

As the :class:`~cnnlab.d2l.ProgressBoard`: in a Jupyter kernel the figure is
redrawn in the cell output (d2l's ``display`` + ``clear_output``); anywhere else it
is written to a PNG file (``./d2l-animator.png`` unless ``png_path`` says
otherwise) whose path is printed once, without a GUI backend, at most once per
``CNNLAB_D2L_PNG_INTERVAL`` seconds and once more when training ends.

Example:
    >>> from cnnlab import d2l
    >>> anim = d2l.Animator(xlabel="epoch", legend=["loss", "acc"], display=False)
    >>> anim.add(1, (0.5, 0.8))
    >>> anim.add(2, (0.4, None))  # None: no point for that curve
    >>> anim.X, anim.Y
    ([[1, 2], [1]], [[0.5, 0.4], [0.8]])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab._d2l.throttle import ThrottledRender
from cnnlab._d2l.utils import set_axes, use_svg_display
from cnnlab.train.plots import in_notebook


class Animator(ThrottledRender):
    """Plot data points in animation: ``add(x, ys)`` appends one point per curve.

    ``display`` (cnnlab addition): False keeps the points without drawing.
    """

    def __init__(self, xlabel: Any = None, ylabel: Any = None, legend: Sequence[str] | None = None,
                 xlim: Any = None, ylim: Any = None, xscale: str = "linear",
                 yscale: str = "linear", fmts: Sequence[str] = ("-", "m--", "g-.", "r:"),
                 nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (3.5, 2.5),
                 *, display: bool = True) -> None:
        legend = [] if legend is None else legend
        self.jupyter = in_notebook()
        if self.jupyter:
            import matplotlib.pyplot as plt

            use_svg_display()
            self.fig, axes = plt.subplots(nrows, ncols, figsize=figsize)
        else:
            from matplotlib.figure import Figure  # no GUI backend, safe in scripts and CI

            self.fig = Figure(figsize=figsize)
            axes = self.fig.subplots(nrows, ncols)
        self.axes = [axes] if nrows * ncols == 1 else axes
        self.config_axes = lambda: set_axes(self.axes[0], xlabel, ylabel, xlim, ylim,
                                            xscale, yscale, legend)
        self.X: list[list[Any]] | None = None
        self.Y: list[list[Any]] | None = None
        self.fmts = fmts
        self.display = display
        self.png_path: str | None = None
        self._announced: str | None = None

    def add(self, x: Any, y: Any) -> None:
        """Add the points (x, y[i]) to curve i; a None x or y skips that curve."""
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(b)
        if self.display:
            self.refresh()

    def writes_png(self) -> bool:
        return not self.jupyter

    def png_file(self) -> str:
        return self.png_path or "d2l-animator.png"

    def render(self, announce: bool = True) -> None:
        """Redraw: in the notebook output, or into the PNG file (path printed once)."""
        ax = self.axes[0]
        ax.cla()
        for xs, ys, fmt in zip(self.X or [], self.Y or [], self.fmts):
            ax.plot(xs, ys, fmt)
        self.config_axes()
        if self.jupyter:
            from IPython import display

            display.display(self.fig)
            display.clear_output(wait=True)
            return
        path = self.png_file()
        from cnnlab.guards import atomic_output

        with atomic_output(path) as tmp:  # rewritten as points come: never half a picture
            self.fig.savefig(tmp, dpi=100, bbox_inches="tight",
                             format=Path(path).suffix[1:].lower() or "png")
        self.png_saved()
        if announce and self._announced != path:
            print(f"d2l animator: {Path(os.path.abspath(path))}")
            self._announced = path
