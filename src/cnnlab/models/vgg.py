"""VGG (book 8.2, Simonyan & Zisserman 2014): blocks of 3x3 convolutions, then a dense head.

An architecture is data, ``((num_convs, out_channels), ...)`` as in the book:
VGG-11 is ``((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))``; the users
trained the narrow ``((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))``. Every
block halves the side, so 5 blocks turn 224 into 7 (25088 = 512 * 7 * 7 values
for VGG-11).

Example:
    >>> import torch
    >>> from cnnlab.models.vgg import vgg
    >>> net = vgg(((1, 8), (1, 16)), input_size=28)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> [name for name, _ in net.named_children()][:3]
    ['block1', 'block2', 'flatten']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models._common import as_arch, check_input_side, check_positive, init_cnn, require_side
from cnnlab.models.registry import register_model

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG11_NARROW_ARCH = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))


class VGGBlock(nn.Sequential):
    """``num_convs`` x (3x3 conv, padding 1, ReLU), then 2x2 max pooling with stride 2."""

    def __init__(self, in_channels: int, num_convs: int, out_channels: int) -> None:
        layers: list[tuple[str, nn.Module]] = []
        for i in range(num_convs):
            layers.append((f"conv{i + 1}", nn.Conv2d(in_channels, out_channels, kernel_size=3,
                                                     padding=1)))
            layers.append((f"relu{i + 1}", nn.ReLU()))
            in_channels = out_channels
        layers.append(("pool", nn.MaxPool2d(kernel_size=2, stride=2)))
        super().__init__(OrderedDict(layers))


class VGG(nn.Sequential):
    """block1 ... blockN, flatten, fc1 relu dropout, fc2 relu dropout, fc3 (book 8.2)."""

    def __init__(self, arch: Sequence[tuple[int, int]] = VGG11_ARCH, num_classes: int = 10,
                 in_channels: int = 1, *, input_size: int = 224, hidden: int = 4096,
                 dropout: float = 0.5, name: str = "vgg") -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
        arch = as_arch(arch, 2, "vgg")
        self.num_blocks = len(arch)
        side = require_side(name, input_size, self.feature_side, book_size=224)
        layers: list[tuple[str, nn.Module]] = []
        for i, (num_convs, out_channels) in enumerate(arch):
            layers.append((f"block{i + 1}", VGGBlock(in_channels, num_convs, out_channels)))
            in_channels = out_channels
        layers += [
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(in_channels * side * side, hidden)),
            ("relu1", nn.ReLU()),
            ("dropout1", nn.Dropout(dropout)),
            ("fc2", nn.Linear(hidden, hidden)),
            ("relu2", nn.ReLU()),
            ("dropout2", nn.Dropout(dropout)),
            ("fc3", nn.Linear(hidden, num_classes)),
        ]
        super().__init__(OrderedDict(layers))
        self.arch = arch
        self.name = name
        self.input_size = input_size
        self.apply(init_cnn)

    def feature_side(self, n: int) -> int:
        """Side of the last block's output for an n x n input: each block halves it (floor)."""
        return n // 2 ** self.num_blocks

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_input_side(self.name, X, self.input_size, self.feature_side)
        return super().forward(X)


def vgg(arch: Sequence[tuple[int, int]], num_classes: int = 10, in_channels: int = 1,
        input_size: int = 224, **kwargs) -> VGG:
    """Any VGG: ``arch`` is ``((num_convs, out_channels), ...)``, one pair per block."""
    return VGG(arch, num_classes, in_channels, input_size=input_size, **kwargs)


@register_model("vgg11", family="vgg", input_size=224, lr=0.01)
def vgg11(num_classes: int = 10, in_channels: int = 1, input_size: int = 224,
          arch: Sequence[tuple[int, int]] = VGG11_ARCH, **kwargs) -> VGG:
    """VGG-11 as in book 8.2 (224x224 inputs; 128.8 M parameters)."""
    return VGG(arch, num_classes, in_channels, input_size=input_size, name="vgg11", **kwargs)


@register_model("vgg11-narrow", family="vgg", input_size=224, lr=0.01)
def vgg11_narrow(num_classes: int = 10, in_channels: int = 1, input_size: int = 224,
                 arch: Sequence[tuple[int, int]] = VGG11_NARROW_ARCH, **kwargs) -> VGG:
    """VGG-11 with channels divided by 4, the one the book (and the users) trained."""
    return VGG(arch, num_classes, in_channels, input_size=input_size, name="vgg11-narrow",
               **kwargs)
