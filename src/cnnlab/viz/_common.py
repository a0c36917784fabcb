"""Shared helpers of the figures: evaluation sets, batched inference, image files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError

# refuse images larger than this before decoding them (a decompression bomb, or a photo
# far larger than any 28-224 pixel input needs)
MAX_IMAGE_PIXELS = 40_000_000

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
               nn.Softplus, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU)


@dataclass
class EvalSet:
    """Model-ready images ``X`` (float32, N x C x H x W), labels ``y`` and class names."""

    X: torch.Tensor
    y: torch.Tensor
    classes: list[str]


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def eval_set(data: Any, max_images: int | None = None) -> EvalSet:
    """The validation images of a DataModule, or an ``(X, y)`` / ``(X, y, classes)`` tuple."""
    if isinstance(data, EvalSet):
        X, y, classes = data.X, data.y, data.classes
    elif isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ConfigError("data must be a DataModule or a tuple (X, y[, classes])")
        X, y = data[0], data[1]
        classes = list(data[2]) if len(data) == 3 else [str(i) for i in range(int(y.max()) + 1)]
    elif hasattr(data, "val_dataloader"):
        Xs, ys, n = [], [], 0
        for Xb, yb in data.val_dataloader():
            Xs.append(Xb)
            ys.append(yb)
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
    return EvalSet(X.float(), y.long(), classes)


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits for ``X`` in eval mode, in batches (CPU result)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
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

    Grey (``in_channels=1``) or RGB (3); resized with antialiasing to ``size``. Fashion-
    MNIST shows light objects on black: ``invert=True`` turns a dark-on-white photo
    into that. Anything PIL cannot read is a :class:`DataError`.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.new("RGB", (50, 40), "white").save(p)
        >>> load_image(p, 1, (28, 28)).shape
        torch.Size([1, 28, 28])
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file; give the path of a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            # PIL warns (a second stderr line) past 89 MP; the limit below is lower anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {im.width}x{im.height} pixels is too large "
                                f"(limit {MAX_IMAGE_PIXELS}); scale it down first")
            im = im.convert("L" if in_channels == 1 else "RGB")
            im = im.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR,
                           reducing_gap=None)
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image PIL can read; give a PNG or JPEG file") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read the image ({e}); give a PNG or JPEG file") from None
    c = 1 if in_channels == 1 else 3
    X = data.reshape(int(size[0]), int(size[1]), c).permute(2, 0, 1).contiguous()
    if in_channels not in (1, 3):
        raise ConfigError(f"images can feed models with 1 or 3 input channels, not {in_channels}")
    return 255 - X if invert else X


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
