"""Image files as model inputs: the one loader of ``cnnlab predict``, ``viz`` and explore.

An image of any size, colour mode and bit depth is turned into what the model saw in
training: grey (L) or RGB to match its input channels, padded to a square with its
own background colour, resized to the training input size and scaled to [0, 1].
Fashion-MNIST and MNIST show light objects on a black background; a photo of a dark
object on a light background is inverted first (``invert="auto"``), or on request.

16-bit and 32-bit images (PNG, TIFF) are scaled to 8 bits, not clipped: a 16-bit
value ``v`` becomes ``v / 257``. The pixel limit applies to the image as decoded
and to the square it is padded to, so a long thin image (7,000,000 x 7) is refused
before any pixel is decoded.

Example:
    >>> from PIL import Image
    >>> X, inverted = image_tensor(Image.new("RGB", (40, 20), "white"), 1, (28, 28))
    >>> tuple(X.shape), inverted, float(X.max())
    ((1, 1, 28, 28), True, 0.0)
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError, ConfigError, DataError, DataNotFoundError

__all__ = ["MAX_PIXELS", "open_image", "image_tensor", "load_image"]

# Refuse larger images (decompression bombs, or photos far larger than any 28-224
# pixel input needs): 50 megapixels, counted for the padded square too.
MAX_PIXELS = 50_000_000


def _check_size(path: Path, w: int, h: int) -> None:
    side = max(w, h)  # image_tensor pads to a side x side square
    if w * h > MAX_PIXELS or side * side > MAX_PIXELS:
        limit = math.isqrt(MAX_PIXELS)
        raise DataError(f"image {path} has {w}x{h} pixels: too large (at most "
                        f"{MAX_PIXELS / 1e6:g} megapixels, each side at most {limit}, as it is "
                        "padded to a square); shrink it first")


def open_image(path: str | os.PathLike):
    """Open ``path`` with Pillow: regular files only, sizes checked before decoding.

    Returns the loaded PIL image (16-bit and float modes scaled to 8-bit grey).
    Raises :class:`DataNotFoundError` (a FileNotFoundError) for a missing file and
    :class:`DataError` for anything else: a folder, a FIFO, not an image, truncated,
    too large.
    """
    from PIL import Image, UnidentifiedImageError

    from cnnlab.guards import open_regular

    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"path must be an image file's path (str or pathlib.Path), got "
                          f"{type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an image; pass PNG or JPEG files")
    try:
        f = open_regular(path, "image", "pass PNG or JPEG files")
    except DataNotFoundError:
        raise DataNotFoundError(f"image {path} does not exist (no such image file); pass PNG "
                                "or JPEG files") from None
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(f)
            _check_size(path, *im.size)  # from the header: nothing decoded yet
            im.load()
    except CnnlabError:  # our own size check: already one clear line
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"image {path} is too large to open safely (decompression bomb "
                        "guard); shrink it first") from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not an image Pillow can read; pass PNG or JPEG files"
                        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise DataError(f"image {path} is truncated or unreadable "
                        f"({' '.join(str(e).split())[:100]}); pass PNG or JPEG files") from None
    return _to_8bit(im)


def _to_8bit(im):
    """16-bit, 32-bit and float images as 8-bit grey, scaled (Pillow's convert clips)."""
    import numpy as np
    from PIL import Image

    if not (im.mode.startswith("I") or im.mode == "F"):
        return im
    a = np.asarray(im, dtype=np.float64)
    finite = a[np.isfinite(a)]
    hi = float(finite.max()) if finite.size else 0.0
    lo = float(finite.min()) if finite.size else 0.0
    if im.mode.startswith("I;16") or (im.mode == "I" and 255 < hi <= 65535 and lo >= 0):
        scale, offset = 255 / 65535, 0.0
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        scale, offset = 255.0, 0.0
    elif lo >= 0 and hi <= 255:
        scale, offset = 1.0, 0.0
    else:  # some other range (signed, HDR floats): stretch it to 0..255
        scale, offset = 255 / (hi - lo) if hi > lo else 0.0, -lo
    a = np.nan_to_num((a + offset) * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def _median(values):
    """np.median over axis 0 (the mean of the two middle values for an even count),
    without np.median's import of numpy.ma, which costs a visible share of `cnnlab
    predict`'s start-up."""
    import numpy as np

    s = np.sort(np.asarray(values, dtype=np.float64), axis=0)
    n = s.shape[0]
    return (s[(n - 1) // 2] + s[n // 2]) / 2


def image_tensor(im, in_channels: int, size: Sequence[int], invert: str | bool = "auto",
                 light_on_dark: bool = True) -> tuple[torch.Tensor, bool]:
    """A PIL image as a float (1, C, H, W) batch in [0, 1]; returns (X, inverted).

    ``invert``: ``"auto"`` (invert a light background when the model was trained on
    light-on-dark images), ``True``/``"yes"`` or ``False``/``"no"``.
    """
    import numpy as np
    from PIL import Image, ImageOps

    if in_channels not in (1, 3):
        raise ConfigError(f"images can feed models with 1 or 3 input channels, not "
                          f"in_channels={in_channels}")
    from cnnlab.guards import check_int

    if not isinstance(size, Sequence) or len(size) != 2:
        raise ConfigError(f"size must be (height, width), got {size!r}")
    H, W = (check_int("size", s, most=8192) for s in size)
    im = _to_8bit(im)
    try:
        if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)  # transparent areas read as white paper
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, 1...: through RGB
        im = im.convert("L" if in_channels == 1 else "RGB")
    except (ValueError, OSError) as e:
        raise DataError(f"cannot convert an image of mode {im.mode} ({e}); save it as an "
                        "8-bit PNG or JPEG") from None
    grey = np.asarray(im.convert("L"), dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    light_background = float(_median(border)) > 127
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
        fill = tuple(int(v) for v in _median(
            np.asarray(im).reshape(h, w, -1)[[0, -1]].reshape(-1, len(im.getbands()))))
        square = Image.new(im.mode, (side, side), fill if len(fill) > 1 else fill[0])
        square.paste(im, ((side - w) // 2, (side - h) // 2))
        im = square
    im = im.resize((W, H), Image.Resampling.BILINEAR, reducing_gap=None)
    X = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()) / 255.0
    X = X.unsqueeze(0) if X.dim() == 2 else X.permute(2, 0, 1)
    return X.unsqueeze(0), do_invert


def load_image(path: str | os.PathLike, in_channels: int = 1,
               size: Sequence[int] = (28, 28), invert: bool | str = False) -> torch.Tensor:
    """An image file as a uint8 tensor C x H x W, as :func:`image_tensor` prepares it.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.new("RGB", (50, 40), "white").save(p)
        >>> load_image(p, 1, (28, 28)).shape
        torch.Size([1, 28, 28])
    """
    X, _ = image_tensor(open_image(path), in_channels, size, invert)
    return (X[0] * 255).round_().to(torch.uint8)
