"""cnnlab.d2l's lazy models are the zoo's models: same parameter counts, same outputs.

``cnnlab/_d2l/models.py`` re-implements the book's networks with Lazy layers (the
d2l API); ``cnnlab.models`` builds them with explicit layers. After one forward pass
materialises the lazy layers, the zoo's weights are copied into the d2l model tensor
by tensor, in order, and both must compute the same logits.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab import d2l
from cnnlab.models import create_model

# (d2l constructor, zoo name, zoo kwargs, input side)
CASES = {
    "lenet": (lambda: d2l.LeNet(), "lenet", {}, 28),
    "resnet18": (lambda: d2l.ResNet18(), "resnet18", {}, 96),
    "vgg": (lambda: d2l.VGG(((1, 8), (1, 16))), "vgg11",
            {"arch": ((1, 8), (1, 16)), "input_size": 32}, 32),
}


def _tensors(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and buffers in registration order (BN's batch counter left out)."""
    return [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_d2l_model_matches_the_zoo(name):
    make_d2l, zoo_name, kwargs, side = CASES[name]
    torch.manual_seed(0)
    zoo = create_model(zoo_name, **kwargs).eval()
    book = make_d2l().eval()
    X = torch.rand(2, 1, side, side)
    with torch.no_grad():
        book(X)  # materialise the Lazy layers
    count = sum(p.numel() for p in zoo.parameters())
    assert sum(p.numel() for p in book.parameters()) == count

    ours, theirs = _tensors(zoo), _tensors(book)
    assert [v.shape for _, v in ours] == [v.shape for _, v in theirs]
    with torch.no_grad():
        for (_, src), (_, dst) in zip(ours, theirs, strict=True):
            dst.copy_(src)
        # BN layers: non-trivial running statistics, so eval mode really uses them
        for (key, src), (_, dst) in zip(ours, theirs, strict=True):
            if key.endswith("running_var"):
                src.uniform_(0.5, 2.0)
                dst.copy_(src)
        want, got = zoo(X), book(X)
    assert got.shape == want.shape == (2, 10)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # and the same for a different set of weights: nothing was left at a shared default
    assert not torch.allclose(want, create_model(zoo_name, **kwargs).eval()(X))
