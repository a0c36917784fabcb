"""The model registry: every chapter 7-8 network by name, with the book's training defaults.

Like timm's ``create_model``: a family file decorates a constructor with
:func:`register_model`, recording the input side, learning rate, epochs and batch
size the book trains it with; the trainer and ``cnnlab reproduce`` read them back
with :func:`get_model_info`.

Example:
    >>> from cnnlab.models import create_model, get_model_info, list_models
    >>> list_models("resnet*")
    ['resnet18', 'resnet34']
    >>> info = get_model_info("resnet18")
    >>> info.input_size, info.lr, info.epochs, info.batch_size
    (96, 0.01, 10, 128)
    >>> net = create_model("lenet", num_classes=10, in_channels=1)
    >>> sum(p.numel() for p in net.parameters())
    61706
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models._common import check_positive

_REGISTRY: dict[str, ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    """One registered model and the book's defaults for training it."""

    name: str  # "lenet"
    fn: Callable[..., nn.Module]
    family: str  # "lenet", "vgg", "resnet", ...
    input_size: int  # the book's square input side: 28, 96 or 224 (pixels)
    lr: float  # the book's learning rate (minibatch SGD)
    epochs: int = 10
    batch_size: int = 128
    description: str = ""


def register_model(name: str, *, family: str, input_size: int, lr: float, epochs: int = 10,
                   batch_size: int = 128) -> Callable[[Callable[..., nn.Module]],
                                                      Callable[..., nn.Module]]:
    """Decorator: record ``fn(num_classes=10, in_channels=1, **kwargs)`` under ``name``.

    Example:
        >>> from torch import nn
        >>> @register_model("tiny-mlp-doc", family="mlp", input_size=28, lr=0.1)
        ... def tiny(num_classes=10, in_channels=1):
        ...     '''A one-layer softmax regression.'''
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, num_classes))
        >>> get_model_info("tiny-mlp-doc").description
        'A one-layer softmax regression.'
        >>> _ = _REGISTRY.pop("tiny-mlp-doc")  # keep the doctest from leaking into the zoo
    """

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        old = _REGISTRY.get(name)
        if old is not None and old.fn.__qualname__ != fn.__qualname__:
            raise ConfigError(f"model name {name!r} is already registered by "
                              f"{old.fn.__module__}.{old.fn.__qualname__}; pick another name")
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        _REGISTRY[name] = ModelInfo(name=name, fn=fn, family=family, input_size=input_size,
                                    lr=lr, epochs=epochs, batch_size=batch_size,
                                    description=doc[0] if doc else "")
        return fn

    return decorate


