"""Will a training run fit in memory? An estimate made before the first batch.

The weights were counted before they were allocated (:func:`cnnlab.models.create_model`
builds a shape-only copy on the ``meta`` device first). Here one image goes through
the model in eval mode without gradients; the outputs of its layers are what autograd
keeps for the backward pass, per image. Training needs about the weights, their
gradients and the optimizer's state (one buffer for momentum, two for AdamW), plus
``batch_size`` times those activations and as much again for their gradients. It is
a lower bound on what PyTorch will ask for: a run it refuses could not have run, so an
absurd ``--batch-size`` or ``--resize`` is one clear line instead of the OOM killer.

Example:
    >>> from cnnlab.models import create_model
    >>> b = training_bytes(create_model("lenet"), batch_size=128, in_channels=1,
    ...                    input_size=28)
    >>> 1 < b / 2**20 < 100  # MiB
    True
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.guards import check_memory

__all__ = ["training_bytes", "check_training_memory"]

_OPTIMIZER_BUFFERS = {"sgd": 0, "momentum": 1, "adamw": 2}


def training_bytes(model: nn.Module, batch_size: int, in_channels: int, input_size: int,
                   optimizer: str = "sgd") -> int | None:
    """Bytes one training step of ``model`` needs at least; None if it cannot tell."""
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    first = next(model.parameters(), None)
    if first is None:
        return None
    hooks = [m.register_forward_hook(count) for m in model.modules()
             if not list(m.children())]
    was_training = model.training
    try:
        model.eval()  # no dropout draws, no batch-norm statistics updated: nothing changes
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size, device=first.device,
                              dtype=first.dtype))
    except (RuntimeError, ValueError, TypeError):  # the run itself will say what is wrong
        return None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    # weights + gradients + optimizer buffers; activations + their gradients, per image
    return params * (2 + _OPTIMIZER_BUFFERS.get(optimizer, 2)) + 2 * total * batch_size


def check_training_memory(model: nn.Module, batch_size: int, in_channels: int,
                          input_size: int, optimizer: str = "sgd", name: str | None = None
                          ) -> None:
    """ConfigError naming batch_size= and resize= when a CPU run cannot fit in memory."""
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu":
        return  # GPU memory is the CUDA allocator's to report ("out of memory")
    need = training_bytes(model, batch_size, in_channels, input_size, optimizer)
    if need is not None:
        name = name or type(model).__name__
        check_memory(need, f"training {name} with batch_size={batch_size} at "
                     f"resize={input_size}", "use a smaller batch_size= or resize=, or a "
                     "smaller model")
