"""See inside your own network, interactively: ``cnnlab explore`` and ``cnnlab.explore(...)``.

Three views in one local web app (Gradio, the optional extra ``cnnlab[explore]``):

- **Convolution** (d2l 7.2-7.5): an image, a kernel, padding/stride/dilation and pooling;
  the output map, the output-size formula filled in, the window sliding step by step,
  and the 1x1 convolution as a matrix product.
- **Model** (7.6, 8.x): a checkpoint's top-k prediction, the feature maps of every conv
  stage, the first layer's kernels, the receptive field of a clicked unit and the
  activation statistics for test images, noise and unfamiliar shapes.
- **Runs**: the curves and final metrics of the runs under the folders given, live.

Importing this package does not import Gradio; :func:`explore` does.

Example:
    >>> import cnnlab
    >>> net = cnnlab.create_model("lenet")
    >>> app = cnnlab.explore(net)  # doctest: +SKIP
    >>> app.close()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["explore"]


def explore(model_or_checkpoint: Any = None, *, runs: Sequence[str | os.PathLike] = (),
            input_size: int | None = None, dataset: str = "fashion-mnist",
            classes: list[str] | None = None, host: str = "127.0.0.1", port: int | None = None,
            inline: bool | None = None, open_browser: bool = False) -> Any:
    """Start the explore app for a model object, a checkpoint or a run folder.

    In Jupyter and Colab the app shows inline under the cell (it keeps running in the
    background; ``app.close()`` stops it). ``model_or_checkpoint``: an ``nn.Module``
    (its inputs are ``input_size`` images of ``dataset``, default 28), a checkpoint
    file or a run folder (then its checkpoints and metrics are offered). ``runs``: more
    run folders for the Model and Runs views. Returns the running app
    (:class:`cnnlab.explore.app.Running`: ``url``, ``port``, ``close()``, ``demo``).
    """
    from torch import nn

    from cnnlab.explore.app import import_gradio, launch
    from cnnlab.explore.paths import Library

    import_gradio()  # says how to install Gradio before anything else happens
    own = None
    paths = list(runs)
    if isinstance(model_or_checkpoint, nn.Module):
        from cnnlab.explore.model_view import from_module

        own = from_module(model_or_checkpoint, input_size or 28, classes, dataset)
    elif model_or_checkpoint is not None:
        paths.insert(0, model_or_checkpoint)
    return launch(Library(paths), own, host=host, port=port, open_browser=open_browser,
                  inline=inline, block=False)


class _CallableModule(types.ModuleType):
    """``cnnlab.explore`` is this package once a submodule is imported; calling it calls
    :func:`explore`, so ``cnnlab.explore(net)`` works either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
