"""cnnlab: convolutional networks from the first cross-correlation to ResNeXt.

The chapters 7-8 of *Dive into Deep Learning* as a package: operators from
scratch (:mod:`cnnlab.ops`), the model zoo (:mod:`cnnlab.models`), Fashion-MNIST
in memory (:mod:`cnnlab.data`), one Trainer (:mod:`cnnlab.train`) and the d2l
API the book's notebooks call (``from cnnlab import d2l``).

Example:
    >>> import cnnlab
    >>> net = cnnlab.create_model("lenet")
    >>> sum(p.numel() for p in net.parameters())
    61706
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Heavy submodules load on first use so that `import cnnlab` and `cnnlab --help` stay fast.
_LAZY = {
    "create_model": ("cnnlab.models", "create_model"),
    "list_models": ("cnnlab.models", "list_models"),
    "summary": ("cnnlab.model_summary", "summary"),
    "Trainer": ("cnnlab.train", "Trainer"),
    "TrainConfig": ("cnnlab.train", "TrainConfig"),
    "DataModule": ("cnnlab.data", "DataModule"),
    # the interactive app; calling it imports Gradio (the optional extra cnnlab[explore])
    "explore": ("cnnlab.explore", "explore"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
