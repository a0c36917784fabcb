"""AlexNet (book 8.1, Krizhevsky et al. 2012) for 224x224 inputs, one channel by default.

The book's layers exactly: five convolutions (11x11/4, 5x5, three 3x3), three max
pools, two dense layers of 4096 with dropout 0.5. At 224 the last feature map is
256 x 5 x 5 = 6400 values.

Example:
    >>> import torch
    >>> from cnnlab.models.alexnet import alexnet
    >>> with torch.device("meta"):
    ...     net = alexnet()
    >>> net(torch.zeros(2, 1, 224, 224, device="meta")).shape
    torch.Size([2, 10])
    >>> net.fc1.in_features
    6400
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models._common import check_input_side, check_positive, conv_out, init_cnn, require_side
from cnnlab.models.registry import register_model


class AlexNet(nn.Sequential):
    """The book's AlexNet as one Sequential of named layers (book 8.1)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, input_size: int = 224,
                 dropout: float = 0.5) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
        side = require_side("alexnet", input_size, self.feature_side, book_size=224)
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1)),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2)),
            ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)),
            ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1)),
            ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1)),
            ("relu5", nn.ReLU()),
            ("pool3", nn.MaxPool2d(kernel_size=3, stride=2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(256 * side * side, 4096)),
            ("relu6", nn.ReLU()),
            ("dropout1", nn.Dropout(dropout)),
            ("fc2", nn.Linear(4096, 4096)),
            ("relu7", nn.ReLU()),
            ("dropout2", nn.Dropout(dropout)),
            ("fc3", nn.Linear(4096, num_classes)),
        ]))
        self.input_size = input_size
        self.apply(init_cnn)

    @staticmethod
    def feature_side(n: int) -> int:
        """Side of the last pooled feature map for an n x n input (pixels)."""
        n = conv_out(n, 11, stride=4, padding=1)
        n = conv_out(n, 3, stride=2)  # pool1; conv2 (5x5, pad 2) keeps the side
        n = conv_out(n, 3, stride=2)  # pool2; conv3-5 (3x3, pad 1) keep it
        return conv_out(n, 3, stride=2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_input_side("alexnet", X, self.input_size, self.feature_side)
        return super().forward(X)


@register_model("alexnet", family="alexnet", input_size=224, lr=0.01)
def alexnet(num_classes: int = 10, in_channels: int = 1, input_size: int = 224,
            dropout: float = 0.5) -> AlexNet:
    """AlexNet as in book 8.1 (224x224 inputs)."""
    return AlexNet(num_classes, in_channels, input_size=input_size, dropout=dropout)
