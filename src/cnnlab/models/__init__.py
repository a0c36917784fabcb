"""The chapter 7-8 model zoo: every network of the book by name, explicit layers, real init.

Each family lives in its own file and registers its constructors with the
book's training defaults (:mod:`cnnlab.models.registry`). Every constructor takes
``num_classes=10, in_channels=1`` and initialises its weights (Xavier-uniform,
book 7.6) when it is built: no Lazy modules.

Example:
    >>> import torch
    >>> from cnnlab.models import create_model, list_models, min_input_size
    >>> "resnet18" in list_models()
    True
    >>> net = create_model("resnet18", num_classes=5, in_channels=3)
    >>> net(torch.zeros(2, 3, 96, 96)).shape
    torch.Size([2, 5])
    >>> min_input_size("vgg11")
    32
"""

from __future__ import annotations

import cnnlab.models.fast  # noqa: F401  (the fastnet family of the recipes)
from cnnlab.models import alexnet, densenet, googlenet, lenet, nin, regnet, resnet, vgg  # noqa: F401
from cnnlab.models._common import init_cnn
from cnnlab.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    min_input_size,
    register_model,
)
from cnnlab.models.scratch import to_scratch

__all__ = ["ModelInfo", "create_model", "get_model_info", "init_cnn", "list_models",
           "min_input_size", "register_model", "to_scratch"]
