"""Small BN-ReLU networks for time-to-accuracy on Fashion-MNIST at 28x28 (train/recipes.py).

Not a book model: the book's networks were designed for accuracy at 224x224 (or
96x96), not for a few CPU-seconds per epoch. ``fastnet`` follows the shape of the
fast CIFAR-10 ResNets (Page 2018, "How to train your ResNet"): a stem convolution,
stages of conv-BN-ReLU with max-pooling that halve the side, one residual pair of
3x3 convolutions in the widest stages, global max-pooling and a linear classifier
whose logits are scaled down (a cheap stand-in for a lower-temperature softmax).
The recipes ``fast-cpu`` and ``fast-cpu-93`` (cnnlab.train.recipes) train it.

Example:
    >>> import torch
    >>> from cnnlab.models import create_model
    >>> net = create_model("fastnet")
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models._common import check_positive, init_cnn
from cnnlab.models.registry import register_model


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias: BN has one), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ResidualPair(nn.Module):
    """X + (conv-BN-ReLU twice)(X): the residual pair of Page's ResNet-9."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(num_channels, num_channels),
                                  conv_bn(num_channels, num_channels))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X + self.body(X)


class FastNet(nn.Module):
    """stem conv + 2x2 max-pool, then per stage: conv-BN-ReLU, max-pool, optional residual.

    ``widths``: channels of the stem and of each stage; ``residual``: which stages
    (0-based) carry a residual pair; ``scale``: logits multiplier; ``stem_stride``: 1
    (stem conv at full size, then max-pool) or 2 (a stride-2 stem conv, cheaper).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 widths: Sequence[int] = (24, 48, 96, 192), residual: Sequence[int] = (0, 2),
                 scale: float = 0.125, stem_stride: int = 1) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths must list at least two positive channel counts, "
                             f"got {widths}")
        # Halve the side right after the stem (max-pool, or a stride-2 stem convolution,
        # which skips the full-resolution BN/ReLU/pool passes): every wider
        # convolution then runs at 14x14 or less.
        if stem_stride == 2:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(*conv_bn(in_channels, widths[0]), nn.MaxPool2d(2))
        stages = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers = [*conv_bn(c_in, c_out), nn.MaxPool2d(2)]
            if i in residual:
                layers.append(ResidualPair(c_out))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)
        self.scale = float(scale)
        self.apply(init_cnn)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.stages(self.stem(X))))) * self.scale


@register_model("fastnet", family="fastnet", input_size=28, lr=0.4)
def fastnet(num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32, 64),
            residual: Sequence[int] = (1,), scale: float = 0.125,
            stem_stride: int = 1) -> FastNet:
    """Small ResNet-9-like net for 28x28 (5.2 MFLOP per image): recipe fast-cpu."""
    return FastNet(num_classes, in_channels, widths, residual, scale, stem_stride)


@register_model("fastnet-wide", family="fastnet", input_size=28, lr=0.4)
def fastnet_wide(num_classes: int = 10, in_channels: int = 1,
                 widths: Sequence[int] = (16, 32, 64, 128), residual: Sequence[int] = (0, 1),
                 scale: float = 0.125, stem_stride: int = 1) -> FastNet:
    """Deeper ResNet-9-like net for 28x28 (8.3 MFLOP per image): recipe fast-cpu-93."""
    return FastNet(num_classes, in_channels, widths, residual, scale, stem_stride)
