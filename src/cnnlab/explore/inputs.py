"""Where the explore views get images: a test image, a drawing, an upload.

Uploads and drawings are opened and prepared by :mod:`cnnlab.data.images` (the
same code as ``cnnlab predict``: Pillow's decompression-bomb guard, transparent
areas as white paper, a dark-on-light drawing inverted to Fashion-MNIST's light on
black, padded to a square, resized); uploads are also capped here in bytes and
pixels before anything decodes them.

Example:
    >>> pil, invert, what = dataset_image("synthetic", 0)
    >>> pil.size, invert
    ((28, 28), 'no')
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch

from cnnlab.errors import ConfigError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # an upload larger than this is refused unread
MAX_UPLOAD_PIXELS = 16_000_000  # and one with more pixels than this is refused undecoded
SOURCES = ("test image", "drawing", "upload")


@functools.lru_cache(maxsize=2)
def dataset(name: str = "fashion-mnist"):
    """The dataset's images in memory (never downloads); synthetic shapes if it is absent."""
    from cnnlab.data import is_available, load_dataset

    if name != "synthetic" and not is_available(name):
        name = "synthetic"
    return load_dataset(name, download=False)


def dataset_image(name: str, index: int):
    """Test image ``index`` as a PIL image, the invert mode it needs ('no') and a caption."""
    from PIL import Image

    ds = dataset(name)
    n = len(ds.test_images)
    index = int(index)
    if not 0 <= index < n:
        raise ConfigError(f"test image index must be in 0..{n - 1}, got {index}")
    X = ds.test_images[index]
    arr = X[0].numpy() if X.shape[0] == 1 else X.permute(1, 2, 0).numpy()
    label = ds.classes[int(ds.test_labels[index])]
    return Image.fromarray(arr), "no", f"{ds.name} test image {index}: {label}"


def drawing_image(value: Any):
    """The sketchpad's picture (its composite layer) as a PIL image, 'auto' invert."""
    from PIL import Image

    if isinstance(value, dict):
        value = value.get("composite")
    if value is None:
        raise ConfigError("the drawing is empty; draw a shape with the mouse first")
    if isinstance(value, (str, os.PathLike)):
        return upload_image(value)
    arr = np.asarray(value)
    if arr.ndim == 3 and arr.shape[2] == 4 and not arr[..., 3].any():
        raise ConfigError("the drawing is empty; draw a shape with the mouse first")
    if arr.ndim == 2 and not arr.any():
        raise ConfigError("the drawing is empty; draw a shape with the mouse first")
    return Image.fromarray(arr.astype(np.uint8)), "auto", "your drawing"


def upload_image(path: Any):
    """An uploaded file, capped in bytes and pixels, opened by cnnlab.data.images."""
    from PIL import Image

    from cnnlab.data.images import open_image

    if path is None:
        raise ConfigError("no image uploaded yet; drop a PNG or JPEG file on the upload box")
    path = str(path)
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise ConfigError(f"the upload has {size / 2**20:.1f} MiB; images up to "
                          f"{MAX_UPLOAD_BYTES // 2**20} MiB are accepted")
    try:
        with Image.open(path) as probe:  # reads the header only
            w, h = probe.size
    except Exception:  # noqa: BLE001 - open_image below says what is wrong in one line
        w = h = 0
    if w * h > MAX_UPLOAD_PIXELS:
        raise ConfigError(f"the upload has {w}x{h} pixels; images up to "
                          f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels are accepted")
    return open_image(path), "auto", f"upload {os.path.basename(path)}"


def pick(source: str, dataset_name: str, index: int, drawing: Any, upload: Any):
    """(PIL image, invert mode, caption) for the chosen ``source``."""
    if source == "drawing":
        return drawing_image(drawing)
    if source == "upload":
        return upload_image(upload)
    return dataset_image(dataset_name, index)


def grey_input(pil, size: int, invert: str = "auto") -> torch.Tensor:
    """The picture as an ``size`` x ``size`` grey tensor in [0, 1] (light object on black)."""
    from cnnlab.data.images import image_tensor

    X, _ = image_tensor(pil, 1, (size, size), invert)
    return X[0, 0]
