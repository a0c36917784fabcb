"""See inside a trained network: kernels, feature maps, activations, mistakes (d2l 7.2-7.6).

Each function returns its numbers and a matplotlib ``Figure`` (``result.figure``:
shown inline in a notebook, or ``result.figure.savefig("x.png")``); the figures use
matplotlib's object API, so no display or pyplot state is needed. ``cnnlab viz``
writes them as PNG files from a checkpoint.

Example:
    >>> import torch; from torch import nn
    >>> from cnnlab import viz
    >>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(6 * 28 * 28, 10))
    >>> viz.kernels(net).weights.shape
    torch.Size([6, 1, 5, 5])
"""

from __future__ import annotations

from cnnlab.viz._common import MAX_IMAGE_PIXELS, EvalSet, eval_set, load_image, to_model_input
from cnnlab.viz.activations import ActivationsResult, activations
from cnnlab.viz.errors import ConfusionResult, ErrorsResult, confusion, errors
from cnnlab.viz.maps import FeaturesResult, KernelsResult, features, kernels

__all__ = ["kernels", "features", "activations", "errors", "confusion", "load_image",
           "to_model_input", "eval_set", "EvalSet", "KernelsResult", "FeaturesResult",
           "ActivationsResult", "ErrorsResult", "ConfusionResult", "MAX_IMAGE_PIXELS"]
