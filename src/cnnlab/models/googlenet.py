"""GoogLeNet (book 8.4, Szegedy et al. 2015): five stages, nine Inception blocks, 96x96 inputs.

Example:
    >>> import torch
    >>> from cnnlab.models.googlenet import Inception, googlenet
    >>> Inception(192, 64, (96, 128), (16, 32), 32)(torch.zeros(1, 192, 12, 12)).shape
    torch.Size([1, 256, 12, 12])
    >>> googlenet()(torch.zeros(2, 1, 96, 96)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from cnnlab.models._common import check_positive, conv_out, init_cnn
from cnnlab.models.registry import register_model


class Inception(nn.Module):
    """Four parallel paths concatenated on channels (book fig. 8.4.1).

    c1: 1x1 conv; c2: 1x1 then 3x3 (pad 1); c3: 1x1 then 5x5 (pad 2); c4: 3x3 max
    pool (stride 1, pad 1) then 1x1. Output channels: c1 + c2[1] + c3[1] + c4.
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int],
                 c4: int) -> None:
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        b1 = F.relu(self.b1_1(X))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(X))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(X))))
        b4 = F.relu(self.b4_2(self.b4_1(X)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class GoogLeNet(nn.Sequential):
    """b1 (7x7 conv), b2 (1x1, 3x3 conv), b3 (2 Inception), b4 (5), b5 (2 + global pool), fc."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels)
        b1 = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)),
            ("relu", nn.ReLU()),
            ("pool", _pool()),
        ]))
        b2 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(64, 64, kernel_size=1)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(64, 192, kernel_size=3, padding=1)),
            ("relu2", nn.ReLU()),
            ("pool", _pool()),
        ]))
        b3 = nn.Sequential(OrderedDict([
            ("inception1", Inception(192, 64, (96, 128), (16, 32), 32)),  # -> 256
            ("inception2", Inception(256, 128, (128, 192), (32, 96), 64)),  # -> 480
            ("pool", _pool()),
        ]))
        b4 = nn.Sequential(OrderedDict([
            ("inception1", Inception(480, 192, (96, 208), (16, 48), 64)),  # -> 512
            ("inception2", Inception(512, 160, (112, 224), (24, 64), 64)),  # -> 512
            ("inception3", Inception(512, 128, (128, 256), (24, 64), 64)),  # -> 512
            ("inception4", Inception(512, 112, (144, 288), (32, 64), 64)),  # -> 528
            ("inception5", Inception(528, 256, (160, 320), (32, 128), 128)),  # -> 832
            ("pool", _pool()),
        ]))
        b5 = nn.Sequential(OrderedDict([
            ("inception1", Inception(832, 256, (160, 320), (32, 128), 128)),  # -> 832
            ("inception2", Inception(832, 384, (192, 384), (48, 128), 128)),  # -> 1024
            ("gap", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
        ]))
        super().__init__(OrderedDict([("b1", b1), ("b2", b2), ("b3", b3), ("b4", b4),
                                      ("b5", b5), ("fc", nn.Linear(1024, num_classes))]))
        self.apply(init_cnn)

    @staticmethod
    def feature_side(n: int) -> int:
        """Side of the map entering global pooling for an n x n input (pixels)."""
        n = conv_out(n, 7, stride=2, padding=3)
        for _ in range(4):  # the pools of b1-b4; Inception blocks keep the side
            n = conv_out(n, 3, stride=2, padding=1)
        return n


@register_model("googlenet", family="googlenet", input_size=96, lr=0.01)
def googlenet(num_classes: int = 10, in_channels: int = 1) -> GoogLeNet:
    """GoogLeNet as in book 8.4 (96x96 inputs)."""
    return GoogLeNet(num_classes, in_channels)
