"""Activations for unlike inputs: real test images vs uniform noise vs unfamiliar images.

The 7.6 exercise: "what happens to the activations when you feed very different
inputs?" Per recorded layer: mean, std and the fraction of dead (ReLU output 0) or
saturated (sigmoid < 0.01 or > 0.99, tanh |y| > 0.99) units; at the output, the
prediction entropy (nats; ln 10 = 2.30 is a uniform guess over 10 classes) and the
mean top-class probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.viz._common import (
    ACTIVATIONS,
    EvalSet,
    check_model,
    eval_set,
    model_device,
    new_figure,
    short_name,
    show_image,
)

_SATURATING = (nn.Sigmoid, nn.Hardsigmoid, nn.Tanh)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class LayerStats:
    layer: str
    type: str
    mean: float
    std: float
    dead: float  # fraction of outputs exactly 0 (ReLU family), else nan
    saturated: float  # fraction in the flat ends of sigmoid/tanh, else nan


@dataclass
class InputStats:
    """Everything measured for one kind of input."""

    name: str
    layers: list[LayerStats]
    entropy: float  # mean prediction entropy, nats
    confidence: float  # mean top-class probability
    predicted: list[int] = field(default_factory=list)  # count per class


@dataclass
class ActivationsResult:
    inputs: list[InputStats]
    figure: Any

    def table(self) -> str:
        """A plain-text table: one line per layer, the inputs side by side."""
        names = [s.name for s in self.inputs]
        head = (f"{'layer':<24} {'type':<10} " + "  ".join(
            f"{'mean ' + n[:7]:>12} {'std':>6} {'dead/sat':>8}" for n in names))
        lines = [head, "-" * len(head)]
        for i, lay in enumerate(self.inputs[0].layers):
            cells = []
            for s in self.inputs:
                st = s.layers[i]
                frac = st.dead if not math.isnan(st.dead) else st.saturated
                frac_s = "-" if math.isnan(frac) else f"{frac:.1%}"
                cells.append(f"{st.mean:>12.3f} {st.std:>6.3f} {frac_s:>8}")
            lines.append(f"{short_name(lay.layer, 24):<24} {lay.type[:10]:<10} " + "  ".join(cells))
        k = len(self.inputs[0].predicted) or 10
        lines.append(f"prediction entropy (nats; uniform over {k} classes = {math.log(k):.2f}): "
                     + ", ".join(f"{s.name} {s.entropy:.3f}" for s in self.inputs))
        lines.append("mean top-class probability: "
                     + ", ".join(f"{s.name} {s.confidence:.3f}" for s in self.inputs))
        return "\n".join(lines)


def recorded_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Activation modules, plus blocks that apply their nonlinearity functionally
    (e.g. a residual block ending in ``F.relu``) since hooks cannot see those calls."""
    chosen = []
    for name, m in model.named_modules():
        if m is model or isinstance(m, _CONTAINERS):
            continue
        if isinstance(m, ACTIVATIONS):
            chosen.append((name, m))
        elif list(m.children()) and not any(isinstance(d, ACTIVATIONS) for d in m.modules()):
            chosen.append((name, m))
    return chosen


def _stats(model: nn.Module, X: torch.Tensor, name: str, batch_size: int = 256) -> InputStats:
    layers = recorded_layers(model)
    sums: dict[str, list[float]] = {n: [0.0, 0.0, 0.0, 0.0, 0.0] for n, _ in layers}
    kinds = {n: m for n, m in layers}

    def make_hook(key: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            y = output.detach().float()
            acc = sums[key]
            acc[0] += float(y.sum())
            acc[1] += float((y * y).sum())
            acc[2] += y.numel()
            acc[3] += float((y == 0).sum())
            if isinstance(module, nn.Tanh):
                acc[4] += float((y.abs() > 0.99).sum())
            else:
                acc[4] += float(((y < 0.01) | (y > 0.99)).sum())
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layers]
    was_training = model.training
    model.eval()
    device = model_device(model)
    ent, conf, counts = 0.0, 0.0, None
    try:
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                logits = model(X[i:i + batch_size].to(device)).float().cpu()
                p = torch.softmax(logits, dim=1)
                ent += float(-(p * torch.log(p.clamp_min(1e-12))).sum())
                conf += float(p.max(dim=1).values.sum())
                c = torch.bincount(p.argmax(dim=1), minlength=p.shape[1])
                counts = c if counts is None else counts + c
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = []
    for n, (s, s2, cnt, zeros, sat) in sums.items():
        if cnt == 0:
            continue
        mean = s / cnt
        std = math.sqrt(max(s2 / cnt - mean * mean, 0.0))
        m = kinds[n]
        relu_like = isinstance(m, (nn.ReLU, nn.ReLU6)) or not isinstance(m, ACTIVATIONS)
        dead = zeros / cnt if relu_like and not isinstance(m, _SATURATING) else math.nan
        saturated = sat / cnt if isinstance(m, _SATURATING) else math.nan
        out.append(LayerStats(n, type(m).__name__, mean, std, dead, saturated))
    predicted = counts.tolist() if counts is not None else []
    return InputStats(name, out, ent / len(X), conf / len(X), predicted)


