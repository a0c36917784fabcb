"""LeNet-5 (book 7.6, LeCun et al. 1998) and two variants: modern (ReLU, max pooling), BN (8.5).

The book writes LeNet as one ``nn.Sequential``; so does this file, with named
layers, so that ``cnnlab.summary`` prints the twelve rows of the book's
``layer_summary`` (SEEDS 7.6).

Example:
    >>> import torch
    >>> from cnnlab.models.lenet import lenet
    >>> net = lenet()
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> sum(p.numel() for p in net.parameters())
    61706
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models._common import check_input_side, check_positive, conv_out, init_cnn, require_side
from cnnlab.models.registry import register_model


class LeNet(nn.Sequential):
    """conv(6, 5x5) act pool, conv(16, 5x5) act pool, flatten, dense 120 -> 84 -> num_classes.

    ``activation``/``pool`` choose the book's sigmoid + average pooling or the modern
    ReLU + max pooling; ``batch_norm`` puts BN after every conv/linear, before the
    activation (book 8.5). ``padding`` is the first conv's: 2 in 7.6 (28 -> 28), 0 in
    the book's BNLeNet (28 -> 24). ``input_size`` (pixels) fixes the flatten size:
    28 gives 16 * 5 * 5 = 400 inputs to fc1 (the book's lazy linear layer infers it).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *,
                 activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d,
                 batch_norm: bool = False, padding: int = 2, input_size: int = 28,
                 name: str = "lenet") -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
        self.padding = padding
        side = require_side(name, input_size, self.feature_side, book_size=28)

        def bn(kind: type[nn.Module], num_features: int, key: str) -> list:
            return [(key, kind(num_features))] if batch_norm else []

        layers = [
            ("conv1", nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding)),
            *bn(nn.BatchNorm2d, 6, "bn1"),
            ("act1", activation()),
            ("pool1", pool(kernel_size=2, stride=2)),
            ("conv2", nn.Conv2d(6, 16, kernel_size=5)),
            *bn(nn.BatchNorm2d, 16, "bn2"),
            ("act2", activation()),
            ("pool2", pool(kernel_size=2, stride=2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(16 * side * side, 120)),
            *bn(nn.BatchNorm1d, 120, "bn3"),
            ("act3", activation()),
            ("fc2", nn.Linear(120, 84)),
            *bn(nn.BatchNorm1d, 84, "bn4"),
            ("act4", activation()),
            ("fc3", nn.Linear(84, num_classes)),
        ]
        super().__init__(OrderedDict(layers))
        self.name = name
        self.input_size = input_size
        self.apply(init_cnn)

    def feature_side(self, n: int) -> int:
        """Side of the last pooled feature map for an n x n input (pixels)."""
        n = conv_out(n, 5, padding=self.padding) // 2
        return conv_out(n, 5) // 2

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_input_side(self.name, X, self.input_size, self.feature_side)
        return super().forward(X)


@register_model("lenet", family="lenet", input_size=28, lr=0.1)
def lenet(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet:
    """LeNet-5 as in book 7.6: sigmoid activations and average pooling."""
    return LeNet(num_classes, in_channels, input_size=input_size, name="lenet")


@register_model("lenet-modern", family="lenet", input_size=28, lr=0.1)
def lenet_modern(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet:
    """LeNet-5 with ReLU and max pooling (the exercise of book 7.6)."""
    return LeNet(num_classes, in_channels, activation=nn.ReLU, pool=nn.MaxPool2d,
                 input_size=input_size, name="lenet-modern")


@register_model("lenet-bn", family="lenet", input_size=28, lr=0.1)
def lenet_bn(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet:
    """The book's BNLeNet (8.5): batch norm after each conv/linear, before the sigmoid."""
    return LeNet(num_classes, in_channels, batch_norm=True, padding=0, input_size=input_size,
                 name="lenet-bn")
