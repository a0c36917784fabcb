"""Training: one config, one Trainer, checkpoints, plots, resume and DDP.

Names load lazily so that the CLI parser (which needs only :class:`TrainConfig`)
does not import torch.

Example:
    >>> from cnnlab.train import TrainConfig
    >>> TrainConfig(model="resnet18").optimizer
    'sgd'
"""

from __future__ import annotations

from typing import Any

from cnnlab.train.config import TrainConfig

_LAZY = {
    "Trainer": "cnnlab.train.trainer",
    "format_row": "cnnlab.train.steps",
    "resolve_config": "cnnlab.train.resolve",
    "config_for_resume": "cnnlab.train.resolve",
    "load_checkpoint": "cnnlab.train.checkpoint",
    "save_checkpoint": "cnnlab.train.checkpoint",
    "model_from_checkpoint": "cnnlab.train.checkpoint",
    "plot_curves": "cnnlab.train.plots",
    "plot_confusion": "cnnlab.train.plots",
    "run_seeds": "cnnlab.train.seeds",
    "lr_find": "cnnlab.train.lr_find",
}

__all__ = ["TrainConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute {name!r}")
