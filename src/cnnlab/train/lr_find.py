"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3).

Train for up to ``num_steps`` steps while the learning rate grows exponentially
from ``start_lr`` to ``end_lr``; record the loss of each step, smoothed with an
exponential moving average (``beta``, bias-corrected as in fastai), and stop
once it exceeds ``diverge`` times the best seen. The suggestion is the lr of
the steepest descent of the smoothed loss against log(lr) (Lightning's rule,
ignoring the first 10 and last point); ``min_loss_lr / 10`` (fastai's older
rule) is returned as well. The model, the optimizer, the RNGs and the data's
epoch are restored afterwards: the test leaves no trace on the run.

Example:
    >>> from cnnlab.train import Trainer, TrainConfig
    >>> cfg = TrainConfig(model="lenet", dataset="synthetic", num_train=512)
    >>> result = Trainer(cfg, save=False).lr_find(num_steps=50)  # doctest: +SKIP
    >>> print(result.line())  # doctest: +SKIP
    suggested lr 0.32 (steepest descent of the smoothed loss; min-loss lr / 10: 0.1) ...
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.errors import ConfigError

SKIP_START, SKIP_END = 10, 1  # points ignored at either end when picking the steepest slope


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # smoothed (what the plot shows)
    raw_losses: list[float]
    suggestion: float | None  # steepest descent
    min_loss_lr: float | None
    diverged: bool
    plot: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """The one line ``cnnlab lr-find`` prints."""
        if self.suggestion is None:
            return (f"no suggestion: only {len(self.lrs)} steps ran before the loss "
                    "diverged; lower --start-lr or use more --num-steps")
        where = f"; plot {self.plot}" if self.plot else ""
        return (f"suggested lr {self.suggestion:.3g} (steepest descent of the smoothed loss; "
                f"min-loss lr / 10: {self.min_loss_lr / 10:.3g}){where}")


def _check(start_lr: float, end_lr: float, num_steps: int, beta: float,
           diverge: float) -> None:
    for name, v in (("start_lr", start_lr), ("end_lr", end_lr), ("diverge", diverge)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v <= 0:
            raise ConfigError(f"{name} must be a positive number, got {v!r}")
    if end_lr <= start_lr:
        raise ConfigError(f"end_lr must be larger than start_lr, got {start_lr:g} .. {end_lr:g}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ConfigError(f"num_steps must be an integer >= 2, got {num_steps!r}; "
                          "e.g. --num-steps 100")
    if not 0 <= beta < 1:
        raise ConfigError(f"beta must be in [0, 1), got {beta!r}")


def lr_find(trainer: Any, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
            beta: float = 0.98, diverge: float = 4.0, plot: str | Path | None = None
            ) -> LRFindResult:
    """Run the range test with ``trainer``'s model, data, loss and optimizer."""
    from cnnlab.train import checkpoint as ckpt
    from cnnlab.train.distributed import unwrap

    _check(start_lr, end_lr, num_steps, beta, diverge)
    if plot is not None and Path(plot).suffix.lower() != ".png":  # before any work
        raise ConfigError(f"--out must name a .png file, got {str(plot)!r}")
    if not hasattr(trainer, "net"):
        from cnnlab.train.steps import seed_everything

        seed_everything(trainer.config.seed)  # the initial weights a fit would start from
        trainer.dist.start(trainer.device)
        trainer._build()
    model, opt, data = unwrap(trainer.model), trainer.optimizer, trainer.data
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_rng, was_training = ckpt.rng_state(), model.training
    saved_epoch = getattr(data, "epoch", None)
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    ratio = (end_lr / start_lr) ** (1 / (num_steps - 1))
    try:
        trainer.net.train()
        epoch = saved_epoch or 0
        while len(lrs) < num_steps and not diverged:
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)
            epoch += 1
            for X, y in data.train_dataloader():
                if len(lrs) >= num_steps:
                    break
                lr = start_lr * ratio ** len(lrs)
                for group in opt.param_groups:
                    group["lr"] = lr
                X, y = X.to(trainer.device), y.to(trainer.device)
                with trainer._autocast():
                    loss = trainer.loss_fn(trainer.net(X), y)
                if loss.dim():
                    loss = loss.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if trainer.config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), trainer.config.grad_clip)
                opt.step()
                value = float(loss.item())  # one sync per step: this is a short diagnostic
                lrs.append(lr)
                raw.append(value)
                avg = beta * avg + (1 - beta) * value
                smoothed = avg / (1 - beta ** len(lrs))
                smooth.append(smoothed)
                best = min(best, smoothed)
                if not math.isfinite(smoothed) or (len(lrs) > 1 and smoothed > diverge * best):
                    diverged = True
                    break
    finally:  # the run continues as if the test never happened
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        ckpt.set_rng_state(saved_rng)
        model.train(was_training)
        if saved_epoch is not None and hasattr(data, "set_epoch"):
            data.set_epoch(saved_epoch)
    result = LRFindResult(lrs, smooth, raw, *suggest(lrs, smooth), diverged=diverged)
    if plot is not None and lrs:
        result.plot = plot_lr_find(result, plot, title=f"{trainer.config.model}: LR range test")
    return result


def suggest(lrs: list[float], losses: list[float]) -> tuple[float | None, float | None]:
    """(steepest-descent lr, min-loss lr) of a smoothed curve; None when too short."""
    import numpy as np

    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    if not finite:
        return None, None
    min_lr = lrs[min(finite, key=lambda i: losses[i])]
    lo, hi = SKIP_START, len(losses) - SKIP_END
    if hi - lo < 3:
        return None, min_lr
    y = np.asarray(losses[lo:hi], dtype=np.float64)
    slope = np.gradient(y, np.log10(np.asarray(lrs[lo:hi])))
    slope[~np.isfinite(slope)] = np.inf
    return float(lrs[lo + int(np.argmin(slope))]), min_lr


def plot_lr_find(result: LRFindResult, path: str | Path, title: str = "") -> Path:
    """Loss against lr (log axis), the suggestion marked; written atomically as PNG."""
    from cnnlab.train.plots import _figure

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {str(path)!r}")
    fig = _figure((4.5, 3.2))
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses, color="C0", label="smoothed loss")
    ax.plot(result.lrs, result.raw_losses, color="C0", alpha=0.25, linewidth=0.8)
    if result.suggestion is not None:
        i = result.lrs.index(result.suggestion)
        ax.plot([result.suggestion], [result.losses[i]], "o", color="C3",
                label=f"suggested {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    finite = [v for v in result.losses if math.isfinite(v)]
    if finite:  # the divergence would squash the interesting part
        ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), min(max(finite), 2 * finite[0]) * 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.9 if title else 0.96)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
    return path
