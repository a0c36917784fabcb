"""`cnnlab predict`: classify image files with a trained checkpoint.

An image of any size and colour mode is turned into what the model saw in
training: grey (L) or RGB to match its input channels, padded to a square with
its own background colour, resized to the training input size, scaled to
[0, 1] and standardised like the training data. Fashion-MNIST and MNIST show
light objects on a black background; a photo of a dark object on a light
background is inverted first (``invert="auto"``), or on request.

Example:
    >>> from PIL import Image
    >>> X, inverted = image_tensor(Image.new("RGB", (40, 20), "white"), 1, (28, 28))
    >>> tuple(X.shape), inverted, float(X.max())
    ((1, 1, 28, 28), True, 0.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import ConfigError, DataNotFoundError

MAX_PIXELS = 50_000_000  # refuse larger images (decompression bombs): 50 megapixels
LIGHT_ON_DARK = ("fashion-mnist", "mnist", "synthetic")


def open_image(path: str | Path):
    """Open ``path`` with Pillow, refusing non-images and images over MAX_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not an image; pass PNG or JPEG files")
    if not path.is_file():  # FileNotFoundError for Python callers
        raise DataNotFoundError(f"image {path} does not exist; pass PNG or JPEG files")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ConfigError(f"image {path} has {w}x{h} pixels, more than "
                                  f"{MAX_PIXELS // 1_000_000} megapixels; shrink it first")
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ConfigError(f"image {path} is too large to open safely (decompression bomb "
                          "guard); shrink it first") from None
    except UnidentifiedImageError:
        raise ConfigError(f"{path} is not an image Pillow can read; pass PNG or JPEG files"
                          ) from None
    except OSError as e:
        raise ConfigError(f"image {path} is truncated or unreadable ({e})") from None
    return im


def image_tensor(im, in_channels: int, size: Sequence[int], invert: str | bool = "auto",
                 light_on_dark: bool = True) -> tuple[torch.Tensor, bool]:
    """A PIL image as a float (1, C, H, W) batch in [0, 1]; returns (X, inverted)."""
    import numpy as np
    from PIL import Image, ImageOps

    if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)  # transparent areas read as white paper
    im = im.convert("L" if in_channels == 1 else "RGB")
    grey = np.asarray(im.convert("L"), dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    light_background = float(np.median(border)) > 127
    if invert == "auto":
        do_invert = light_on_dark and light_background
    else:
        do_invert = invert in (True, "yes")
    if do_invert:
        im = ImageOps.invert(im)
    # pad to a square with the border's colour so that the object keeps its shape
    w, h = im.size
    side = max(w, h)
    if w != h:
        fill = tuple(int(v) for v in np.median(
            np.asarray(im).reshape(h, w, -1)[[0, -1]].reshape(-1, len(im.getbands())), axis=0))
        square = Image.new(im.mode, (side, side), fill if len(fill) > 1 else fill[0])
        square.paste(im, ((side - w) // 2, (side - h) // 2))
        im = square
    H, W = int(size[0]), int(size[1])
    im = im.resize((W, H), Image.Resampling.BILINEAR, reducing_gap=None)
    X = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()) / 255.0
    X = X.unsqueeze(0) if X.dim() == 2 else X.permute(2, 0, 1)
    return X.unsqueeze(0), do_invert


def predict_files(checkpoint: str | Path, images: Sequence[str | Path], topk: int = 3,
                  invert: str = "auto", device: str = "cpu") -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    from cnnlab.train.checkpoint import model_from_checkpoint

    if topk < 1:
        raise ConfigError(f"--topk must be >= 1, got {topk}")
    if invert not in ("auto", "yes", "no"):
        raise ConfigError(f"--invert must be auto, yes or no; got {invert!r}")
    net, cfg, state = model_from_checkpoint(checkpoint, map_location=device)
    size = state.get("image_size") or [cfg.resize, cfg.resize]
    classes = state.get("classes") or [str(i) for i in range(state["num_classes"])]
    norm = state.get("normalization")
    results = []
    for path in images:
        X, inverted = image_tensor(open_image(path), state["in_channels"], size, invert,
                                   light_on_dark=cfg.dataset in LIGHT_ON_DARK)
        if norm:
            mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
            std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
            X = (X - mean) / std
        with torch.no_grad():
            logits = net(X.to(device))
            if cfg.tta:
                logits = (logits + net(torch.flip(X.to(device), dims=(-1,)))) / 2
            probs = torch.softmax(logits.float(), dim=1)[0].cpu()
        p, idx = probs.topk(min(topk, len(classes)))
        results.append({"image": str(path), "inverted": inverted,
                        "top": [(classes[i], float(q)) for q, i in zip(p.tolist(), idx.tolist())]})
    return results
