"""Network in Network (book 8.3, Lin et al. 2013): 1x1 convolutions and a global-average head.

No dense layers: the last NiN block emits one channel per class and global
average pooling turns each into a logit, so any input of at least the minimum
side works (224 in the book).

Example:
    >>> import torch
    >>> from cnnlab.models.nin import nin
    >>> net = nin()
    >>> net(torch.zeros(2, 1, 96, 96)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models._common import check_min_side, check_positive, conv_out, init_cnn, smallest_side
from cnnlab.models.registry import register_model


class NiNBlock(nn.Sequential):
    """conv(kernel_size, strides, padding) ReLU, then two 1x1 conv + ReLU (book's nin_block)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, strides: int,
                 padding: int) -> None:
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(out_channels, out_channels, kernel_size=1)),
            ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(out_channels, out_channels, kernel_size=1)),
            ("relu3", nn.ReLU()),
        ]))


class NiN(nn.Sequential):
    """Four NiN blocks with max pooling between them, dropout, global average pooling."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *,
                 dropout: float = 0.5) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels)
        super().__init__(OrderedDict([
            ("block1", NiNBlock(in_channels, 96, kernel_size=11, strides=4, padding=0)),
            ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("block2", NiNBlock(96, 256, kernel_size=5, strides=1, padding=2)),
            ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("block3", NiNBlock(256, 384, kernel_size=3, strides=1, padding=1)),
            ("pool3", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("dropout", nn.Dropout(dropout)),
            ("block4", NiNBlock(384, num_classes, kernel_size=3, strides=1, padding=1)),
            ("gap", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten()),
        ]))
        self.min_side = smallest_side(self.feature_side)
        self.apply(init_cnn)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_min_side("nin", X, self.min_side, book_size=224)
        return super().forward(X)

    @staticmethod
    def feature_side(n: int) -> int:
        """Side of the map entering global pooling for an n x n input (pixels)."""
        n = conv_out(n, 11, stride=4)
        for _ in range(3):  # pool1-3; blocks 2-4 keep the side (padding (k - 1) / 2)
            n = conv_out(n, 3, stride=2)
        return n


@register_model("nin", family="nin", input_size=224, lr=0.05)
def nin(num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> NiN:
    """Network in Network as in book 8.3 (224x224 inputs in the book)."""
    return NiN(num_classes, in_channels, dropout=dropout)
