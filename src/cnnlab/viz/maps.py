"""What the convolutions learned: first-layer kernels and per-stage feature maps (d2l 7.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.guards import check_int
from cnnlab.viz._common import check_model, model_device, new_figure, show_image

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _is_conv(m: nn.Module) -> bool:
    # nn.Conv2d and cnnlab.layers.ScratchConv2d (same attribute names)
    return isinstance(m, nn.Conv2d) or (hasattr(m, "weight") and hasattr(m, "kernel_size")
                                        and getattr(m, "weight", None) is not None
                                        and m.weight.dim() == 4)


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """The first convolution in registration order (the one that sees the pixels)."""
    for name, m in model.named_modules():
        if _is_conv(m):
            return name, m
    raise ConfigError(f"{type(model).__name__} has no convolution layer to show")


@dataclass
class KernelsResult:
    """``weights``: the first conv's kernels (out, in, kh, kw); ``norms``: L2 norm per output."""

    layer: str
    weights: torch.Tensor
    norms: torch.Tensor
    figure: Any


def kernels(model: nn.Module, max_kernels: int = 64) -> KernelsResult:
    """The first convolution's kernels as a grid, one colour scale for all (red +, blue -).

    Example:
        >>> from torch import nn
        >>> r = kernels(nn.Sequential(nn.Conv2d(1, 6, 5)))
        >>> tuple(r.weights.shape), tuple(r.norms.shape)
        ((6, 1, 5, 5), (6,))
    """
    max_kernels = check_int("max_kernels", max_kernels, most=4096)
    name, conv = first_conv(check_model(model))
    W = conv.weight.detach().float().cpu()
    norms = W.flatten(1).norm(dim=1)
    n_out, n_in = W.shape[0], W.shape[1]
    shown = min(n_out, max_kernels)
    cols = min(8, shown) if n_in in (1, 3) else min(8, n_in)
    rows = math.ceil(shown / cols) if n_in in (1, 3) else min(shown, 8)
    fig = new_figure(1.1 * cols + 0.8, 1.1 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = float(W.abs().max()) or 1.0
    im = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if n_in in (1, 3):
                i = r * cols + c
                if i >= shown:
                    ax.set_axis_off()
                    continue
                if n_in == 1:
                    im = ax.imshow(W[i, 0].numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
                else:  # RGB kernels: shown as colours, scaled to [0, 1]
                    show_image(ax, W[i])
                ax.set_title(f"{i}", fontsize=7)
            else:  # many input channels: row = output kernel, column = input channel
                im = ax.imshow(W[r, c].numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
                ax.set_title(f"out {r} in {c}", fontsize=6)
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    k = "x".join(str(v) for v in W.shape[-2:])
    fig.suptitle(f"{name}: {n_out} kernels of {k} over {n_in} input channel(s)", fontsize=10)
    return KernelsResult(name, W, norms, fig)


@dataclass
class FeatureStage:
    """One stage of :func:`features`: the map after ``layer`` and the channels drawn."""

    layer: str
    shape: tuple[int, ...]  # C x H x W
    channels: list[int]  # the channels shown, most active first
    channel_means: torch.Tensor  # mean activation of every channel
    maps: torch.Tensor  # C x H x W


@dataclass
class FeaturesResult:
    image: torch.Tensor
    stages: list[FeatureStage]
    prediction: int
    probabilities: torch.Tensor
    figure: Any


def features(model: nn.Module, image: torch.Tensor, channels: int = 8, max_stages: int = 6,
             classes: list[str] | None = None, figure: bool = True) -> FeaturesResult:
    """Feature maps of each convolution stage for one model-ready image (C x H x W).

    A stage is the last output at each spatial resolution that holds a convolution
    (after its BN and activation, or a residual block's output), so the maps are what
    the next stage sees. The ``channels`` most active channels of each stage are drawn.

    Example:
        >>> import torch; from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ...                     nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        ...                     nn.Linear(8 * 14 * 14, 10))
        >>> r = features(net, torch.rand(1, 28, 28))
        >>> [s.shape for s in r.stages]
        [(4, 28, 28), (8, 14, 14)]
    """
    check_model(model)
    channels = check_int("channels", channels, most=256)
    max_stages = check_int("max_stages", max_stages, most=64)
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise ConfigError(f"image must be a C x H x W tensor, got "
                          f"{getattr(image, 'shape', type(image).__name__)}")
    X = image.unsqueeze(0) if image.dim() == 3 else image
    if X.dim() != 4 or X.shape[0] != 1:
        raise ConfigError(f"features takes one image C x H x W, got shape {tuple(image.shape)}")
    names = {m: n for n, m in model.named_modules()}
    trace: list[tuple[nn.Module, torch.Tensor]] = []

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            trace.append((module, output.detach()))

    # leaves and blocks (a residual block's hook fires after its children, with the
    # block's output: after the addition and the last ReLU); not plain containers
    hooked = [m for m in model.modules()
              if m is not model and not isinstance(m, (nn.Sequential, nn.ModuleList))]
    handles = [m.register_forward_hook(hook) for m in hooked]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(X.float().to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # runs of consecutive outputs at one resolution; a run's stage is its last output
    # if the run holds a convolution (a run of only pooling is a resampled copy)
    runs: list[list[tuple[nn.Module, torch.Tensor]]] = []
    for m, out in trace:
        if runs and runs[-1][-1][1].shape[-2:] == out.shape[-2:]:
            runs[-1].append((m, out))
        else:
            runs.append([(m, out)])
    by_size: dict[tuple[int, int], tuple[str, torch.Tensor]] = {}
    for run in runs:
        if not any(_is_conv(m) for m, _ in run):
            continue
        m, out = next((m, o) for m, o in reversed(run) if not isinstance(m, _POOLS))
        by_size[tuple(out.shape[-2:])] = (names.get(m, "?"), out[0].cpu())
    if not by_size:
        raise ConfigError(f"{type(model).__name__} has no convolution whose output to show")
    chosen = list(by_size.values())
    if len(chosen) > max_stages:
        idx = torch.linspace(0, len(chosen) - 1, max_stages).round().long().tolist()
        chosen = [chosen[i] for i in idx]
    result = []
    for label, maps in chosen:
        means = maps.mean(dim=(1, 2))
        order = torch.argsort(means, descending=True)[:channels].tolist()
        result.append(FeatureStage(label, tuple(maps.shape), order, means, maps))
    probs = torch.softmax(logits.float().cpu()[0], dim=0) if logits.dim() == 2 else None
    pred = int(probs.argmax()) if probs is not None else -1

    if not figure:  # the numbers only (cnnlab explore draws its own pictures, faster)
        return FeaturesResult(X[0].cpu(), result, pred,
                              probs if probs is not None else torch.empty(0), None)
    cols = channels + 1
    fig = new_figure(1.05 * cols, 1.15 * (len(result) + 1) + 0.3)
    axes = fig.subplots(len(result) + 1, cols, squeeze=False)
    for ax in axes.reshape(-1):
        ax.set_axis_off()
    show_image(axes[0, 0], X[0].cpu(), "input")
    axes[0, 0].set_axis_on()
    if probs is not None:  # beside the image, in the empty row: a title would be clipped
        name = classes[pred] if classes and pred < len(classes) else str(pred)
        label = axes[0, 0].text(1.15, 0.5, f"prediction: {name} ({float(probs[pred]):.0%})",
                                fontsize=9, va="center", ha="left", wrap=True,
                                transform=axes[0, 0].transAxes)
        label.set_in_layout(False)  # it overhangs the empty cells; the grid keeps its columns
    for r, st in enumerate(result, start=1):
        axes[r, 0].text(0.0, 0.5, f"{st.layer}\n{'x'.join(map(str, st.shape))}",
                        fontsize=7, va="center", transform=axes[r, 0].transAxes)
        for c, ch in enumerate(st.channels, start=1):
            ax = axes[r, c]
            ax.set_axis_on()
            ax.imshow(st.maps[ch].numpy(), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"ch {ch}", fontsize=7)
    fig.suptitle("feature maps per stage (most active channels)", fontsize=10, wrap=True)
    return FeaturesResult(X[0].cpu(), result, pred,
                          probs if probs is not None else torch.empty(0), fig)
