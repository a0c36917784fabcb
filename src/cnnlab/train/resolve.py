"""From what the user asked to the full config of a run.

Precedence, lowest first: TrainConfig's defaults, the model's book values from
the registry (epochs, batch_size, lr, resize = the book's input size), the
named recipe's overrides, and last the fields the user set explicitly.

Example:
    >>> cfg = resolve_config(TrainConfig(model="lenet", epochs=2))  # doctest: +SKIP
    >>> cfg.epochs, cfg.lr, cfg.batch_size, cfg.resize  # doctest: +SKIP
    (2, 0.1, 128, 28)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError, DataNotFoundError
from cnnlab.train.config import TrainConfig

# the fields a resumed run may change: they do not alter what the finished weights are
RESUME_MAY_CHANGE = frozenset(
    {"epochs", "device", "num_threads", "data_dir", "out_dir", "compile", "dry_run",
     "logger", "accel"})


def explicit_fields(config: TrainConfig) -> set[str]:
    """What a library user 'set': the fields given to the constructor or assigned
    afterwards (even to their default value), and any that differ from the default."""
    default = TrainConfig()
    return set(config.given_fields) | {f.name for f in dataclasses.fields(TrainConfig)
                                       if getattr(config, f.name) != getattr(default, f.name)}


def recipe_overrides(name: str | None) -> dict[str, Any]:
    """The field overrides of a named recipe ({} for None)."""
    if not name:
        return {}
    from cnnlab.train.recipes import get_recipe  # looked up per call: the table may be swapped

    overrides = dict(get_recipe(name))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"recipe {name!r} sets unknown fields {unknown}")
    return overrides


def resolve_config(config: TrainConfig, explicit: Iterable[str] | None = None) -> TrainConfig:
    """Fill ``None`` fields with the model's book values, apply the recipe, validate.

    ``explicit`` names the fields the user set (the CLI knows them); by default
    every field that differs from TrainConfig's default counts as set.
    Returns a new TrainConfig; raises ConfigError for unknown models, recipes
    and bad values.
    """
    from cnnlab.models import get_model_info, min_input_size

    config.validate()
    if config.data_dir is not None and not Path(config.data_dir).expanduser().is_dir():
        # a typo must not silently train on another copy found on the search path
        raise DataNotFoundError(f"data_dir {config.data_dir} is not a folder; pass the folder "
                                "holding the dataset files, or leave it out (see cnnlab data)")
    explicit = set(explicit_fields(config) if explicit is None else explicit)
    overrides = recipe_overrides(config.recipe)
    model = config.model if "model" in explicit else overrides.get("model", config.model)
    info = get_model_info(model)
    merged = TrainConfig().to_dict()
    merged.update(model=model, epochs=info.epochs, batch_size=info.batch_size, lr=info.lr,
                  resize=info.input_size)
    merged.update(overrides)
    user = config.to_dict()
    for name in explicit | {"recipe"}:
        merged[name] = user[name]
    for name in ("epochs", "batch_size", "lr", "resize"):  # None set explicitly: book value
        if merged[name] is None:
            merged[name] = {"epochs": info.epochs, "batch_size": info.batch_size,
                            "lr": info.lr, "resize": info.input_size}[name]
    merged["extra"] = {**overrides.get("extra", {}), **user["extra"]}
    resolved = TrainConfig.from_dict(merged).validate()
    smallest = min_input_size(resolved.model, **resolved.extra)
    if resolved.resize < smallest:
        raise ConfigError(f"{resolved.model} needs inputs of at least {smallest}x{smallest} "
                          f"pixels, got resize={resolved.resize}; pass resize={smallest} "
                          "or more")
    if resolved.precision == "fp16" and resolved.device == "cpu":
        _check_cpu_fp16()
    return mark_resolved(resolved)


def mark_resolved(config: TrainConfig) -> TrainConfig:
    """Flag a config as final so that the Trainer does not resolve it again."""
    config._resolved = True  # a plain attribute: not a field, not saved, not compared
    return config


def _check_cpu_fp16() -> None:
    import torch

    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except (RuntimeError, AssertionError):
        raise ConfigError("this PyTorch has no float16 autocast on CPU; "
                          "use precision='bf16' or precision='fp32'") from None


def config_for_resume(saved: dict[str, Any], requested: TrainConfig,
                      explicit: Iterable[str]) -> TrainConfig:
    """The checkpoint's config, with the few fields a resumed run may change.

    Any other explicitly set field that differs from the checkpoint is an error:
    the run would no longer be the one that was interrupted.
    """
    try:
        cfg = TrainConfig.from_dict(dict(saved)).validate()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"the checkpoint's config is unusable ({e}); start a new run") from None
    user = requested.to_dict()
    changed = sorted(name for name in explicit if name not in RESUME_MAY_CHANGE
                     and name in user and user[name] != getattr(cfg, name))
    if changed:
        name = changed[0]
        raise ConfigError(
            f"the run being resumed used {name}={getattr(cfg, name)!r}, not {user[name]!r}; "
            f"drop {name}= to resume it, or start a new run with another out_dir=")
    for name in explicit:
        if name in RESUME_MAY_CHANGE and name != "out_dir":
            setattr(cfg, name, user[name])
    return mark_resolved(cfg.validate())
