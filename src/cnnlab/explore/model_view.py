"""The Model view (d2l 7.6, 8.x): a trained network's prediction, feature maps, kernels,
the receptive field of a clicked unit and its activation statistics.

The numbers come from cnnlab's own functions: the model from
:func:`cnnlab.train.checkpoint.model_from_checkpoint` (``weights_only`` loading), the
input from :mod:`cnnlab.data.images` (prepared as ``cnnlab predict`` does), the maps and the
prediction from :func:`cnnlab.viz.features`, the kernels from
:func:`cnnlab.viz.kernels`, the layer table from :func:`cnnlab.model_summary.summary`
and the receptive fields from :func:`cnnlab.shapes.explain_model`.

Example:
    >>> import torch; from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Conv2d(4, 8, 5), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 10))
    >>> m = from_module(net, input_size=28)
    >>> a = analyze(m, torch.rand(1, 1, 28, 28))
    >>> [s.shape for s in a.stages], len(a.top)
    ([(4, 28, 28), (8, 10, 10)], 5)
    >>> hit = a.unit_at(a.layout[1].left + 1, a.layout[1].top + 1)
    >>> hit[:2], field_box(m, a.stages[hit[0]], hit[2], hit[3])[:4]
    ((1, 0), (0, 0, 12, 12))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.explore import render


@dataclass
class Loaded:
    """A model ready to explore and what its inputs must look like."""

    label: str
    net: nn.Module
    classes: list[str]
    in_channels: int
    size: tuple[int, int]
    normalization: dict | None = None
    dataset: str = "fashion-mnist"
    light_on_dark: bool = True
    summary_text: str = ""
    kernels: np.ndarray | None = None  # the first layer's kernels as a picture
    _explanation: Any = field(default=None, repr=False)

    @property
    def explanation(self):
        """Every layer's receptive field (computed once per model)."""
        if self._explanation is None:
            from cnnlab.shapes import explain_model

            self._explanation = explain_model(self.net, self.size, in_channels=self.in_channels)
        return self._explanation


def _finish(m: Loaded) -> Loaded:
    from cnnlab import viz
    from cnnlab.model_summary import summary

    m.net.eval()
    m.summary_text = str(summary(m.net, (1, m.in_channels, *m.size)))
    k = viz.kernels(m.net)
    W = k.weights
    maps = W[:, 0] if W.shape[1] != 3 else W.mean(dim=1)  # RGB kernels: their channel mean
    pic, _ = render.mosaic(render.as_array(maps), "RdBu_r", symmetric=True, width=420, gap=6)
    what = "input channel 0" if W.shape[1] != 3 else "mean over R, G, B"
    m.kernels = render.legend(pic, f"{k.layer}: {W.shape[0]} kernels "
                              f"{W.shape[-2]}x{W.shape[-1]} ({what}); weight blue < 0 < red")
    return m


def from_checkpoint(path, label: str | None = None) -> Loaded:
    """A checkpoint written by ``cnnlab train`` (read with ``weights_only=True``)."""
    from cnnlab.train.checkpoint import model_from_checkpoint
    from cnnlab.train.predict import LIGHT_ON_DARK

    net, cfg, state = model_from_checkpoint(path)
    size = state.get("image_size") or [cfg.resize or 28, cfg.resize or 28]
    classes = list(state.get("classes") or [str(i) for i in range(state["num_classes"])])
    norm = state.get("normalization")
    if norm is None and cfg.normalize:
        from cnnlab.data import DataModule

        data = DataModule(cfg.dataset, batch_size=256, download=False, normalize=True)
        norm = {"mean": torch.as_tensor(data.mean).flatten().tolist(),
                "std": torch.as_tensor(data.std).flatten().tolist()}
    return _finish(Loaded(label or str(path), net, classes, int(state["in_channels"]),
                          (int(size[0]), int(size[-1])), norm, cfg.dataset,
                          cfg.dataset in LIGHT_ON_DARK))


def from_module(net: nn.Module, input_size: int | tuple[int, int] = 28,
                classes: list[str] | None = None, dataset: str = "fashion-mnist",
                label: str = "your model") -> Loaded:
    """A model object from a notebook; its inputs are ``input_size`` images of ``dataset``."""
    from cnnlab.viz.maps import first_conv

    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    in_channels = int(first_conv(net)[1].in_channels)
    if classes is None:
        from cnnlab.explore.inputs import dataset as load

        classes = list(load(dataset).classes)
    return _finish(Loaded(label, net, list(classes), in_channels, size, None, dataset))


