"""Exported model folders (Hugging Face style): ``model.safetensors`` + ``config.json``.

``cnnlab export CKPT --to safetensors`` writes such a folder; ``create_model(folder)``
and ``cnnlab eval``/``predict`` read it back. ``config.json`` names the registered
architecture and everything needed to rebuild it and to feed it (classes, input
size and channels, normalisation); the weights are a plain safetensors file
(no pickle: loading runs no code).

Example:
    >>> is_model_folder("lenet"), is_model_folder("runs/x/export")
    (False, True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "cnnlab-safetensors"


def is_model_folder(name: Any) -> bool:
    """Whether ``create_model`` should read ``name`` as a folder: a path object, or a
    string with a path separator (registered names never have one)."""
    if isinstance(name, os.PathLike):
        return True
    return isinstance(name, str) and ("/" in name or os.sep in name)


def read_folder_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The checked ``config.json`` of an exported folder."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise CheckpointError(f"model folder {folder} {what}; pass a folder written by "
                              "cnnlab export --to safetensors")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} lacks {name}; pass a folder written by "
                                  "cnnlab export --to safetensors")
    try:
        with open(folder / CONFIG_NAME, encoding="utf-8") as f:
            cfg = json.loads(f.read(1 << 20))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{folder / CONFIG_NAME} is not valid JSON ({e})") from None
    ok = (isinstance(cfg, dict) and cfg.get("format") == FORMAT
          and isinstance(cfg.get("architecture"), str)
          and all(isinstance(cfg.get(k), int) and cfg[k] >= 1
                  for k in ("num_classes", "in_channels"))
          and isinstance(cfg.get("image_size"), list) and len(cfg["image_size"]) == 2
          and all(isinstance(s, int) and s >= 1 for s in cfg["image_size"])
          and isinstance(cfg.get("model_kwargs", {}), dict))
    if not ok:
        raise CheckpointError(f"{folder / CONFIG_NAME} is not a cnnlab model config (format "
                              f"{FORMAT!r} with architecture, num_classes, in_channels, "
                              "image_size); re-export the checkpoint")
    return cfg


def load_folder(folder: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, dict]:
    """``(model in eval mode, config.json dict)`` of an exported folder."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError("reading an exported folder needs safetensors: "
                              "pip install safetensors") from None
    from cnnlab.models.registry import create_model

    cfg = read_folder_config(folder)
    net = create_model(cfg["architecture"], num_classes=cfg["num_classes"],
                       in_channels=cfg["in_channels"], input_size=cfg["image_size"][0],
                       **cfg.get("model_kwargs", {}))
    path = Path(folder) / WEIGHTS_NAME
    try:
        weights = load_file(str(path), device=str(device))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{path} is not a readable safetensors file "
                              f"({type(e).__name__}); re-export the checkpoint") from None
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit {cfg['architecture']!r} ({first}); "
                              "re-export the checkpoint") from None
    return net.to(device).eval(), cfg
