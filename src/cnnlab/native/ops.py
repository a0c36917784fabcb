"""The native kernels as PyTorch custom ops (``torch.ops.cnnlab.*``): the only way into C.

Each op is a custom op of the ``torch.library`` API with a schema, a CPU kernel, a
fake kernel (shapes and strides without computing, for ``torch.compile``,
``torch.export`` and the ``meta`` device) and, where training needs one, an autograd
kernel (an ``autograd.Function`` calling the op and its backward op), so a compiled
model traces through them without a graph break. The CPU implementations make
their inputs contiguous in the layout the C code reads, and :func:`_ptr` -- the one
place an address is taken -- checks device, dtype, contiguity and shape of every
buffer before it goes to C. An op whose library is missing (``cnnlab.native.status()``
says why) or whose kernel declines (sizes it does not take, no AVX2, out of memory)
computes the same result with PyTorch. Callers decide with :func:`accepts` (the same
device and dtype rules) whether to call an op at all; anything it refuses takes the
caller's PyTorch path.

Ops (float32 unless said):

* ``resample_u8(src uint8 (B, C, h, w), ys, wy, xs, wx, scale, shift)``: separable
  resize of uint8 images to float, ``scale * x + shift`` (the bands of
  :func:`cnnlab.data.transforms.interpolation_band`); no gradient (integer input).
* ``sigmoid_avg_pool2d(Z, k) -> (P, S)``: ``avg_pool2d(sigmoid(Z), k)`` and the
  sigmoid itself (kept for the backward, as ``torch.sigmoid`` keeps its output); NCHW
  or NHWC, returned in Z's layout. Gradient: ``sigmoid_avg_pool2d_backward``.
* ``conv2d_small(X, weight, bias, padding)``: a stride-1 convolution, NHWC result;
  native for one input channel (else oneDNN). Gradient: ``conv2d_small_backward``
  (input, weight and bias gradients; native where the sizes allow).

Example:
    >>> import torch
    >>> from cnnlab.native import ops
    >>> Z = torch.randn(2, 6, 8, 8)
    >>> P, S = ops.sigmoid_avg_pool2d(Z, 2)
    >>> bool(torch.allclose(P, torch.nn.functional.avg_pool2d(torch.sigmoid(Z), 2), atol=1e-6))
    True
    >>> ops.accepts(Z.to("meta"))  # only CPU float32 memory goes to C
    False
"""

# typing's Optional/Tuple, as in the signatures the ops' schemas spell out (torch 2.4's
# forms); no `from __future__ import annotations` needed either way.
# ruff: noqa: UP006, UP035, UP045
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnlab import native

__all__ = ["accepts", "refusal", "resample_u8", "sigmoid_avg_pool2d",
           "sigmoid_avg_pool2d_backward", "conv2d_small", "conv2d_small_backward", "OPS"]

CL = torch.channels_last
_INT_MAX = 2**31 - 1  # the C side's int arguments

# The ops are registered with torch.library's low-level API (define, impl, register_fake;
# the autograd kernels below): to the dispatcher, torch.compile and opcheck they are the
# same custom ops ``torch.library.custom_op`` makes, without its per-call Python layers
# (argument defaults, alias and out checks, a torch._dynamo.disable frame, a generic
# autograd wrapper), which cost more than a LeNet-sized kernel takes (BENCHMARKS.md,
# "boundary"). The namespace is the top-level package's name: "cnnlab" (a renamed copy,
# as benchmarks/lenet_step.py --before makes, registers its own).
_NS = __name__.split(".")[0]
_LIB = torch.library.Library(_NS, "DEF")


def _op(schema: str, cpu, fake) -> "torch._ops.OpOverload":
    """Define ``_NS::schema``, its CPU kernel and its fake kernel; the op's overload."""
    name = schema.split("(", 1)[0]
    _LIB.define(schema)
    _LIB.impl(name, cpu, "CPU")
    torch.library.register_fake(f"{_NS}::{name}", fake, lib=_LIB)
    return getattr(getattr(torch.ops, _NS), name).default


def _autograd(op: "torch._ops.OpOverload", fn: type) -> None:
    """Register the autograd.Function ``fn`` as ``op``'s autograd kernel. Its forward calls
    the op below the autograd keys (``_AutoDispatchBelowAutograd``: the CPU, meta or fake
    kernel, never this one again), so ``torch.compile`` traces the same Function."""
    _LIB.impl(op.__name__.split(".")[0], fn.apply, "Autograd")


