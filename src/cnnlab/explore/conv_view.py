"""The Convolution view (d2l 7.2-7.5): one image, one kernel, the output and its arithmetic.

The output map comes from :func:`cnnlab.ops.conv2d` and the pooling from
:func:`cnnlab.ops.max_pool2d` / :func:`cnnlab.ops.avg_pool2d`; the size formulas,
filled in per dimension, from :func:`cnnlab.shapes.explain`. This module only picks
the window to highlight and turns the numbers into pictures.

Example:
    >>> import torch
    >>> r = convolve(torch.zeros(8, 8), torch.ones(3, 5), padding=(0, 1), stride=(3, 4))
    >>> tuple(r.output.shape), r.size_text
    ((2, 2), '2x2')
    >>> w = window(r, 3)
    >>> (w.row, w.col, w.rows, w.cols)
    (1, 1, [3, 4, 5], [3, 4, 5, 6, 7])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab import ops
from cnnlab.errors import ConfigError
from cnnlab.explore import render
from cnnlab.shapes import ShapeExplanation, explain

# the book's kernels (d2l 7.2 and its exercises) and the classic image filters
KERNELS: dict[str, list[list[float]]] = {
    "edge [1, -1] (7.2)": [[1, -1]],
    "edge, transposed [[1], [-1]]": [[1], [-1]],
    "blur: box 3x3": [[1 / 9] * 3] * 3,
    "blur: Gaussian 3x3": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16],
                           [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "second derivative [1, -2, 1]": [[1, -2, 1]],
    "Laplacian (2-D second derivative)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "editable 3x3": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "editable 5x5": [[0] * 5, [0] * 5, [0, 0, 1, 0, 0], [0] * 5, [0] * 5],
}
MAX_KERNEL = 9  # largest kernel side the grid accepts
MAX_INPUT = 64  # largest input side: the step view draws every pixel


def parse_kernel(rows) -> torch.Tensor:
    """The editable grid (a list of rows, a DataFrame or an array) as a float kernel.

    Empty cells count as 0; anything else that is not a number is a ConfigError.

    Example:
        >>> parse_kernel([["1", ""], [0.5, "-2"]])
        tensor([[ 1.0000,  0.0000],
                [ 0.5000, -2.0000]])
    """
    if hasattr(rows, "values") and not isinstance(rows, (list, dict)):
        rows = rows.values.tolist()  # pandas DataFrame
    rows = [list(r) for r in rows] if rows is not None else []
    rows = [r for r in rows if any(str(v).strip() not in ("", "nan", "None") for v in r)]
    if not rows or not rows[0]:
        raise ConfigError("the kernel grid is empty; pick a preset or type numbers in it")
    width = max(len(r) for r in rows)
    if len(rows) > MAX_KERNEL or width > MAX_KERNEL:
        raise ConfigError(f"kernels up to {MAX_KERNEL}x{MAX_KERNEL} are shown; "
                          f"got {len(rows)}x{width}")
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            text = str(v).strip()
            if text in ("", "nan", "None"):
                continue
            try:
                out[i, j] = float(text)
            except ValueError:
                raise ConfigError(f"kernel cell ({i}, {j}) is {text!r}, not a number") from None
    if not torch.isfinite(out).all():
        raise ConfigError("kernel cells must be finite numbers")
    return out


def resize_kernel(kernel: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """The kernel cropped or zero-padded (bottom/right) to ``kh`` x ``kw``."""
    if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL):
        raise ConfigError(f"kernel height and width must be in 1..{MAX_KERNEL}")
    out = torch.zeros(kh, kw)
    h, w = min(kh, kernel.shape[0]), min(kw, kernel.shape[1])
    out[:h, :w] = kernel[:h, :w]
    return out


@dataclass
class ConvResult:
    """The input, kernel and output of one convolution, and its size arithmetic."""

    image: torch.Tensor  # H x W
    kernel: torch.Tensor  # kh x kw
    output: torch.Tensor  # OH x OW
    explanation: ShapeExplanation
    padding: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def size_text(self) -> str:
        return "x".join(str(v) for v in self.explanation.output_size)


def convolve(image: torch.Tensor, kernel: torch.Tensor, padding=(0, 0), stride=(1, 1),
             dilation=(1, 1)) -> ConvResult:
    """Cross-correlate one grey image with one kernel (cnnlab.ops.conv2d)."""
    p, s, d = (tuple(int(v) for v in x) for x in (padding, stride, dilation))
    expl = explain(tuple(image.shape), tuple(kernel.shape), padding=p, stride=s, dilation=d)
    Y = ops.conv2d(image.float()[None, None], kernel.float()[None, None], stride=s,
                   padding=p, dilation=d)[0, 0]
    return ConvResult(image, kernel, Y, expl, p, s, d)  # type: ignore[arg-type]


def pool(Y: torch.Tensor, mode: str, size: int, stride: int) -> tuple[torch.Tensor, str]:
    """Max or average pooling of the output map, with its size formula filled in."""
    if mode not in ("max", "avg"):
        raise ConfigError(f"pooling must be max or avg, got {mode!r}")
    expl = explain(tuple(Y.shape), size, stride=stride)
    fn = ops.max_pool2d if mode == "max" else ops.avg_pool2d
    out = fn(Y[None, None], size, stride=stride)[0, 0]
    return out, str(expl)


@dataclass
class Window:
    """Output cell (row, col) and the input rows/cols its kernel taps read (unpadded
    coordinates: negative or >= H means a padding zero)."""

    index: int
    row: int
    col: int
    rows: list[int]
    cols: list[int]
    patch: torch.Tensor  # kh x kw values under the taps (padding = 0)
    value: float  # the output cell


def window(result: ConvResult, index: int) -> Window:
    """The window of output cell ``index`` (row-major, wraps around the output)."""
    oh, ow = result.output.shape
    index = int(index) % (oh * ow)
    i, j = divmod(index, ow)
    (ph, pw), (sh, sw), (dh, dw) = result.padding, result.stride, result.dilation
    kh, kw = result.kernel.shape
    rows = [i * sh - ph + t * dh for t in range(kh)]
    cols = [j * sw - pw + t * dw for t in range(kw)]
    H, W = result.image.shape
    patch = torch.zeros(kh, kw)
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            if 0 <= r < H and 0 <= c < W:
                patch[a, b] = result.image[r, c]
    return Window(index, i, j, rows, cols, patch, float(result.output[i, j]))


def window_sum_text(result: ConvResult, w: Window, most: int = 9) -> str:
    """``Y[i, j] = sum(patch * K) = x*k + ... = v`` (the first ``most`` products)."""
    terms = [f"{float(x):.2f}*{float(k):.2f}" for x, k in
             zip(w.patch.flatten().tolist(), result.kernel.flatten().tolist())]
    shown = " + ".join(terms[:most]) + (f" + ... ({len(terms) - most} more)"
                                         if len(terms) > most else "")
    return f"`Y[{w.row}, {w.col}] = {shown} = {w.value:.4g}`"


def formula_text(result: ConvResult) -> str:
    """The output size, then the formula filled in per dimension (markdown)."""
    e = result.explanation
    lines = [f"**output: {e.output_size[0]} × {e.output_size[1]}** ({result.size_text})", ""]
    lines += [f"- `{d}`" for d in e.dims]
    lines.append("")
    lines.append("per dimension: floor((n + 2p − d(k−1) − 1)/s) + 1 (d2l 7.3)")
    return "\n".join(lines)


def step_pictures(result: ConvResult, w: Window, target: int = 300
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The padded input with the window's taps tinted, and the output with the cell boxed."""
    (ph, pw) = result.padding
    H, W = result.image.shape
    padded = np.full((H + 2 * ph, W + 2 * pw), np.nan)
    img = render.as_array(result.image)
    padded[ph:ph + H, pw:pw + W] = img
    lo, hi = float(np.min(img)), float(np.max(img))
    pic = render.colorize(padded, "gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    pic.rgb[np.isnan(padded)] = int(255 * render.PAD_GREY)
    s = render.fit_scale(*padded.shape, target=target)
    rgb = render.zoom(pic.rgb, s)
    for r in w.rows:
        for c in w.cols:
            y, x = (r + ph) * s, (c + pw) * s
            render.tint(rgb, y, x, y + s, x + s, render.WINDOW, alpha=0.55)
    top, left = (w.rows[0] + ph) * s, (w.cols[0] + pw) * s
    render.draw_box(rgb, top, left, (w.rows[-1] + ph + 1) * s, (w.cols[-1] + pw + 1) * s,
                    render.WINDOW, width=max(1, s // 6))
    pic.rgb = rgb
    inp = render.legend(pic, "input pixel value (grey); light grey border = padding zeros; "
                        "orange = the window's taps")
    out = output_picture(result.output, target, cell=(w.row, w.col))
    return inp, out


def output_picture(Y: torch.Tensor, target: int = 300, cell: tuple[int, int] | None = None,
                   label: str = "output value: blue < 0 < red") -> np.ndarray:
    """A signed map in red/blue around 0, optionally with one cell boxed."""
    pic = render.colorize(Y, "RdBu_r", symmetric=True)
    s = render.fit_scale(*Y.shape, target=target)
    pic.rgb = render.zoom(pic.rgb, s)
    if cell is not None:
        i, j = cell
        render.draw_box(pic.rgb, i * s, j * s, (i + 1) * s, (j + 1) * s, render.CELL,
                        width=max(2, s // 6))
    return render.legend(pic, label + ("; crimson box = this step's cell" if cell else ""))


def kernel_picture(K: torch.Tensor, target: int = 160) -> np.ndarray:
    pic = render.colorize(K, "RdBu_r", symmetric=True)
    pic.rgb = render.zoom(pic.rgb, render.fit_scale(*K.shape, target=target))
    return render.legend(pic, "kernel weight: blue < 0 < red")


# ------------------------------------------------------------------ 1x1 convolution (7.4)

def one_by_one(image: torch.Tensor, weights) -> dict:
    """A 1x1 convolution over c_i channels made from ``image`` is one matrix product.

    The channels are the image, its mirror and its negative (c_i = 3); ``weights`` is
    c_o x 3. Computes the output with :func:`cnnlab.ops.conv2d` and with
    :func:`cnnlab.ops.corr2d_multi_in_out_1x1` (K reshaped to c_o x c_i times X reshaped
    to c_i x hw) and returns both with their largest difference.

    Example:
        >>> r = one_by_one(torch.rand(6, 6), [[1, 0, 0], [0.5, 0.5, 0]])
        >>> tuple(r["conv"].shape), r["max_diff"] < 1e-6
        ((2, 6, 6), True)
    """
    K = parse_kernel(weights)
    if K.shape[1] != 3:
        raise ConfigError(f"the 1x1 kernel needs 3 columns (one per input channel), got "
                          f"{K.shape[1]}")
    img = image.float()
    X = torch.stack([img, img.flip(-1), -img])
    W4 = K.reshape(K.shape[0], 3, 1, 1)
    conv = ops.conv2d(X[None], W4)[0]
    mat = ops.corr2d_multi_in_out_1x1(X, W4)
    return {"X": X, "K": K, "conv": conv, "matmul": mat,
            "max_diff": float((conv - mat).abs().max())}
