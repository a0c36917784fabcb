"""The Trainer's building blocks that need no Trainer: device, seeding, optimizer, eval loop,
the process-wide torch settings of a run, and the clock.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> batches = [(torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]))]
    >>> loss_sum, confusion = evaluate_batches(net, batches, num_classes=3,
    ...                                        loss_fn=nn.CrossEntropyLoss())
    >>> int(confusion.sum()), confusion.shape
    (5, torch.Size([9]))
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

__all__ = ["pick_device", "seed_everything", "build_optimizer", "evaluate_batches",
           "normalization_of", "format_row", "torch_settings", "effective_precision",
           "synchronized_clock"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``mps`` -> the device this process trains on.

    ``auto``: CUDA (this rank's GPU), else Apple's MPS, else the CPU.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but no CUDA GPU is visible; use device='cpu'")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" or (name == "auto" and _mps_available()):
        if not _mps_available():
            raise ConfigError("device='mps' but Apple's MPS backend is not available (it "
                              "needs an Apple-silicon Mac and a PyTorch built with MPS); "
                              "use device='cpu'")
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def torch_settings(device: torch.device, *, num_threads: int | None = None,
                   deterministic: bool = False) -> Iterator[None]:
    """A run's process-wide torch settings for the length of a ``with`` block.

    Sets the CPU threads (``num_threads``; None leaves them), deterministic algorithms,
    and on CUDA cuDNN's autotuner (on unless deterministic: a training run feeds one
    shape again and again, so timing cuDNN's algorithms once per shape pays). Afterwards
    every setting is what it was, so a notebook that trains twice, or runs other code
    after ``fit()``, sees its own settings.

    Example:
        >>> before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        >>> with torch_settings(torch.device("cpu"), num_threads=1, deterministic=True):
        ...     torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        (1, True)
        >>> (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
        True
    """
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_bench = torch.backends.cudnn.benchmark
    old_cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        if num_threads:
            torch.set_num_threads(num_threads)
        if deterministic:
            if device.type == "cuda":
                # cuBLAS needs this before its first call to be deterministic; some CUDA
                # kernels have no deterministic version, so only warn there (the bitwise
                # resume promise is for CPU)
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.backends.cudnn.benchmark = False
                torch.use_deterministic_algorithms(True, warn_only=True)
            else:
                torch.use_deterministic_algorithms(True)
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.set_num_threads(old_threads)
        if (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) != (old_det, old_warn):
            # only when changed: the call imports torch._inductor's config
            torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.backends.cudnn.benchmark = old_bench
        if old_cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = old_cublas


def effective_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """The autocast precision ``device`` can train in, and a note when it is not ``precision``.

    ``auto``: bf16 where the hardware has bf16 arithmetic (a CPU with AVX512-BF16 or AMX,
    a GPU of sm_80 or later), fp16 with a scaler on older GPUs, else fp32.

    bf16 on a CUDA GPU below compute capability 8.0 (a T4 is 7.5): PyTorch emulates
    bf16 there, but cuDNN has no bf16 convolution kernels, so the run would be slow;
    fp16 with a gradient scaler uses the tensor cores instead.

    Example:
        >>> effective_precision("bf16", torch.device("cpu"))
        ('bf16', None)
    """
    if precision == "auto":
        if device.type == "cpu":
            if cpu_has_bf16():
                return "bf16", "auto: bf16, this CPU has bf16 instructions (AVX512-BF16/AMX)"
            return "fp32", "auto: fp32, this CPU has no bf16 instructions"
        if device.type == "cuda":
            major, _ = torch.cuda.get_device_capability(device)
            return ("bf16", "auto: bf16") if major >= 8 else ("fp16", "auto: fp16, no bf16 "
                                                               "convolutions below sm_80")
        return "fp32", f"auto: fp32 on {device.type}"
    if precision == "bf16" and device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            return "fp16", (f"fp16 with a gradient scaler instead of bf16: cuDNN has no bf16 "
                            f"convolutions below sm_80 (this GPU is sm_{major}{minor})")
    return precision, None


def cpu_has_bf16() -> bool:
    """Whether this CPU reports native bf16 arithmetic (AVX512-BF16 or AMX tiles).

    oneDNN's bf16 convolutions run on those instructions; without them (AVX2, plain
    AVX-512) it converts to fp32 and back, and bf16 autocast only costs time.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    except RuntimeError:  # a torch built without cpuinfo support
        return False


def synchronized_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once ``device`` has finished the work queued on it.

    CUDA and MPS run asynchronously: read straight away, the clock would stop before
    the GPU did and overstate images/s. Call it per epoch, never per step.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    return time.perf_counter()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate_batches(model: nn.Module, loader: Iterable, *, num_classes: int,
                     loss_fn: Callable, device: torch.device | str = "cpu",
                     limit: int | None = None, channels_last: bool = False, tta: bool = False,
                     autocast: Callable[[], Any] = contextlib.nullcontext
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss (float64) and flattened confusion counts (k*k) over ``loader``, on device.

    Nothing is read back to the host per batch. ``tta``: average the logits with
    those of the mirror image. The caller sets ``model.eval()``.
    """
    k = int(num_classes)
    device = torch.device(device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(k * k, dtype=torch.int64, device=device)
    limit = limit or sys.maxsize
    for i, (X, y) in enumerate(loader):
        if i >= limit:
            break
        if X.device != device:
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last and X.dim() == 4:
            X = X.contiguous(memory_format=torch.channels_last)
        with autocast():
            Y_hat = model(X)
            if tta:  # average with the mirror image's logits
                Y_hat = (Y_hat + model(torch.flip(X, dims=(-1,)))) / 2
            loss = loss_fn(Y_hat, y)
        loss_sum += loss.detach().double().mean() * y.shape[0]
        # a one-hot sum, not bincount: bincount has no deterministic CUDA kernel
        confusion += nn.functional.one_hot(y * k + Y_hat.argmax(dim=1), k * k).sum(0)
    return loss_sum, confusion


def normalization_of(data: Any) -> dict[str, list[float]] | None:
    """The (mean, std) the data module standardised with, for `cnnlab predict`."""
    if not getattr(data, "normalize", False):  # before .mean: a data module computes it
        return None  # from the whole training split on first use: a pass over every pixel
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if mean is None or std is None:
        return None
    return {"mean": torch.as_tensor(mean, dtype=torch.float64).flatten().tolist(),
            "std": torch.as_tensor(std, dtype=torch.float64).flatten().tolist()}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig,
                    device: torch.device) -> torch.optim.Optimizer:
    """sgd (the book's) | momentum (0.9, Nesterov) | adamw; fused kernels on CUDA."""
    fast = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fast)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True,
                               weight_decay=cfg.weight_decay, **fast)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fast)


def format_row(row: dict[str, Any], epochs: int) -> str:
    """The line printed after each epoch (stays in logs; the bar does not).

    Example:
        >>> row = dict(epoch=1, train_loss=0.5, train_acc=0.8, val_loss=None, val_acc=None,
        ...            lr=0.1, seconds=2.0, images_per_s=1000.0)
        >>> format_row(row, 10)
        'epoch 1/10  train_loss 0.500  train_acc 0.800  (not validated)  lr 0.1  2.0s  1000 img/s'
    """
    val = ("(not validated)" if row["val_acc"] is None
           else f"val_loss {row['val_loss']:.3f}  val_acc {row['val_acc']:.3f}")
    return (f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.3f}  "
            f"train_acc {row['train_acc']:.3f}  {val}  lr {row['lr']:.3g}  "
            f"{row['seconds']:.1f}s  {row['images_per_s']:.0f} img/s")
