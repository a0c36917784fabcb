"""Batched image transforms: resize and augmentation on whole (B, C, H, W) batches.

Everything here acts on a whole batch with a few tensor ops on the batch's own
device -- no per-sample Python loop. The random numbers (a few per sample) are
drawn on the batch's device from the generator passed in: with a generator on
that device (:func:`device_generator`) a GPU batch needs no copy from the host
and no host sync. The same seed gives the same augmentation on the same kind of
device (CUDA's generator is not the CPU's, so the two draw different numbers).

Example:
    >>> import torch
    >>> X = torch.rand(4, 1, 28, 28)
    >>> resize(X, (96, 96)).shape
    torch.Size([4, 1, 96, 96])
    >>> g = torch.Generator().manual_seed(0)
    >>> random_crop(X, 4, g).shape == X.shape
    True
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from cnnlab.data.names import AUGMENTS, parse_augment

__all__ = ["resize", "resize_uint8", "interpolation_matrix", "interpolation_band",
           "random_crop", "random_flip", "random_erase", "device_generator", "AUGMENTS",
           "parse_augment"]



@functools.lru_cache(maxsize=32)
def interpolation_matrix(n_in: int, n_out: int, device: str = "cpu") -> torch.Tensor:
    """The (n_out, n_in) matrix of 1-D bilinear resampling with antialiasing.

    Row i holds the weights of output pixel i: a triangle filter centred on
    (i + 0.5) * n_in / n_out (pixel centres, ``align_corners=False``), widened
    by the scale factor when shrinking so that every input pixel contributes --
    PIL's ``Image.BILINEAR`` and ``F.interpolate(antialias=True)``. Each row sums to 1.

    Example:
        >>> interpolation_matrix(2, 4)
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500],
                [0.2500, 0.7500],
                [0.0000, 1.0000]])
    """
    scale = n_in / n_out
    support = max(scale, 1.0)  # filter radius in input pixels
    centres = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale
    pixels = torch.arange(n_in, dtype=torch.float64) + 0.5
    weights = (1 - ((pixels[None, :] - centres[:, None]) / support).abs()).clamp(min=0)
    return (weights / weights.sum(1, keepdim=True)).to(torch.float32).to(device)


def resize(X: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a float batch (B, C, H, W) to ``size`` (H', W'), with antialiasing.

    d2l resizes each PIL image with ``transforms.Resize`` (PIL's bilinear filter,
    which widens its kernel when shrinking); torchvision's Resize on tensors runs
    ``F.interpolate(mode="bilinear", antialias=True)`` with the same weights.
    Being separable, the resize is two matrix products, ``Wy @ X @ Wx.T``, with
    the weights of :func:`interpolation_matrix`: equal to ``F.interpolate`` to
    float rounding (~1e-6) and to PIL within PIL's own uint8 rounding (1/255), but
    faster on CPU and GPU for these small images (measured in benchmarks/data.py).
    """
    h, w = X.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return X
    dev = str(X.device)
    out = X if w == W else torch.matmul(X, interpolation_matrix(w, W, dev).T)
    return out if h == H else torch.matmul(interpolation_matrix(h, H, dev), out)


