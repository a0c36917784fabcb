"""DenseNet (book 8.7, Huang et al. 2017): dense blocks that concatenate, transition layers.

Book defaults: 64 stem channels, growth rate 32, four dense blocks of 4 conv
blocks each; every transition halves channels and side. 96x96 inputs.

Example:
    >>> import torch
    >>> from cnnlab.models.densenet import DenseBlock, densenet
    >>> DenseBlock(3, 2, 10)(torch.zeros(4, 3, 8, 8)).shape   # 3 + 2 * 10 channels
    torch.Size([4, 23, 8, 8])
    >>> densenet()(torch.zeros(2, 1, 96, 96)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models._common import check_min_side, check_positive, conv_out, init_cnn, smallest_side
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import stem


def conv_block(in_channels: int, num_channels: int) -> nn.Sequential:
    """BN, ReLU, 3x3 conv (padding 1): the pre-activation order of book 8.7."""
    return nn.Sequential(OrderedDict([
        ("bn", nn.BatchNorm2d(in_channels)),
        ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1)),
    ]))


class DenseBlock(nn.Module):
    """``num_convs`` conv blocks; each sees the concatenation of the input and all before it.

    ``num_channels`` is the growth rate: the output has
    ``in_channels + num_convs * num_channels`` channels.
    """

    def __init__(self, in_channels: int, num_convs: int, num_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*(conv_block(in_channels + i * num_channels, num_channels)
                                   for i in range(num_convs)))
        self.out_channels = in_channels + num_convs * num_channels

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)  # concatenate on channels (book eq. 8.7.2)
        return X


def transition_block(in_channels: int, num_channels: int) -> nn.Sequential:
    """BN, ReLU, 1x1 conv to ``num_channels``, 2x2 average pool with stride 2 (halves the side)."""
    return nn.Sequential(OrderedDict([
        ("bn", nn.BatchNorm2d(in_channels)),
        ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(in_channels, num_channels, kernel_size=1)),
        ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
    ]))


class DenseNet(nn.Sequential):
    """stem, dense1, trans1, ..., denseN, head (BN, ReLU, global average pool, linear)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, num_channels: int = 64,
                 growth_rate: int = 32, arch: Sequence[int] = (4, 4, 4, 4)) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels,
                       num_channels=num_channels, growth_rate=growth_rate)
        arch = tuple(arch)
        if not arch or any(not isinstance(n, int) or n < 1 for n in arch):
            raise ConfigError(f"densenet arch must be convs per dense block like (4, 4, 4, 4), "
                              f"got {arch!r}")
        layers: list[tuple[str, nn.Module]] = [("stem", stem(in_channels, num_channels))]
        for i, num_convs in enumerate(arch):
            layers.append((f"dense{i + 1}", DenseBlock(num_channels, num_convs, growth_rate)))
            num_channels += num_convs * growth_rate
            if i != len(arch) - 1:  # a transition halves the channels between dense blocks
                layers.append((f"trans{i + 1}", transition_block(num_channels,
                                                                 num_channels // 2)))
                num_channels //= 2
        layers.append(("head", nn.Sequential(OrderedDict([
            ("bn", nn.BatchNorm2d(num_channels)),
            ("relu", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(num_channels, num_classes)),
        ]))))
        super().__init__(OrderedDict(layers))
        self.num_transitions = len(arch) - 1
        self.min_side = smallest_side(self.feature_side)
        self.apply(init_cnn)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_min_side("densenet", X, self.min_side, book_size=96)
        return super().forward(X)

    def feature_side(self, n: int) -> int:
        """Side of the map entering global pooling for an n x n input (pixels)."""
        n = conv_out(conv_out(n, 7, stride=2, padding=3), 3, stride=2, padding=1)  # stem
        return n // 2 ** self.num_transitions  # 2x2 average pools, stride 2, no padding


@register_model("densenet", family="densenet", input_size=96, lr=0.01)
def densenet(num_classes: int = 10, in_channels: int = 1, num_channels: int = 64,
             growth_rate: int = 32, arch: Sequence[int] = (4, 4, 4, 4)) -> DenseNet:
    """DenseNet as in book 8.7: 64 channels, growth rate 32, arch (4, 4, 4, 4)."""
    return DenseNet(num_classes, in_channels, num_channels=num_channels,
                    growth_rate=growth_rate, arch=arch)
