"""The Trainer's building blocks that need no Trainer: device, seeding, optimizer, eval loop.

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
import random
import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

__all__ = ["pick_device", "seed_everything", "build_optimizer", "evaluate_batches",
           "normalization_of", "format_row"]


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` -> the device this process trains on (its rank's GPU)."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


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
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if not getattr(data, "normalize", False) or mean is None or std is None:
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