@functools.lru_cache(maxsize=32)
def interpolation_band(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The nonzero band of :func:`interpolation_matrix`: (start int32 (n_out,), taps (n_out, K)).

    Output pixel i is ``sum_k taps[i, k] * input[start[i] + k]``; K is the widest
    row's band (2 when enlarging), shorter rows padded with zero weights.

    Example:
        >>> start, taps = interpolation_band(2, 4)
        >>> start.tolist(), taps.shape
        ([0, 0, 0, 0], torch.Size([4, 2]))
    """
    M = interpolation_matrix(n_in, n_out)
    nz = M != 0
    cols = torch.arange(n_in)
    first = torch.where(nz, cols, n_in).min(1).values
    last = torch.where(nz, cols, -1).max(1).values
    K = int((last - first).max()) + 1
    start = first.clamp(max=n_in - K)
    taps = M.gather(1, start[:, None] + torch.arange(K)[None, :])
    return start.to(torch.int32), taps.contiguous()


def resize_uint8(X: torch.Tensor, size: tuple[int, int], scale: float = 1 / 255,
                 shift: float = 0.0) -> torch.Tensor:
    """``resize(X.float() * scale + shift, size)`` for a uint8 batch, in one pass when it can.

    With cnnlab's native kernels (:mod:`cnnlab.native`, CPU) the conversion, the
    separable resize and the affine map run per image in cache and the float output
    is written once; otherwise it is :func:`resize` on the converted batch. Same
    values either way (to float rounding, ~1e-6; tested).

    Example:
        >>> X = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
        >>> Y = resize_uint8(X, (96, 96))
        >>> Y.shape, round(float(Y.min()), 6), round(float(Y.max()), 6)
        (torch.Size([2, 1, 96, 96]), 1.0, 1.0)
    """
    from cnnlab import native

    h, w = X.shape[-2:]
    H, W = size
    if (X.dim() != 4 or X.numel() == 0 or not native.available()
            or X.device.type != "cpu" or X.dtype != torch.uint8):
        out = X.to(torch.float32).mul_(scale)
        if shift:
            out.add_(shift)
        return resize(out, size)
    from cnnlab.native import ops  # the custom op checks every buffer before C sees it

    ys, wy = interpolation_band(h, H)
    xs, wx = interpolation_band(w, W)
    return ops.resample_u8(X, ys, wy, xs, wx, float(scale), float(shift))


def device_generator(device: str | torch.device, seed: int) -> torch.Generator:
    """A generator seeded with ``seed`` that lives on ``device`` (CUDA, MPS, ...).

    Augmentation drawn from it stays on the device: no host-to-device copy per
    batch. For the CPU (and devices without generators, such as ``meta``) it is
    a CPU generator.

    Example:
        >>> device_generator("cpu", 7).initial_seed(), device_generator("meta", 7).device
        (7, device(type='cpu'))
    """
    device = torch.device(device)
    if device.type not in ("cpu", "meta"):
        try:
            return torch.Generator(device=device).manual_seed(int(seed))
        except RuntimeError:  # a device type without its own generator
            pass
    return torch.Generator().manual_seed(int(seed))


def _draw_on(X: torch.Tensor, generator: torch.Generator) -> torch.device:
    # Draw on X's device when the generator lives there (no copy). A generator elsewhere
    # (a CPU one with a GPU batch) draws where it lives, and the numbers are copied.
    # meta tensors hold no values: any generator serves.
    g = generator.device
    if X.device.type == "meta" or (g.type == X.device.type
                                   and g.index in (None, X.device.index)):
        return X.device
    return generator.device


def random_crop(X: torch.Tensor, padding: int, generator: torch.Generator,
                padding_mode: str = "constant") -> torch.Tensor:
    """Pad every image by ``padding`` pixels, then crop each at its own random offset.

    The standard CIFAR-style augmentation (He et al., 2016, sec. 4.2). Offsets are
    drawn per sample; the crops are two ``gather`` calls over the padded batch.
    ``padding_mode``: ``"constant"`` (zeros) or ``"reflect"``.
    """
    if padding <= 0:
        return X
    B, C, H, W = X.shape
    if padding_mode == "constant":
        padded = F.pad(X, (padding,) * 4)
    else:  # reflect padding needs a float tensor
        padded = F.pad(X.float(), (padding,) * 4, mode=padding_mode).to(X.dtype)
    offsets = torch.randint(0, 2 * padding + 1, (2, B), generator=generator,
                            device=_draw_on(X, generator)).to(X.device)
    rows = (offsets[0].view(B, 1) + torch.arange(H, device=X.device)).view(B, 1, H, 1)
    cols = (offsets[1].view(B, 1) + torch.arange(W, device=X.device)).view(B, 1, 1, W)
    Wp = W + 2 * padding
    out = padded.gather(2, rows.expand(B, C, H, Wp))
    return out.gather(3, cols.expand(B, C, H, W))


def random_flip(X: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image left-right with probability ``p`` (drawn per sample)."""
    u = torch.rand(X.shape[0], generator=generator, device=_draw_on(X, generator))
    flip = u.to(X.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), X.flip(-1), X)


def random_erase(X: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                 scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> torch.Tensor:
    """Random erasing (Zhong et al., 2017): blank one random rectangle per image.

    With probability ``p`` per image, a rectangle covering a ``scale`` fraction of
    the area with aspect ratio in ``ratio`` (log-uniform) is set to ``value``. The
    rectangles are boolean masks built by broadcasting, one per sample.
    """
    B, _, H, W = X.shape
    u = torch.rand(5, B, generator=generator, device=_draw_on(X, generator)).to(X.device)
    area = (scale[0] + (scale[1] - scale[0]) * u[0]) * H * W
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1]
    aspect = torch.exp(log_r)
    h = torch.sqrt(area * aspect).round().clamp(1, H)
    w = torch.sqrt(area / aspect).round().clamp(1, W)
    top = ((H - h + 1) * u[2]).floor()
    left = ((W - w + 1) * u[3]).floor()
    apply = u[4] < p
    dev = X.device
    ys = torch.arange(H, device=dev).view(1, H, 1)
    xs = torch.arange(W, device=dev).view(1, 1, W)
    inside = ((ys >= top.view(B, 1, 1)) & (ys < (top + h).view(B, 1, 1))
              & (xs >= left.view(B, 1, 1)) & (xs < (left + w).view(B, 1, 1))
              & apply.view(B, 1, 1))
    return X.masked_fill(inside.unsqueeze(1), value)