# ------------------------------------------------------------------ the one check
def refusal(t: Tensor, dtype: torch.dtype = torch.float32) -> Optional[str]:
    """Why ``t`` cannot go to the C kernels as ``dtype``, or None when it can (once
    made contiguous): a dense CPU tensor of that dtype, every size within C's int."""
    if t.is_cpu and t.dtype == dtype and t.layout == torch.strided and t.numel() <= _INT_MAX:
        return None  # the common case, in a few attribute reads (it runs every step)
    if t.device.type != "cpu":
        return f"is on {t.device}, not the CPU"
    if t.dtype != dtype:
        return f"is {t.dtype}, not {dtype}"
    if t.layout != torch.strided:
        return f"has layout {t.layout}, not a dense (strided) tensor"
    if t.dim() and max(t.shape) > _INT_MAX:
        return f"has a side over {_INT_MAX}"
    return None


def accepts(*tensors: Optional[Tensor], dtype: torch.dtype = torch.float32) -> bool:
    """Whether every given tensor (None: skipped) may go to the ops' C kernels."""
    return all(t is None or refusal(t, dtype) is None for t in tensors)


def _one_device(what: str, first: Tensor, *tensors: Optional[Tensor]) -> None:
    """A clear error for arguments on different devices (e.g. a CPU batch with GPU weights;
    PyTorch's CPU kernels would read a meta tensor's memory as if it were there)."""
    device = first.device
    if any(t is not None and t.device != device for t in tensors):
        devices = {t.device for t in (first, *tensors) if t is not None}
        raise ValueError(f"cnnlab.native.{what}: arguments on different devices "
                         f"({', '.join(sorted(map(str, devices)))}); move the model and the "
                         "batch to one device")


def _ptr(t: Tensor, dtype: torch.dtype, shape: tuple, what: str,
         memory_format: torch.memory_format = torch.contiguous_format) -> int:
    """The address of ``t``'s first element for a C argument, after checking that ``t`` is
    a CPU tensor of ``dtype`` and ``shape`` stored contiguously in ``memory_format``
    (so the C code's index arithmetic stays inside it). The caller keeps ``t`` alive
    for the call. Anything else is a ValueError, never an address."""
    why = refusal(t, dtype)
    if why is None and t.shape != shape:
        why = f"has shape {tuple(t.shape)} where the kernel expects {tuple(shape)}"
    if why is None and not t.is_contiguous(memory_format=memory_format):
        why = f"is not contiguous in {memory_format}"
    if why is None and t.numel() == 0:
        why = "is empty"
    if why is not None:
        raise ValueError(f"cnnlab.native: {what} {why}; the C kernels take contiguous CPU "
                         f"{dtype} tensors only")
    return t.data_ptr()


def _cl(t: Tensor) -> Tensor:
    """``t`` (B, C, H, W) with exactly the strides ``torch.empty(..., channels_last)``
    gives (``.contiguous(channels_last)`` keeps other strides where a side is 1)."""
    B, C, H, W = t.shape
    if t.stride() == (H * W * C, 1, W * C, C):
        return t
    return torch.empty(t.shape, dtype=t.dtype, device=t.device, memory_format=CL).copy_(t)


# -------------------------------------------------------------------- resample_u8
def _band_ok(start: Tensor, taps: Tensor, n_in: int, what: str) -> None:
    if start.dim() != 1 or taps.dim() != 2 or taps.shape[0] != start.shape[0] \
            or taps.shape[1] < 1 or start.shape[0] < 1:
        raise ValueError(f"cnnlab.native.resample_u8: {what}: a band (n_out,) and taps "
                         f"(n_out, K) were expected, got {tuple(start.shape)} and "
                         f"{tuple(taps.shape)}")
    if int(start.min()) < 0 or int(start.max()) + taps.shape[1] > n_in:
        raise ValueError(f"cnnlab.native.resample_u8: {what}: band outside the input's "
                         f"{n_in} pixels")


def _dense(start: Tensor, taps: Tensor, n_in: int) -> Tensor:
    """The (n_out, n_in) resampling matrix of a band."""
    idx = start.long()[:, None] + torch.arange(taps.shape[1])
    return taps.new_zeros(taps.shape[0], n_in).scatter_(1, idx, taps)


