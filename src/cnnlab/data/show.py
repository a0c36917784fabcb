"""A grid of sample images with their class names (the book's ``d2l.show_images``).

Example:
    >>> import torch
    >>> fig = image_grid(torch.rand(4, 1, 28, 28), ["a", "b", "c", "d"], nrows=1, ncols=4)
    >>> len(fig.axes)
    4
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["image_grid"]


def image_grid(X: torch.Tensor, labels: Sequence[str] | None = None, nrows: int = 2,
               ncols: int = 9, scale: float = 1.5):
    """A matplotlib Figure showing images ``X`` (B, C, H, W) with ``labels`` as titles.

    Images are min-max scaled per image for display, so normalised batches show
    the same as raw ones. Uses matplotlib's object API (no pyplot state), which
    works without a display.
    """
    from matplotlib.figure import Figure

    X = X.detach().float().cpu()
    n = min(len(X), nrows * ncols)
    fig = Figure(figsize=(ncols * scale, nrows * scale * 1.15), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        img = X[i]
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else img.clamp(0, 1)
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy())
        if labels is not None and i < len(labels):
            ax.set_title(str(labels[i]), fontsize=9)
    return fig