def model_input(m: Loaded, pil, invert: str = "auto") -> torch.Tensor:
    """A picture as the model's (1, C, H, W) input, prepared as ``cnnlab predict`` does."""
    from cnnlab.data.images import image_tensor

    X, _ = image_tensor(pil, m.in_channels, m.size, invert, light_on_dark=m.light_on_dark)
    if m.normalization:
        mean = torch.tensor(m.normalization["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(m.normalization["std"]).view(1, -1, 1, 1)
        X = (X - mean) / std
    return X


@dataclass
class Placed:
    """Where one stage's mosaic sits in the feature-map picture."""

    stage: int
    top: int
    left: int
    tiles: list[render.Tile]


@dataclass
class Analysis:
    """One forward pass: top-k classes, the stages' maps and their picture."""

    X: torch.Tensor
    top: dict[str, float]
    stages: list[Any]  # cnnlab.viz.maps.FeatureStage
    picture: np.ndarray
    layout: list[Placed]

    def unit_at(self, x: int, y: int) -> tuple[int, int, int, int] | None:
        """(stage, channel, row, col) of the feature-map pixel at picture point (x, y)."""
        for place in self.layout:
            for t in place.tiles:
                top, left = place.top + t.top, place.left + t.left
                if top <= y < top + t.h * t.scale and left <= x < left + t.w * t.scale:
                    return place.stage, t.channel, (y - top) // t.scale, (x - left) // t.scale
        return None


def analyze(m: Loaded, X: torch.Tensor, topk: int = 5, width: int = 840) -> Analysis:
    """Forward ``X`` (1, C, H, W) once: the prediction and every stage's maps, all channels."""
    from cnnlab import viz

    r = viz.features(m.net, X[0], channels=1, max_stages=8, classes=m.classes, figure=False)
    probs = r.probabilities
    top = {}
    if probs.numel():
        p, idx = probs.topk(min(topk, probs.numel()))
        top = {(m.classes[i] if i < len(m.classes) else str(i)): float(q)
               for q, i in zip(p.tolist(), idx.tolist())}
    # a white band on top: the page draws the picture's label over its top-left corner
    parts, layout, y = [np.full((26, width, 3), 255, np.uint8)], [], 26
    for s, st in enumerate(r.stages):
        pic, tiles = render.mosaic(render.as_array(st.maps), "viridis", width=width)
        body = render.caption(pic.rgb, f"{st.layer}: {st.shape[0]} channels of "
                              f"{st.shape[1]}x{st.shape[2]} (click a unit)")
        with_legend = render.legend(render.Picture(body, pic.vmin, pic.vmax, pic.cmap),
                                    "activation value (viridis: dark = low, yellow = high)")
        layout.append(Placed(s, y + body.shape[0] - pic.rgb.shape[0], 0, tiles))
        parts.append(with_legend)
        y += with_legend.shape[0] + 6
        parts.append(np.full((6, with_legend.shape[1], 3), 255, np.uint8))
    w = max(p.shape[1] for p in parts)
    picture = np.concatenate([np.pad(p, ((0, 0), (0, w - p.shape[1]), (0, 0)),
                                     constant_values=255) for p in parts], axis=0)
    return Analysis(X, top, r.stages, picture, layout)


def field_box(m: Loaded, stage, row: int, col: int) -> tuple[int, int, int, int, str]:
    """The input pixels (top, left, bottom, right; exclusive ends, clipped) that unit
    (row, col) of ``stage`` sees, and a sentence saying so.

    The field is the one :func:`cnnlab.shapes.explain_model` reports for the stage's
    last layer: centre ``start + index * jump`` and side ``rf`` per dimension.
    """
    rows = [r for r in m.explanation.rows if r.rf is not None and not r.branch]
    mine = [r for r in rows if r.name == stage.layer or r.name.startswith(stage.layer + ".")]
    same = [r for r in rows if tuple(r.output_shape[-2:]) == tuple(stage.shape[-2:])]
    if not (mine or same):
        raise ConfigError(f"no receptive field is known for {stage.layer}")
    r = (mine or same)[-1]
    box = []
    for dim, idx in ((0, row), (1, col)):
        centre = r.start[dim] + idx * r.jump[dim]
        lo = centre - (r.rf[dim] - 1) / 2
        box.append((int(math.floor(lo)), int(math.floor(lo)) + r.rf[dim]))
    H, W = m.size
    top, bottom = max(box[0][0], 0), min(box[0][1], H)
    left, right = max(box[1][0], 0), min(box[1][1], W)
    text = (f"unit ({row}, {col}) of {stage.layer} sees input rows {top}..{bottom - 1}, "
            f"columns {left}..{right - 1}: a receptive field of {r.rf[0]}x{r.rf[1]} pixels "
            f"(jump {r.jump[0]}x{r.jump[1]}, from {r.name})")
    if (bottom - top, right - left) != tuple(r.rf):
        text += "; the part outside the image is padding"
    return top, left, bottom, right, text


def input_picture(X: torch.Tensor, box: tuple[int, int, int, int] | None = None,
                  target: int = 280) -> np.ndarray:
    """The model's input (channel mean, min-max scaled) with a receptive field drawn."""
    img = render.as_array(X[0].float().mean(dim=0))
    pic = render.colorize(img, "gray")
    s = render.fit_scale(*img.shape, target=target)
    pic.rgb = render.zoom(pic.rgb, s)
    label = "model input (grey: its values after preprocessing)"
    if box is not None:
        top, left, bottom, right = box
        render.draw_box(pic.rgb, top * s, left * s, bottom * s, right * s, render.FIELD,
                        width=max(2, s // 3))
        label += "; red box = receptive field"
    return render.legend(pic, label)


def mark_unit(a: Analysis, stage: int, channel: int, row: int, col: int) -> np.ndarray:
    """The feature-map picture with the clicked unit boxed."""
    place = a.layout[stage]
    t = place.tiles[channel]
    top, left = place.top + t.top + row * t.scale, place.left + t.left + col * t.scale
    rgb = a.picture.copy()
    return render.draw_box(rgb, top - 2, left - 2, top + t.scale + 2, left + t.scale + 2,
                           render.FIELD, width=2)


def activation_stats(m: Loaded, max_images: int = 256):
    """:func:`cnnlab.viz.activations` on the model's test set, noise and unfamiliar images."""
    from cnnlab import viz
    from cnnlab.data import DataModule

    resize = None if tuple(m.size) == (28, 28) else tuple(m.size)
    data = DataModule(m.dataset, batch_size=256, resize=resize, download=False,
                      normalize=bool(m.normalization))
    return viz.activations(m.net, data, max_images=max_images)