def get_model_info(name: str) -> ModelInfo:
    """The registered :class:`ModelInfo`; an unknown name raises ConfigError naming the closest."""
    _load_zoo()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown model {name!r}; {hint}run `cnnlab models` to list "
                          f"all {len(_REGISTRY)}") from None


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching the shell-style ``pattern`` (fnmatch), sorted."""
    _load_zoo()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, scratch: bool = False,
                 **kwargs: Any) -> nn.Module:
    """Build a registered model, initialised (Xavier-uniform, book 7.6) and in training mode.

    ``kwargs`` go to the family constructor (e.g. ``arch=((1, 64), (1, 128))``).
    ``input_size`` (pixels, square) may always be given: models whose first Linear
    follows a fixed flatten (LeNet, AlexNet, VGG) are built for it; the others only
    check that it is not too small. ``scratch=True`` swaps conv and pooling layers
    for cnnlab's from-scratch ones (:func:`cnnlab.models.to_scratch`). ``name`` may also be
    a folder written by ``cnnlab export --to safetensors`` (a ``Path``, or a string with a
    ``/``, e.g. ``"./lenet-export"``): the trained model, in eval mode.

    Example:
        >>> net = create_model("vgg11-narrow", in_channels=3, num_classes=5, input_size=64)
        >>> import torch; net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 5])
    """
    from cnnlab.models.pretrained import is_model_folder, load_folder

    if is_model_folder(name):  # a folder of `cnnlab export --to safetensors`: in eval mode
        return load_folder(name)[0]
    info = get_model_info(name)
    check_positive(num_classes=num_classes, in_channels=in_channels)
    input_size = kwargs.pop("input_size", None)
    if input_size is not None:
        check_positive(input_size=input_size)
        least = min_input_size(name, **kwargs)
        if input_size < least:
            raise ConfigError(f"{name} needs inputs of at least {least}x{least}, got "
                              f"{input_size}x{input_size}; use the book's {info.input_size}x"
                              f"{info.input_size} (input_size={info.input_size}; "
                              f"resize={info.input_size} for the data)")
        if _accepts(info.fn, "input_size"):
            kwargs["input_size"] = input_size
    if not isinstance(scratch, bool):
        raise ConfigError(f"scratch must be True or False, got {scratch!r}")
    if torch.get_default_device().type != "meta":
        # the weights must fit before they are allocated: count them on the meta device
        # (an input_size of 10**6 gives LeNet a Linear layer of 6e13 weights)
        from cnnlab.guards import check_memory

        with torch.device("meta"):
            probe = _build(info, num_classes=num_classes, in_channels=in_channels, **kwargs)
        check_memory(sum(p.numel() * p.element_size() for p in probe.parameters()),
                     f"the weights of {name} (input_size={input_size}, "
                     f"num_classes={num_classes}, in_channels={in_channels})",
                     "use a smaller input_size= (resize=) or num_classes=")
    model = _build(info, num_classes=num_classes, in_channels=in_channels, **kwargs)
    if scratch:
        from cnnlab.models.scratch import to_scratch

        model = to_scratch(model)
    return model


def min_input_size(name: str, **kwargs: Any) -> int:
    """The smallest square input side (pixels) that ``name`` (built with ``kwargs``) accepts.

    The zoo's models know the side of their last feature map as a function of the
    input side (``feature_side``, the book's floor formula layer by layer); other
    registered models are probed with forward passes on the meta device.

    Example:
        >>> min_input_size("lenet"), min_input_size("alexnet"), min_input_size("resnet18")
        (12, 65, 1)
    """
    import torch

    from cnnlab.models._common import smallest_side

    info = get_model_info(name)
    kwargs.pop("input_size", None)  # the question is which input_size works
    key = (name, _freeze(kwargs))
    if key in _MIN_SIZE_CACHE:
        return _MIN_SIZE_CACHE[key]
    fixed = _accepts(info.fn, "input_size")
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = _build(info, num_classes=2, in_channels=1, **kwargs)
    side_fn = getattr(model, "feature_side", None)
    if callable(side_fn):
        least = smallest_side(side_fn)
    else:
        if not fixed:
            # a real model and real (small) inputs: the first forward on the meta
            # device costs seconds of imports, a small real one milliseconds
            model = _build(info, num_classes=2, in_channels=1, **kwargs).eval()

        def works(n: int) -> bool:
            try:
                if fixed:
                    with torch.device("meta"):
                        probe = info.fn(num_classes=2, in_channels=1, input_size=n, **kwargs)
                    probe.eval()(torch.zeros(1, 1, n, n, device="meta"))
                else:
                    with torch.no_grad():
                        model(torch.zeros(1, 1, n, n))
            except (RuntimeError, ValueError, ZeroDivisionError):
                return False
            return True

        least = smallest_side(lambda n: 1 if works(n) else 0, limit=1024)
    _MIN_SIZE_CACHE[key] = least
    return least


_MIN_SIZE_CACHE: dict[tuple, int] = {}


def _build(info: ModelInfo, **kwargs: Any) -> nn.Module:
    try:
        return info.fn(**kwargs)
    except TypeError as e:
        if "unexpected keyword" not in str(e):
            raise
        params = [p for p in inspect.signature(info.fn).parameters
                  if p not in ("num_classes", "in_channels", "kwargs")]
        raise ConfigError(f"{info.name}: {e}; it accepts {params or 'no extra options'}") from None


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _accepts(fn: Callable, param: str) -> bool:
    try:
        return param in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _load_zoo() -> None:
    # Importing the package registers every family (each file decorates its constructors).
    import cnnlab.models  # noqa: F401
