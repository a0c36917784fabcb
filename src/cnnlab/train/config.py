"""One typed configuration that flows from the CLI to every object of a run.

It is saved as ``config.json`` in every run directory and inside every
checkpoint (as a plain dict), so a run can be rebuilt from either.

Example:
    >>> from cnnlab.train.config import TrainConfig
    >>> cfg = TrainConfig(model="lenet", epochs=2)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any

from cnnlab.data.names import DATASET_NAMES, parse_augment
from cnnlab.errors import ConfigError
from cnnlab.guards import MAX_THREADS, check_int

OPTIMIZERS = ("sgd", "momentum", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DEVICES = ("auto", "cpu", "cuda", "mps")
LOGGERS = ("tensorboard",)
DATASETS = DATASET_NAMES


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means "the model's book default"."""

    model: str = "lenet"  # a registered name: `cnnlab models`
    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | synthetic
    data_dir: str | None = None  # where the IDX files are; None: the usual search path
    epochs: int | None = None  # None: the registry's book value (10 for every chapter 7-8 model)
    batch_size: int | None = None  # None: book value (128)
    lr: float | None = None  # None: book value (lenet 0.1, vgg/resnet 0.01, ...)
    optimizer: str = "sgd"  # sgd (the book's) | momentum (SGD, 0.9, nesterov) | adamw
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant (the book's) | cosine | onecycle
    warmup_epochs: float = 0.0  # linear warm-up length, in epochs (fractions allowed)
    label_smoothing: float = 0.0  # 0 = the book's plain cross-entropy
    resize: int | None = None  # square input side in pixels; None: the book's (28, 96 or 224)
    augment: str | None = None  # None | "crop" | "crop,flip" | "crop+flip+erase"
    normalize: bool = False  # standardise pixels with the training set's mean/std
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 adds a GradScaler) | auto
    channels_last: bool = False  # NHWC memory format (faster convolutions on most backends)
    compile: bool = False  # torch.compile the model
    accel: bool = True  # CPU: train with cnnlab.accel's kernels swapped in (restored after)
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | mps
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms; bitwise resume on CPU
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    limit_train_batches: int | None = None  # at most this many training batches per epoch
    limit_val_batches: int | None = None  # at most this many validation batches per epoch
    val_every: int = 1  # validate every N epochs and after the last (Keras' validation_freq)
    num_train: int | None = None  # use only the first N training images (quick experiments)
    dry_run: bool = False  # a few batches of everything, once (Lightning's fast_dev_run)
    tta: bool = False  # test-time augmentation: average logits of image and its mirror
    num_threads: int | None = None  # torch CPU threads; None: PyTorch's choice
    out_dir: str | None = None  # run directory; None: runs/<model>-<timestamp>
    recipe: str | None = None  # the named recipe this config came from, if any
    logger: str | None = None  # None: metrics.csv/.jsonl only | "tensorboard": also event files
    extra: dict[str, Any] = field(default_factory=dict)  # model kwargs (e.g. arch)

    def __post_init__(self) -> None:
        # pathlib.Path is welcome for folders; store str so that config.json stays JSON
        for name in ("data_dir", "out_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        given = self.__dict__.get("_given")
        if given is not None and name in _FIELD_NAMES:  # after __init__: the user's choice
            # a new frozenset, not add(): copy.copy's copies share the old one
            self.__dict__["_given"] = given | {name}

    @property
    def given_fields(self) -> frozenset[str]:
        """The fields the caller passed to the constructor or assigned afterwards.

        A recipe fills only the others (cnnlab.train.resolve), so
        ``TrainConfig(recipe="fast-cpu", label_smoothing=0.0)`` trains without label
        smoothing although 0.0 is the default. A call that passes every field is a
        copy (``from_dict`` of a saved config, ``dataclasses.replace``), not a choice:
        it counts as giving none.
        """
        return self.__dict__.get("_given", frozenset())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what config.json and checkpoints hold)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are an error that names them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a YAML config file (``cnnlab train --config``); unknown keys and wrong
        types raise ConfigError naming the key. See :mod:`cnnlab.train.configfile`."""
        from cnnlab.train.configfile import load_config_file

        return cls(**load_config_file(path))

    def to_yaml(self) -> str:
        """The YAML text ``from_yaml`` reads back (without ``out_dir``)."""
        from cnnlab.train.configfile import config_yaml

        return config_yaml(self)

    def validate(self) -> TrainConfig:
        """Check every field; raise :class:`ConfigError` with a one-line fix. Returns self."""
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("device", self.device, DEVICES)
        _choice("dataset", self.dataset, DATASETS)
        if self.logger is not None:
            _choice("logger", self.logger, LOGGERS)
        for name in ("epochs", "batch_size", "resize", "limit_train_batches",
                     "limit_val_batches", "num_train", "num_threads"):
            _positive_int(name, getattr(self, name))
        _positive_float("lr", self.lr)
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):
            _nonnegative_float(name, getattr(self, name))
        if not 0.0 <= _finite("label_smoothing", self.label_smoothing) < 1.0:
            raise ConfigError(
                f"label_smoothing must be in [0, 1), got {self.label_smoothing}; try 0.1")
        if isinstance(self.augment, str):
            parse_augment(self.augment)  # the DataModule's parser: "crop,flip" or "crop+flip"
        for name in ("normalize", "channels_last", "compile", "deterministic", "dry_run",
                     "tta", "accel"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("model", "data_dir", "out_dir", "recipe", "augment"):
            value = getattr(self, name)
            if (value is not None or name == "model") and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}")
        check_int("val_every", self.val_every,
                  hint="e.g. val_every=2 (the last epoch is always validated)")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict of model options, got {self.extra!r}")
        # torch.manual_seed takes 64 bits
        check_int("seed", self.seed, least=-2**63, most=2**63 - 1, hint="e.g. seed=0")
        return self


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))
_dataclass_init = TrainConfig.__init__


@functools.wraps(_dataclass_init)
def _init_recording_given(self: TrainConfig, *args: Any, **kwargs: Any) -> None:
    _dataclass_init(self, *args, **kwargs)
    given = set(_FIELD_NAMES[:len(args)]) | set(kwargs)
    self.__dict__["_given"] = frozenset() if len(given) == len(_FIELD_NAMES) else frozenset(given)


TrainConfig.__init__ = _init_recording_given  # type: ignore[method-assign]


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _finite(name: str, value: Any) -> float:
    # a str such as "0.1" would pass float() here and then fail deep inside torch
    if isinstance(value, (bool, str, bytes)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return x


def _positive_int(name: str, value: Any) -> None:
    if value is None:
        return
    flag = "--" + name.replace("_", "-")
    # torch.set_num_threads(100000) crashes the process: bound it by what machines have
    most = MAX_THREADS if name == "num_threads" else None
    check_int(name, value, most=most, hint=f"e.g. {flag} {4 if most else 10}")


def _positive_float(name: str, value: Any) -> None:
    if value is None:
        return
    if _finite(name, value) <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}; e.g. --{name} 0.1")


def _nonnegative_float(name: str, value: Any) -> None:
    if _finite(name, value) < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
