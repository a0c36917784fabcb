"""What a checkpoint's entries may hold: the types and ranges ``cnnlab train`` writes.

A checkpoint is data from elsewhere (a download, a hand-made or damaged file), so
:func:`cnnlab.train.checkpoint.load_checkpoint` checks every entry that eval, predict,
viz and resume read, first its type (:func:`malformed_entry`), then its range and its
agreement with the other entries (:func:`out_of_range`): a bad file is one clear error,
never a KeyError or TypeError deep inside.

Example:
    >>> malformed_entry({"model": {}, "epoch": -1, "num_classes": 10, "in_channels": 1,
    ...                  "config": {}})
    'epoch'
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cnnlab.guards import printable

__all__ = ["MAX_SIDE", "MAX_CLASSES", "MAX_CHANNELS", "malformed_entry", "out_of_range"]

# Ranges of what cnnlab train writes (the largest book input is 224 pixels; a model
# of a million classes or an image side of 8192 is beyond any run it makes).
MAX_SIDE = 8192
MAX_CLASSES = 100_000
MAX_CHANNELS = 64
_NUMBER_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                   "images_per_s")


def _finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def out_of_range(state: dict[str, Any]) -> str | None:
    """The first entry whose value cnnlab train cannot have written (with why), else None.

    Types are checked by :func:`malformed_entry`; this checks ranges and that the
    entries agree with each other, so that a bad value is refused here, before it is
    used (an image side of 0, a normalisation for 2 channels of a 1-channel model,
    a history row that would be written to metrics.csv on resume).
    """
    from cnnlab.train.config import TrainConfig

    if state["num_classes"] > MAX_CLASSES:
        return f"num_classes ({state['num_classes']} > {MAX_CLASSES})"
    if state["in_channels"] > MAX_CHANNELS:
        return f"in_channels ({state['in_channels']} > {MAX_CHANNELS})"
    if state["epoch"] > 10**7 or state.get("step", 0) > 2**62:
        return "epoch/step (out of range)"
    try:
        cfg = TrainConfig.from_dict(state["config"]).validate()
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        return f"config ({' '.join(str(e).split())[:160]})"
    size = state.get("image_size")
    if size is not None:
        if any(s > MAX_SIDE for s in size):
            return f"image_size ({list(size)}: sides must be 1..{MAX_SIDE})"
        if cfg.resize is not None and cfg.resize > MAX_SIDE:
            return f"config.resize ({cfg.resize} > {MAX_SIDE})"
        if cfg.resize is not None and list(size) != [cfg.resize] * len(size):
            return f"image_size ({list(size)} but config.resize is {cfg.resize})"
    elif cfg.resize is None or cfg.resize > MAX_SIDE:
        return f"config.resize ({cfg.resize!r}; with no image_size it must be 1..{MAX_SIDE})"
    norm = state.get("normalization")
    if norm is not None:
        if len(norm["mean"]) != len(norm["std"]) or len(norm["mean"]) not in (
                1, state["in_channels"]):
            return (f"normalization ({len(norm['mean'])} means and {len(norm['std'])} stds "
                    f"for {state['in_channels']} input channels)")
        if not all(_finite_number(v) for v in [*norm["mean"], *norm["std"]]):
            return "normalization (values must be finite numbers)"
    if "best" in state and (state["best"] != state["best"] or state["best"] > 1):
        return f"best ({state['best']!r}: an accuracy is at most 1)"
    history = state.get("history") or []
    if len(history) > state["epoch"]:
        return f"history ({len(history)} rows for {state['epoch']} epochs)"
    last = 0
    for row in history:
        epoch = row.get("epoch")
        if not _is_int(epoch, least=last + 1) or epoch > state["epoch"]:
            return f"history (row epoch {epoch!r} after {last}, of {state['epoch']} epochs)"
        last = epoch
        for key in _NUMBER_COLUMNS:
            value = row.get(key)
            if value is not None and not _finite_number(value):
                return f"history (epoch {epoch}: {key} = {printable(repr(value), 40)})"
    return None


def _is_int(x: Any, least: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= least


def malformed_entry(state: dict[str, Any]) -> str | None:
    """The name of the first entry whose type cannot be what cnnlab train wrote, else None.

    A checkpoint is data from elsewhere: check every entry that eval, predict, viz and
    resume read, so that a damaged or hand-made file is one clear error, never a
    KeyError or TypeError deep inside.
    """
    model = state["model"]
    if not isinstance(model, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        return "model"
    if not _is_int(state["epoch"]):
        return "epoch"
    if "step" in state and not _is_int(state["step"]):
        return "step"
    for key in ("num_classes", "in_channels"):
        if not _is_int(state[key], least=1):
            return key
    size = state.get("image_size")
    if size is not None and not (isinstance(size, (list, tuple)) and len(size) in (1, 2)
                                 and all(_is_int(s, least=1) for s in size)):
        return "image_size"
    classes = state.get("classes")
    if classes is not None and not (
            isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)
            and len(classes) in (0, state["num_classes"])):
        return "classes"
    history = state.get("history")
    if history is not None and not (isinstance(history, list)
                                    and all(isinstance(r, dict) for r in history)):
        return "history"
    if "best" in state and not isinstance(state["best"], (int, float)):
        return "best"
    norm = state.get("normalization")
    if norm is not None and not (
            isinstance(norm, dict) and all(
                isinstance(norm.get(k), list) and norm[k]
                and all(isinstance(v, (int, float)) for v in norm[k]) for k in ("mean", "std"))
            and all(v > 0 for v in norm["std"])):
        return "normalization"
    for key in ("optimizer", "scheduler", "scaler", "rng"):
        if key in state and not isinstance(state[key], dict):
            return key
    extra = state["config"].get("extra")
    if extra is not None and not isinstance(extra, dict):
        return "config.extra"
    return None
