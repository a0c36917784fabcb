"""Shared helpers of the figures: evaluation sets, batched inference, image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.data.images import MAX_PIXELS
from cnnlab.errors import ConfigError
from cnnlab.guards import check_int

# the one pixel limit of image files (cnnlab.data.images), under its viz name
MAX_IMAGE_PIXELS = MAX_PIXELS

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
               nn.Softplus, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU)


@dataclass
class EvalSet:
    """Model-ready images ``X`` (float32, N x C x H x W), labels ``y`` and class names."""

    X: torch.Tensor
    y: torch.Tensor
    classes: list[str]


def check_model(model: Any, name: str = "model") -> nn.Module:
    """``model`` if it is a torch ``nn.Module``, else a ConfigError naming the argument."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{name} must be a torch.nn.Module (e.g. from create_model or "
                          f"model_from_checkpoint), got {type(model).__name__}")
    return model


def model_device(model: nn.Module) -> torch.device:
    check_model(model)
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def eval_set(data: Any, max_images: int | None = None) -> EvalSet:
    """The validation images of a DataModule, or an ``(X, y)`` / ``(X, y, classes)`` tuple.

    Wherever the data lives (a DataModule on the GPU), the set is on the CPU.
    """
    if max_images is not None:
        max_images = check_int("max_images", max_images)
    if isinstance(data, EvalSet):
        X, y, classes = data.X, data.y, data.classes
    elif isinstance(data, (tuple, list)):
        if len(data) not in (2, 3) or not all(isinstance(t, torch.Tensor) for t in data[:2]):
            raise ConfigError("data must be a DataModule or a tuple (X, y[, classes]) of "
                              "tensors")
        X, y = data[0], data[1]
        classes = list(data[2]) if len(data) == 3 else [str(i) for i in range(int(y.max()) + 1)]
    elif hasattr(data, "val_dataloader"):
        Xs, ys, n = [], [], 0
        for Xb, yb in data.val_dataloader():
            Xs.append(Xb.cpu())  # batch by batch: the whole set never sits twice on a GPU
            ys.append(yb.cpu())
            n += len(yb)
            if max_images is not None and n >= max_images:
                break
        X, y, classes = torch.cat(Xs), torch.cat(ys), list(data.classes)
    else:
        raise ConfigError(f"data must be a DataModule or a tuple (X, y), got {type(data).__name__}")
    if max_images is not None:
        X, y = X[:max_images], y[:max_images]
    if X.dim() != 4 or len(X) != len(y) or len(X) == 0:
        raise ConfigError(f"expected images N x C x H x W and N labels, got {tuple(X.shape)} "
                          f"and {tuple(y.shape)}")
    # on the CPU, like the logits of predict_logits: data on a GPU meets them there, and
    # the figures read single values without a device sync each
    return EvalSet(X.float().cpu(), y.long().cpu(), classes)


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits for ``X`` in eval mode, in batches (CPU result)."""
    device = model_device(model)  # checks that model is an nn.Module
    was_training = model.training
    model.eval()
    try:
        out = [model(X[i:i + batch_size].to(device)).float().cpu()
               for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def new_figure(width: float, height: float):
    """A matplotlib Figure without pyplot (no global state, no display needed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def show_image(ax, img: torch.Tensor, title: str | None = None, fontsize: int = 8) -> None:
    """Draw one C x H x W image, min-max scaled (normalised inputs look like raw ones)."""
    img = img.detach().float().cpu()
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else img.clamp(0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img[:3].permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def load_image(path: str | os.PathLike, in_channels: int = 1,
               size: Sequence[int] = (28, 28), invert: bool = False) -> torch.Tensor:
    """An image file as a uint8 tensor C x H x W, converted and resized for a model.

    The one image loader (:func:`cnnlab.data.images.load_image`, also behind ``cnnlab
    predict``): grey (``in_channels=1``) or RGB (3), 16-bit images scaled, padded to a
    square, resized with antialiasing to ``size``. Fashion-MNIST shows light objects on
    black: ``invert=True`` turns a dark-on-white photo into that. A missing file is a
    FileNotFoundError; anything PIL cannot read, or too large, is a :class:`DataError`.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.new("RGB", (50, 40), "white").save(p)
        >>> load_image(p, 1, (28, 28)).shape
        torch.Size([1, 28, 28])
    """
    from cnnlab.data import images

    return images.load_image(path, in_channels, size, invert=bool(invert))


def to_model_input(X: torch.Tensor, normalization: dict | None = None) -> torch.Tensor:
    """uint8 C x H x W (or N x C x H x W) -> float32 batch as the training data module made."""
    X = X.unsqueeze(0) if X.dim() == 3 else X
    X = X.float() / 255.0
    if normalization:
        mean = torch.as_tensor(normalization["mean"], dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(normalization["std"], dtype=torch.float32).reshape(1, -1, 1, 1)
        X = (X - mean) / std
    return X


def short_name(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]
