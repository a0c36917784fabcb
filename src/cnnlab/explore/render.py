"""Arrays to pictures for the explore views: colour maps, nearest-neighbour zoom, boxes, legends.

Everything here is numpy and Pillow on small arrays, so that a view answers quickly:
matplotlib is used only for its colour tables (no figure is drawn). Every picture
gets a legend strip that says what its colours mean.

Example:
    >>> import numpy as np
    >>> pic = colorize(np.array([[0.0, 1.0], [2.0, 3.0]]), "viridis")
    >>> pic.rgb.shape, pic.vmin, pic.vmax
    ((2, 2, 3), 0.0, 3.0)
    >>> zoom(pic.rgb, 4).shape
    (8, 8, 3)
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

# colours for highlights (RGB): the sliding window, the output cell, a receptive field
WINDOW = (255, 140, 0)
CELL = (220, 20, 60)
FIELD = (255, 40, 40)
PAD_GREY = 0.82  # where padding zeros sit, drawn lighter so that they read as "outside"


@dataclass
class Picture:
    """An RGB uint8 image and the value range its colour map spans."""

    rgb: np.ndarray  # H x W x 3, uint8
    vmin: float
    vmax: float
    cmap: str


def as_array(x: Any) -> np.ndarray:
    """A tensor or array as a float64 numpy array (on the CPU, detached)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def colorize(values: Any, cmap: str = "viridis", vmin: float | None = None,
             vmax: float | None = None, symmetric: bool = False) -> Picture:
    """Map a 2-D array to colours; ``symmetric`` centres the scale on 0 (for signed values).

    NaN cells (gaps in a mosaic) come out white.
    """
    from matplotlib import colormaps

    a = as_array(values)
    finite = a[np.isfinite(a)]
    lo = float(finite.min()) if vmin is None and finite.size else float(vmin or 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else float(vmax or 1.0)
    if symmetric:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    span = hi - lo if hi > lo else 1.0
    # 256 levels through a lookup table: as exact as the eye sees, and far quicker than
    # evaluating the colour map per pixel on a large mosaic
    lut = (colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    t = np.clip((np.nan_to_num(a, nan=lo) - lo) * (255.0 / span), 0.0, 255.0)
    rgb = lut[(t + 0.5).astype(np.uint8)]
    rgb[~np.isfinite(a)] = 255
    return Picture(rgb, lo, hi, cmap)


def zoom(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (pixels stay visible as squares)."""
    scale = max(int(scale), 1)
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def fit_scale(h: int, w: int, target: int = 280, most: int = 40) -> int:
    """The integer zoom that makes the longer side about ``target`` pixels."""
    return int(max(1, min(most, target // max(h, w, 1))))


def draw_box(rgb: np.ndarray, top: int, left: int, bottom: int, right: int,
             color: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """A rectangle outline over pixel rows top..bottom-1 and columns left..right-1 (clipped)."""
    h, w = rgb.shape[:2]
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, h), min(right, w)
    if bottom <= top or right <= left:
        return rgb
    c = np.array(color, dtype=np.uint8)
    rgb[top:min(top + width, bottom), left:right] = c
    rgb[max(bottom - width, top):bottom, left:right] = c
    rgb[top:bottom, left:min(left + width, right)] = c
    rgb[top:bottom, max(right - width, left):right] = c
    return rgb


def tint(rgb: np.ndarray, top: int, left: int, bottom: int, right: int,
         color: tuple[int, int, int], alpha: float = 0.35) -> np.ndarray:
    """Blend ``color`` into a rectangle (the input patch under the window)."""
    h, w = rgb.shape[:2]
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if bottom > top and right > left:
        region = rgb[top:bottom, left:right].astype(np.float32)
        rgb[top:bottom, left:right] = (region * (1 - alpha)
                                       + np.array(color, np.float32) * alpha).astype(np.uint8)
    return rgb


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def caption(rgb: np.ndarray, text: str, size: int = 13) -> np.ndarray:
    """A white strip with ``text`` above the picture."""
    from PIL import Image, ImageDraw

    w = max(rgb.shape[1], 8 * len(text) // 1)
    strip = Image.new("RGB", (w, size + 8), "white")
    ImageDraw.Draw(strip).text((3, 3), text, fill=(0, 0, 0), font=_font(size))
    body = np.full((rgb.shape[0], w, 3), 255, np.uint8)
    body[:, :rgb.shape[1]] = rgb
    return np.concatenate([np.asarray(strip), body], axis=0)


def legend(pic: Picture, label: str, width: int | None = None) -> np.ndarray:
    """The picture with a colour bar under it: the colours, their values and ``label``."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    w = max(width or pic.rgb.shape[1], 260)
    bar_w = w - 20
    ramp = (colormaps[pic.cmap](np.linspace(0, 1, bar_w))[:, :3] * 255).astype(np.uint8)
    lines = textwrap.wrap(label, max(bar_w // 7, 20))
    strip = Image.new("RGB", (w, 32 + 14 * len(lines)), "white")
    strip.paste(Image.fromarray(np.repeat(ramp[None], 10, axis=0)), (10, 4))
    draw = ImageDraw.Draw(strip)
    font = _font(12)
    draw.text((10, 16), _num(pic.vmin), fill=(0, 0, 0), font=font)
    hi = _num(pic.vmax)
    draw.text((w - 10 - 7 * len(hi), 16), hi, fill=(0, 0, 0), font=font)
    if pic.vmin < 0 < pic.vmax:
        x0 = 10 + int(bar_w * (0 - pic.vmin) / (pic.vmax - pic.vmin))
        draw.text((x0 - 3, 16), "0", fill=(0, 0, 0), font=font)
    for i, line in enumerate(lines):
        draw.text((10, 30 + 14 * i), line, fill=(60, 60, 60), font=font)
    body = np.full((pic.rgb.shape[0], w, 3), 255, np.uint8)
    body[:, :pic.rgb.shape[1]] = pic.rgb
    return np.concatenate([body, np.asarray(strip)], axis=0)


def _num(v: float) -> str:
    return f"{v:.3g}"


@dataclass
class Tile:
    """Where one map of a mosaic sits: channel, pixel origin and zoom."""

    channel: int
    top: int
    left: int
    scale: int
    h: int
    w: int


def mosaic(maps: np.ndarray, cmap: str = "viridis", symmetric: bool = False,
           width: int = 840, gap: int = 2) -> tuple[Picture, list[Tile]]:
    """All C maps (C x H x W) in a grid about ``width`` pixels wide, one colour scale for
    all, white between tiles; and where each channel sits.

    Example:
        >>> pic, tiles = mosaic(np.random.rand(6, 4, 4), width=100)
        >>> pic.rgb.shape, len(tiles), tiles[1].left
        ((102, 100, 3), 6, 34)
    """
    c, h, w = maps.shape
    scale = max(1, min(16, int(np.sqrt(width * width / (c * h * w * 1.6)))))
    tile_w = w * scale + gap
    cols = max(1, min(c, width // tile_w))
    rows = -(-c // cols)
    small = colorize(maps.reshape(c * h, w), cmap, symmetric=symmetric)  # colour, then zoom
    rgb = np.full((rows * (h * scale + gap), max(cols * tile_w, width), 3), 255, np.uint8)
    tiles = []
    for ch in range(c):
        r, q = divmod(ch, cols)
        top, left = r * (h * scale + gap), q * tile_w
        rgb[top:top + h * scale, left:left + w * scale] = zoom(small.rgb[ch * h:(ch + 1) * h],
                                                               scale)
        tiles.append(Tile(ch, top, left, scale, h, w))
    return Picture(rgb, small.vmin, small.vmax, cmap), tiles
