"""`cnnlab predict`: classify image files with a trained checkpoint.

Each image goes through :mod:`cnnlab.data.images` (the one image loader: any size,
colour mode and bit depth, padded to a square, resized, inverted when its
background is light), then is standardised like the training data.

Example:
    >>> from PIL import Image
    >>> X, inverted = image_tensor(Image.new("RGB", (40, 20), "white"), 1, (28, 28))
    >>> tuple(X.shape), inverted, float(X.max())
    ((1, 1, 28, 28), True, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.images import MAX_PIXELS, image_tensor, open_image  # noqa: F401 - re-exported
from cnnlab.data.names import DATASET_NAMES
from cnnlab.errors import ConfigError

LIGHT_ON_DARK = DATASET_NAMES  # every built-in set draws light objects on black


def predict_files(checkpoint: str | Path, images: Sequence[str | Path], topk: int = 3,
                  invert: str = "auto", device: str = "cpu") -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    from cnnlab.guards import check_int
    from cnnlab.train.checkpoint import model_from_checkpoint

    topk = check_int("topk", topk, most=1000)
    if invert not in ("auto", "yes", "no"):
        raise ConfigError(f"invert must be auto, yes or no; got {invert!r}")
    from cnnlab.train.steps import pick_device

    device = pick_device(device)  # a GPU that is not there: say so, before reading the file
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