def default_inputs(data: Any, test: EvalSet, ood: str = "auto",
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Real test images, uniform noise and an out-of-distribution set, all model-ready.

    With a DataModule the noise (uniform pixels 0-255) and the OOD images go through
    its own preprocessing (resize, normalisation). ``ood``: ``auto`` (MNIST digits if
    their files are present and the data is not MNIST, else the inverted test images),
    ``mnist``, ``synthetic`` (the synthetic shapes) or ``inverted``.
    """
    n = len(test.X)
    g = torch.Generator().manual_seed(seed)
    make = getattr(data, "make_batch", None)
    shape = (n, test.X.shape[1], 28, 28)
    if make is not None:
        noise = make(torch.randint(0, 256, shape, generator=g, dtype=torch.uint8))
    else:  # uniform over the value range the real images occupy
        lo, hi = float(test.X.min()), float(test.X.max())
        noise = lo + (hi - lo) * torch.rand(test.X.shape, generator=g)
    name = getattr(data, "name", None)
    if ood == "auto":
        ood = "inverted"
        if make is not None:
            from cnnlab.data import is_available

            if name != "mnist" and is_available("mnist", getattr(data, "root", None)):
                ood = "mnist"
            elif name != "synthetic":
                ood = "synthetic"
    if ood in ("mnist", "synthetic") and make is not None:
        from cnnlab.data import load_dataset

        other = load_dataset(ood, root=getattr(data, "root", None), download=False)
        imgs = other.test_images[:n]
        if imgs.shape[1] != test.X.shape[1]:
            imgs = imgs.expand(-1, test.X.shape[1], -1, -1)
        ood_X, ood_name = make(imgs.contiguous()), ood
    else:
        lo, hi = test.X.amin(dim=(1, 2, 3), keepdim=True), test.X.amax(dim=(1, 2, 3), keepdim=True)
        ood_X, ood_name = lo + hi - test.X, "inverted"
    return {"test": test.X, "noise": noise, ood_name: ood_X}


def activations(model: nn.Module, data: Any, max_images: int = 512, ood: str = "auto",
                inputs: dict[str, torch.Tensor] | None = None, seed: int = 0
                ) -> ActivationsResult:
    """Per-layer activation statistics and prediction entropy for three kinds of input.

    ``data``: a DataModule (its validation images) or ``(X, y)``. ``inputs`` replaces
    the default trio (``{"name": X, ...}``, model-ready tensors).

    Example:
        >>> import torch; from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
        ...                     nn.Linear(4 * 26 * 26, 10))
        >>> r = activations(net, (torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))))
        >>> [s.name for s in r.inputs], r.inputs[0].layers[0].type
        (['test', 'noise', 'inverted'], 'ReLU')
    """
    check_model(model)
    test = eval_set(data, max_images)
    if inputs is None:
        inputs = default_inputs(data, test, ood=ood, seed=seed)
    results = [_stats(model, X, name) for name, X in inputs.items()]
    return ActivationsResult(results, _figure(results, inputs))


def _figure(results: list[InputStats], inputs: dict[str, torch.Tensor]):
    fig = new_figure(13, 7.5)
    n = len(results)
    grid = fig.add_gridspec(2, max(n + 1, 3), height_ratios=[1, 1.6])
    for i, (name, X) in enumerate(inputs.items()):
        show_image(fig.add_subplot(grid[0, i]), X[0], f"{name} (example)", fontsize=9)
    ax = fig.add_subplot(grid[0, n:])
    xs = torch.arange(n).float()
    ax.bar(xs - 0.2, [r.entropy for r in results], 0.4, label="entropy (nats)")
    ax.bar(xs + 0.2, [r.confidence for r in results], 0.4, label="top-class prob.")
    ax.set_xticks(xs.tolist(), [r.name for r in results])
    ax.set_title("predictions", fontsize=10)
    ax.legend(fontsize=8)
    layer_names = [short_name(s.layer, 16) for s in results[0].layers]
    x = list(range(len(layer_names)))
    panels = [("mean", "mean activation"), ("std", "std of activation"),
              ("frac", "fraction dead (ReLU = 0) / saturated")]
    bottom = grid[1, :].subgridspec(1, 3)
    for j, (key, title) in enumerate(panels):
        ax = fig.add_subplot(bottom[0, j])
        for r in results:
            if key == "frac":
                vals = [s.dead if not math.isnan(s.dead) else s.saturated for s in r.layers]
            else:
                vals = [getattr(s, key) for s in r.layers]
            ax.plot(x, vals, marker="o", label=r.name)
        ax.set_xticks(x, layer_names, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("activations: real test images vs noise vs unfamiliar images", fontsize=11)
    return fig