def _resample_u8_cpu(src: Tensor, ys: Tensor, wy: Tensor, xs: Tensor, wx: Tensor, scale: float,
                shift: float) -> Tensor:
    """``scale * resize(src) + shift`` of uint8 images (B, C, h, w) to float (B, C, H, W),
    H and W the bands' lengths."""
    if src.dim() != 4:
        raise ValueError(f"cnnlab.native.resample_u8: src must be (B, C, H, W), got "
                         f"{tuple(src.shape)}")
    _one_device("resample_u8", src, ys, wy, xs, wx)
    B, C, h, w = src.shape
    _band_ok(ys, wy, h, "rows")
    _band_ok(xs, wx, w, "columns")
    H, W, ky, kx = ys.shape[0], xs.shape[0], wy.shape[1], wx.shape[1]
    out = torch.empty(B, C, H, W)
    lib = native.load()
    if lib is not None and out.numel() and accepts(src, dtype=torch.uint8) \
            and accepts(ys, xs, dtype=torch.int32) and accepts(wy, wx):
        src, ys, xs = src.contiguous(), ys.contiguous(), xs.contiguous()
        wy, wx = wy.contiguous(), wx.contiguous()
        rc = lib.cnnlab_resample_u8(
            _ptr(src, torch.uint8, (B, C, h, w), "src"), _ptr(out, torch.float32, out.shape, "out"),
            B * C, h, w, H, W, _ptr(ys, torch.int32, (H,), "ys"),
            _ptr(wy, torch.float32, (H, ky), "wy"), ky, _ptr(xs, torch.int32, (W,), "xs"),
            _ptr(wx, torch.float32, (W, kx), "wx"), kx, float(scale), float(shift))
        if rc == 0:
            return out
    X = src.to(torch.float32) * scale
    X = torch.matmul(_dense(ys, wy.float(), h), torch.matmul(X, _dense(xs, wx.float(), w).T))
    return out.copy_(X.add_(shift))


def _resample_u8_fake(src, ys, wy, xs, wx, scale, shift):
    _one_device("resample_u8", src, ys, wy, xs, wx)
    return src.new_empty(src.shape[0], src.shape[1], ys.shape[0], xs.shape[0],
                         dtype=torch.float32)


resample_u8 = _op("resample_u8(Tensor src, Tensor ys, Tensor wy, Tensor xs, Tensor wx, "
                  "float scale, float shift) -> Tensor", _resample_u8_cpu, _resample_u8_fake)


# ------------------------------------------------------------- sigmoid + avg-pool
def _nhwc(Z: Tensor) -> Optional[bool]:
    """False: Z is NCHW-contiguous; True: NHWC; None: neither."""
    if Z.is_contiguous():
        return False
    if Z.is_contiguous(memory_format=CL):
        return True
    return None


def _pool_in(Z: Tensor, k: int, what: str) -> Tuple[Tensor, bool]:
    if Z.dim() != 4 or k < 1 or k > min(Z.shape[-2:]):
        raise ValueError(f"cnnlab.native.{what}: Z must be (B, C, H, W) with H, W >= k >= 1; "
                         f"got {tuple(Z.shape)} and k={k}")
    nhwc = _nhwc(Z)
    return (Z.contiguous(), False) if nhwc is None else (Z, nhwc)


