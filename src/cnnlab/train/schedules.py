"""Learning-rate schedules, stepped once per batch, with a linear warm-up.

Each schedule is a multiplier of the base lr as a function of the step, wrapped
in ``LambdaLR`` (whose state_dict is plain numbers, so checkpoints stay safe).
``constant`` is the book's; ``cosine`` is SGDR without restarts (Loshchilov &
Hutter, 2017); ``onecycle`` is Smith & Topin's (2018) triangle: up to the peak
over the warm-up (30% of training when no warm-up is given), then down to 0.

Example:
    >>> f = lr_factor("cosine", total_steps=100, warmup_steps=10)
    >>> [round(f(s), 3) for s in (0, 5, 10, 55, 100)]
    [0.1, 0.6, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def lr_factor(schedule: str, total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """The multiplier of the base lr at a (0-based) step."""
    total = max(int(total_steps), 1)
    warm = min(max(int(warmup_steps), 0), total)
    if schedule == "onecycle" and warm == 0:
        warm = max(1, int(0.3 * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm  # linear ramp reaching 1 at the end of warm-up
        if schedule == "constant":
            return 1.0
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "onecycle":
            return 1.0 - progress
        raise ValueError(f"unknown schedule {schedule!r}")

    return factor


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                   warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-batch ``LambdaLR`` for ``schedule`` (constant | cosine | onecycle)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(schedule, total_steps, warmup_steps))
