"""Fast CPU training kernels for small-channel convolutions and 2x2 average pooling.

Why this exists (measured, see benchmarks/results/lenet.md): for LeNet's tiny
channel counts (1 -> 6 -> 16) oneDNN's convolution *backward* spends most of a
training step; its weight gradient for a one-channel input is ~8x slower than
the same arithmetic written as one matrix product. These autograd Functions keep
the forward arithmetic of ``nn.Conv2d``/``nn.AvgPool2d`` and route the gradients
through shapes that BLAS and oneDNN handle well:

* small stride-1 convolutions: the forward is the library convolution; the
  weight gradient is a convolution of the input with the output gradient (batch
  treated as channels), the input gradient is a transposed convolution. (With
  :mod:`cnnlab.native` built, one-input-channel layers use
  :mod:`cnnlab.accel.smallconv` instead.)
* 2x2/stride-2 average pooling: two reshaped pairwise sums forward, a broadcast
  backward; it keeps whatever memory layout it is given.

Every result is a normal (B, C, H, W) tensor; only its strides may differ, which
element-wise layers (sigmoid, ReLU) preserve.

Example:
    >>> import torch
    >>> from cnnlab.accel.kernels import conv2d_fast, avg_pool2d_fast
    >>> X = torch.rand(4, 1, 28, 28)
    >>> W, b = torch.randn(6, 1, 5, 5), torch.zeros(6)
    >>> ref = torch.nn.functional.conv2d(X, W, b, padding=2)
    >>> bool(torch.allclose(conv2d_fast(X, W, b, padding=2), ref, atol=1e-5))
    True
    >>> avg_pool2d_fast(ref).shape
    torch.Size([4, 6, 14, 14])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["avg_pool2d_fast", "conv2d_fast", "conv_supported"]


def _is_cnhw(X: torch.Tensor) -> bool:
    """True when X (B, C, H, W) is stored channel-major, i.e. X.transpose(0, 1) is contiguous."""
    return X.size(0) > 1 and X.size(1) > 1 and X.transpose(0, 1).is_contiguous()


def _as_cnhw(X: torch.Tensor) -> torch.Tensor:
    """X (B, C, H, W) as a contiguous (C, B, H, W) tensor (free when already channel-major)."""
    return X.transpose(0, 1).contiguous()


def conv_supported(X: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int],
                   dilation: tuple[int, int], groups: int) -> bool:
    """Whether :func:`conv2d_fast` handles this call (else use the library convolution)."""
    return (X.dim() == 4 and X.dtype == torch.float32 and X.device.type == "cpu"
            and weight.dtype == torch.float32 and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1
            and not torch.is_autocast_enabled("cpu"))


class _SmallConv(torch.autograd.Function):
    """Stride-1 convolution whose backward avoids oneDNN's slow small-channel kernels."""

    @staticmethod
    def forward(ctx, X, weight, bias, padding):
        ctx.save_for_backward(X, weight)
        ctx.has_bias = bias is not None
        ctx.padding = padding
        return F.conv2d(X.contiguous(), weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad_Y):
        X, weight = ctx.saved_tensors
        grad_X = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            # d/dX of a stride-1 correlation is the transposed convolution of the gradient.
            grad_X = F.conv_transpose2d(grad_Y.contiguous(), weight, padding=ctx.padding)
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        if ctx.needs_input_grad[1] or need_b:
            G = _as_cnhw(grad_Y)  # (C_out, B, Ho, Wo): rows of the weight/bias gradients
        if ctx.needs_input_grad[1]:
            # dW[o, i, u, v] = sum_b sum_yx Xpad[b, i, y+u, x+v] G[b, o, y, x]: a correlation
            # of X with G in which the batch plays the channels' role (C_in images of B
            # channels, C_out kernels of B channels) -> (C_in, C_out, kh, kw).
            grad_W = F.conv2d(_as_cnhw(X), G, padding=ctx.padding).transpose(0, 1)
        if need_b:
            # a row sum of the channel-major copy: 4x faster here than grad_Y.sum((0, 2, 3))
            grad_b = G.view(G.size(0), -1).sum(1)
        return grad_X, grad_W, grad_b, None


def conv2d_fast(X: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                padding: int | tuple[int, int] = 0) -> torch.Tensor:
    """Stride-1, dilation-1, ungrouped ``F.conv2d`` with fast small-channel gradients.

    Same values and gradients as ``F.conv2d(X, weight, bias, padding=padding)``
    (float32 rounding aside); the result may be stored channel-major.
    """
    pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return _SmallConv.apply(X, weight, bias, pad)


class _AvgPool2x2(torch.autograd.Function):
    """Non-overlapping average pooling (kernel = stride, no padding, floor mode)."""

    @staticmethod
    def forward(ctx, X, k):
        B, C, H, W = X.shape
        Ho, Wo = H // k, W // k
        cnhw = _is_cnhw(X)
        D = X.transpose(0, 1) if cnhw else X  # the dense order of the memory
        if (Ho * k, Wo * k) != (H, W):
            D = D[:, :, : Ho * k, : Wo * k]
        D = D.contiguous()
        N = D.size(0) * D.size(1)
        # Sum the k rows of every window, then the k columns: two cheap passes.
        rows = D.view(N * Ho, k, Wo, k).sum(1) if k != 2 else (
            D.view(N * Ho, 2, Wo * 2)[:, 0] + D.view(N * Ho, 2, Wo * 2)[:, 1])
        out = rows.view(N * Ho * Wo, k).sum(1) if k != 2 else (
            rows.view(N * Ho * Wo, 2)[:, 0] + rows.view(N * Ho * Wo, 2)[:, 1])
        out = out.mul_(1.0 / (k * k)).view(D.size(0), D.size(1), Ho, Wo)
        ctx.meta = (k, H, W, cnhw)
        return out.transpose(0, 1) if cnhw else out

    @staticmethod
    def backward(ctx, grad_out):
        k, H, W, cnhw = ctx.meta
        # Work in the input's memory order so the result has the input's layout.
        G = (grad_out.transpose(0, 1) if cnhw else grad_out).contiguous() * (1.0 / (k * k))
        A, Bd, Ho, Wo = G.shape
        # Every input pixel of a window receives 1/k^2 of the window's gradient: k*k
        # strided writes of G are cheaper than one broadcast copy whose inner run is k.
        grad = G.new_empty(A, Bd, Ho, k, Wo, k)
        for i in range(k):
            for j in range(k):
                grad[:, :, :, i, :, j] = G
        grad = grad.view(A, Bd, Ho * k, Wo * k)
        if (Ho * k, Wo * k) != (H, W):
            grad = F.pad(grad, (0, W - Wo * k, 0, H - Ho * k))
        return (grad.transpose(0, 1) if cnhw else grad), None


def avg_pool2d_fast(X: torch.Tensor, kernel_size: int = 2) -> torch.Tensor:
    """``F.avg_pool2d(X, kernel_size)`` (stride = kernel, no padding) keeping X's layout."""
    return _AvgPool2x2.apply(X, int(kernel_size))