def _pool_out(Z: Tensor, nhwc: bool, k: int) -> Tensor:
    B, C, H, W = Z.shape
    if nhwc:
        return torch.empty(B, C, H // k, W // k, dtype=Z.dtype, device=Z.device, memory_format=CL)
    return Z.new_empty(B, C, H // k, W // k)


def _sap_cpu(Z: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """(``avg_pool2d(sigmoid(Z), k)``, ``sigmoid(Z)``), stride k, no padding, floor mode."""
    Z, nhwc = _pool_in(Z, k, "sigmoid_avg_pool2d")
    B, C, H, W = Z.shape
    P, S = _pool_out(Z, nhwc, k), torch.empty_like(Z)
    lib = native.load()
    if lib is not None and Z.dtype == torch.float32 and Z.numel():
        mf = CL if nhwc else torch.contiguous_format
        planes, c = (B, C) if nhwc else (B * C, 1)
        rc = lib.cnnlab_sigmoid_avgpool_fwd(
            _ptr(Z, torch.float32, Z.shape, "Z", mf), _ptr(S, torch.float32, Z.shape, "S", mf),
            _ptr(P, torch.float32, P.shape, "P", mf), planes, H, W, c, k)
        if rc == 0:
            return P, S
    torch.sigmoid(Z, out=S)
    return P.copy_(F.avg_pool2d(S, k)), S


def _sap_fake(Z, k):
    Z, nhwc = _pool_in(Z, k, "sigmoid_avg_pool2d")
    return _pool_out(Z, nhwc, k), torch.empty_like(Z)


sigmoid_avg_pool2d = _op("sigmoid_avg_pool2d(Tensor Z, int k) -> (Tensor, Tensor)",
                         _sap_cpu, _sap_fake)


def _sap_backward_cpu(S: Tensor, dP: Tensor, k: int) -> Tensor:
    """dZ of :func:`sigmoid_avg_pool2d` from its sigmoid S and the output gradient dP."""
    _one_device("sigmoid_avg_pool2d_backward", S, dP)
    S, nhwc = _pool_in(S, k, "sigmoid_avg_pool2d_backward")
    B, C, H, W = S.shape
    mf = CL if nhwc else torch.contiguous_format
    dP = dP.contiguous(memory_format=mf)
    dZ = torch.empty_like(S)
    lib = native.load()
    if lib is not None and S.dtype == dP.dtype == torch.float32 and S.numel():
        planes, c = (B, C) if nhwc else (B * C, 1)
        rc = lib.cnnlab_sigmoid_avgpool_bwd(
            _ptr(S, torch.float32, S.shape, "S", mf),
            _ptr(dP, torch.float32, (B, C, H // k, W // k), "dP", mf),
            _ptr(dZ, torch.float32, S.shape, "dZ", mf), planes, H, W, c, k)
        if rc == 0:
            return dZ
    g = torch.ops.aten.avg_pool2d_backward(dP, S, [k, k], [k, k], [0, 0], False, True, None)
    return dZ.copy_(g * S * (1 - S))


def _sap_backward_fake(S, dP, k):
    _one_device("sigmoid_avg_pool2d_backward", S, dP)
    S, _ = _pool_in(S, k, "sigmoid_avg_pool2d_backward")
    return torch.empty_like(S)


sigmoid_avg_pool2d_backward = _op(
    "sigmoid_avg_pool2d_backward(Tensor S, Tensor dP, int k) -> Tensor",
    _sap_backward_cpu, _sap_backward_fake)


class _SigmoidAvgPool2d(torch.autograd.Function):
    """The gradient of ``sigmoid_avg_pool2d``: its backward op for P's, and the sigmoid's
    derivative for S's where the caller used S too."""

    @staticmethod
    def forward(ctx, Z, k):
        with torch._C._AutoDispatchBelowAutograd():
            P, S = sigmoid_avg_pool2d(Z, k)
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
        ctx.k = k
        ctx.save_for_backward(S)
        return P, S

    @staticmethod
    def backward(ctx, dP, dS):
        (S,) = ctx.saved_tensors
        dZ = None if dP is None else sigmoid_avg_pool2d_backward(S, dP, ctx.k)
        if dS is not None:  # the sigmoid output was used too
            dZ = dS * S * (1 - S) + (0 if dZ is None else dZ)
        return dZ, None


_autograd(sigmoid_avg_pool2d, _SigmoidAvgPool2d)


# ---------------------------------------------------------- small convolutions
MAX_CHANNELS = 16  # in and out: one or two 8-float vectors per pixel (conv.c)
MAX_KERNEL = 7


def _lanes(M: int) -> int:
    """Mp: M output channels padded to the kernels' one or two 8-float vectors."""
    return 8 if M <= 8 else 16


def _native_sizes(C: int, M: int, k: int, padding: int) -> bool:
    """The sizes conv.c's kernels take (they check again and decline otherwise)."""
    return 1 <= C <= MAX_CHANNELS and 1 <= M <= MAX_CHANNELS and 1 <= k <= MAX_KERNEL \
        and padding >= 0


def _conv_shapes(xs: Tuple[int, ...], ws: Tuple[int, ...], padding: int,
                 what: str) -> Tuple[int, ...]:
    """(B, C, H, W, M, k, Ho, Wo) of a stride-1 convolution of an input of shape ``xs`` by
    weights of shape ``ws``, or a ValueError saying what does not fit."""
    if len(xs) != 4 or len(ws) != 4 or ws[1] != xs[1] or ws[2] != ws[3] or padding < 0:
        raise ValueError(f"cnnlab.native.{what}: X (B, C, H, W), weight (M, C, k, k) and "
                         f"padding >= 0 were expected, got {tuple(xs)}, {tuple(ws)} and "
                         f"{padding}")
    B, C, H, W = xs
    M, k = ws[0], ws[2]
    Ho, Wo = H + 2 * padding - k + 1, W + 2 * padding - k + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"cnnlab.native.{what}: a {k}x{k} kernel does not fit a "
                         f"{H}x{W} input with padding {padding}")
    return B, C, H, W, M, k, Ho, Wo


def _conv_cpu(X: Tensor, weight: Tensor, bias: Optional[Tensor], padding: int) -> Tensor:
    """Stride-1 ``F.conv2d(X, weight, bias, padding=padding)``, NHWC (channels_last) result."""
    _one_device("conv2d_small", X, weight, bias)
    B, C, H, W, M, k, Ho, Wo = _conv_shapes(X.shape, weight.shape, padding, "conv2d_small")
    if bias is not None and tuple(bias.shape) != (M,):
        raise ValueError(f"cnnlab.native.conv2d_small: bias must be ({M},), got "
                         f"{tuple(bias.shape)}")
    X = X.contiguous(memory_format=CL)
    lib = native.load()
    # several input channels: only where avx512.c's forward runs (9..16 outputs); conv.c's
    # AVX2 one is no faster than oneDNN's in a training step (benchmarks/results/lenet.md)
    if lib is not None and (C == 1 or (M > 8 and lib.cnnlab_native_avx512())) \
            and _native_sizes(C, M, k, padding) \
            and X.dtype == weight.dtype == torch.float32 and X.numel() \
            and (bias is None or bias.dtype == torch.float32):
        Mp = _lanes(M)
        b = weight.new_zeros(Mp)
        if bias is not None:
            b[:M] = bias
        Wt = weight.new_zeros(k * k * C, Mp)  # tap-major: row (ky*k + kx)*C + c
        Wt[:, :M] = weight.permute(2, 3, 1, 0).reshape(k * k * C, M)
        Y = torch.empty(B, M, Ho, Wo, memory_format=CL)
        rc = lib.cnnlab_conv_fwd(
            _ptr(X, torch.float32, (B, C, H, W), "X", CL),
            _ptr(Wt, torch.float32, (k * k * C, Mp), "weight taps"),
            _ptr(b, torch.float32, (Mp,), "bias"), _ptr(Y, torch.float32, Y.shape, "Y", CL),
            B, H, W, C, M, k, padding)
        if rc == 0:
            return Y
    return _cl(F.conv2d(X, weight, bias, padding=padding))


def _conv_fake(X, weight, bias, padding):
    _one_device("conv2d_small", X, weight, bias)
    B, C, H, W, M, k, Ho, Wo = _conv_shapes(X.shape, weight.shape, padding, "conv2d_small")
    return torch.empty(B, M, Ho, Wo, dtype=X.dtype, device=X.device, memory_format=CL)


conv2d_small = _op("conv2d_small(Tensor X, Tensor weight, Tensor? bias, int padding) -> Tensor",
                   _conv_cpu, _conv_fake)


def _input_grad(lib, dY: Tensor, weight: Tensor, shape: Tuple[int, ...],
                padding: int) -> Tensor:
    """dX (NHWC): the native scatter kernel, else PyTorch's transposed convolution."""
    B, C, H, W, M, k, Ho, Wo = shape
    if lib is not None and _native_sizes(C, M, k, padding):
        Wc = weight.contiguous()  # (M, C, k, k), PyTorch's layout
        dX = torch.empty(B, C, H, W, memory_format=CL)
        rc = lib.cnnlab_conv_dgrad(
            _ptr(dY, torch.float32, (B, M, Ho, Wo), "dY", CL),
            _ptr(Wc, torch.float32, (M, C, k, k), "weight"),
            _ptr(dX, torch.float32, (B, C, H, W), "dX", CL), B, H, W, C, M, k, padding)
        if rc == 0:  # 1: inf/NaN in dY, -1: sizes, no AVX2 or out of memory
            return dX
    return _cl(F.conv_transpose2d(dY, weight, padding=padding))


def _weight_grad(lib, X: Tensor, dY: Tensor, shape: Tuple[int, ...],
                 padding: int) -> Tuple[Tensor, Tensor]:
    """(dW (M, C, k, k), db (M,)): the native kernel, else PyTorch's."""
    B, C, H, W, M, k, Ho, Wo = shape
    if lib is not None and _native_sizes(C, M, k, padding):
        Mp = _lanes(M)
        dWt, dbp = torch.empty(k * k * C, Mp), torch.empty(Mp)
        rc = lib.cnnlab_conv_wgrad(
            _ptr(X, torch.float32, (B, C, H, W), "X", CL),
            _ptr(dY, torch.float32, (B, M, Ho, Wo), "dY", CL),
            _ptr(dWt, torch.float32, (k * k * C, Mp), "dW taps"),
            _ptr(dbp, torch.float32, (Mp,), "db"), B, H, W, C, M, k, padding)
        if rc == 0:
            return dWt[:, :M].reshape(k, k, C, M).permute(3, 2, 0, 1).contiguous(), dbp[:M].clone()
    dW = torch.nn.grad.conv2d_weight(X, (M, C, k, k), dY, padding=padding)
    return dW.contiguous(), dY.sum((0, 2, 3))


def _backward_shapes(dY: Tensor, X: Tensor, weight: Tensor, padding: int) -> Tuple[int, ...]:
    _one_device("conv2d_small_backward", dY, X, weight)
    shape = _conv_shapes(X.shape, weight.shape, padding, "conv2d_small_backward")
    B, M, Ho, Wo = shape[0], shape[4], shape[6], shape[7]
    if tuple(dY.shape) != (B, M, Ho, Wo):
        raise ValueError(f"cnnlab.native.conv2d_small_backward: dY must be "
                         f"{(B, M, Ho, Wo)}, got {tuple(dY.shape)}")
    return shape


def _conv_backward_cpu(dY: Tensor, X: Tensor, weight: Tensor, padding: int,
                          input_grad: bool, weight_grad: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """(dX (NHWC), dW, db) of :func:`conv2d_small` for the output gradient dY; a gradient
    not asked for (``input_grad``, ``weight_grad``) is an empty tensor."""
    shape = _backward_shapes(dY, X, weight, padding)
    lib = native.load()
    if not (dY.dtype == X.dtype == weight.dtype == torch.float32):
        lib = None  # PyTorch's kernels for other dtypes
    dY = dY.contiguous(memory_format=CL)
    dX, dW, db = dY.new_empty(0), dY.new_empty(0), dY.new_empty(0)  # distinct: no aliasing
    if input_grad:
        dX = _input_grad(lib, dY, weight, shape, padding)
    if weight_grad:
        dW, db = _weight_grad(lib, X.contiguous(memory_format=CL), dY, shape, padding)
    return dX, dW, db


def _conv_backward_fake(dY, X, weight, padding, input_grad, weight_grad):
    B, C, H, W, M, k, Ho, Wo = _backward_shapes(dY, X, weight, padding)
    dX = torch.empty(B, C, H, W, dtype=dY.dtype, device=dY.device, memory_format=CL) \
        if input_grad else dY.new_empty(0)
    if weight_grad:
        return dX, X.new_empty(M, C, k, k), X.new_empty(M)
    return dX, dY.new_empty(0), dY.new_empty(0)


conv2d_small_backward = _op(
    "conv2d_small_backward(Tensor dY, Tensor X, Tensor weight, int padding, bool input_grad, "
    "bool weight_grad) -> (Tensor, Tensor, Tensor)", _conv_backward_cpu, _conv_backward_fake)


class _Conv2dSmall(torch.autograd.Function):
    """The gradients of ``conv2d_small``: one call of its backward op, for the ones needed."""

    @staticmethod
    def forward(ctx, X, weight, bias, padding):
        with torch._C._AutoDispatchBelowAutograd():
            Y = conv2d_small(X, weight, bias, padding)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(X, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return Y

    @staticmethod
    def backward(ctx, dY):
        if dY is None:
            return None, None, None, None
        X, weight = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        need_w = ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2])
        dX, dW, db = conv2d_small_backward(dY, X, weight, ctx.padding, need_x, need_w)
        return (dX if need_x else None, dW if need_w else None,
                db if need_w and ctx.has_bias else None, None)


_autograd(conv2d_small, _Conv2dSmall)

#: every op of the boundary (for tests: opcheck each)
OPS = (resample_u8, sigmoid_avg_pool2d, sigmoid_avg_pool2d_backward, conv2d_small,
       conv2d_small_backward)
