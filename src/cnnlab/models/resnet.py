"""ResNet (book 8.6, He et al. 2016) and ResNeXt (Xie et al. 2017): residual blocks, any arch.

An architecture is data, ``((num_residuals, num_channels), ...)`` one pair per
stage, as in the book: ResNet-18 is ``((2, 64), (2, 128), (2, 256), (2, 512))``.
Every network is ``stem`` (7x7 conv stride 2, BN, ReLU, 3x3 max pool stride 2),
``stage1`` ... ``stageN`` (the first block of every stage but the first halves
the side through a strided 1x1 conv on the shortcut) and ``head`` (global
average pooling, flatten, linear).

Two ResNeXt block classes, the same layers and parameter names:

* :class:`ResNeXtBlock` is the book's: its ``groups`` argument is passed to the
  3x3 convolution as ``bot_channels // groups``, so the book's ``groups`` is the
  *width of each group* (channels per group; "g = 16 (group width is 16)" in book
  8.8). ``ResNeXtBlock(32, 32, 16, 1)`` has 32 bottleneck channels in 2 groups.
* :class:`ResNeXtBottleneck` takes ``groups`` = the *number of groups*, like
  ``nn.Conv2d``; ``resnext18`` is built from it.

Example:
    >>> import torch
    >>> from cnnlab.models.resnet import ResidualBlock, ResNeXtBlock, resnet18
    >>> ResidualBlock(3, 6, use_1x1conv=True, strides=2)(torch.zeros(4, 3, 6, 6)).shape
    torch.Size([4, 6, 3, 3])
    >>> blk = ResNeXtBlock(32, 32, 16, 1)
    >>> blk(torch.zeros(4, 32, 96, 96)).shape, blk.conv2.groups
    (torch.Size([4, 32, 96, 96]), 2)
    >>> sum(p.numel() for p in resnet18().parameters())
    11178378
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from cnnlab.errors import ConfigError
from cnnlab.models._common import as_arch, check_positive, conv_out, init_cnn, pooled_head
from cnnlab.models.registry import register_model

RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))


def _check_shortcut(in_channels: int, num_channels: int, use_1x1conv: bool, strides: int) -> None:
    if not use_1x1conv and (in_channels != num_channels or strides != 1):
        raise ConfigError(f"a residual block from {in_channels} to {num_channels} channels with "
                          f"stride {strides} needs use_1x1conv=True to reshape its shortcut")


class ResidualBlock(nn.Module):
    """The book's residual block (fig. 8.6.3): conv3x3(stride) BN ReLU conv3x3 BN, + X, ReLU.

    With ``use_1x1conv`` the shortcut is a 1x1 conv with the same stride, so the
    block may change the number of channels and halve the side.
    """

    def __init__(self, in_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1, *, book: bool = False) -> None:
        # book=True: as d2l 0.17's Residual, PyTorch's default init and no shortcut check
        super().__init__()
        if not book:
            _check_shortcut(in_channels, num_channels, use_1x1conv, strides)
        self.conv1 = nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(in_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)
        if not book:
            self.apply(init_cnn)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


class ResNeXtBottleneck(nn.Module):
    """ResNeXt block (book fig. 8.6.5) whose ``groups`` is the number of groups of the 3x3 conv.

    1x1 conv to ``bot_channels = int(round(num_channels * bot_mul))``, 3x3 conv in
    ``groups`` groups (stride ``strides``), 1x1 conv back to ``num_channels``, BN
    after each, ReLU after the first two; the shortcut (a strided 1x1 conv + BN
    when ``use_1x1conv``) is added before the last ReLU.
    """

    def __init__(self, in_channels: int, num_channels: int, groups: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1) -> None:
        super().__init__()
        _check_shortcut(in_channels, num_channels, use_1x1conv, strides)
        bot_channels = int(round(num_channels * bot_mul))
        if groups < 1 or bot_channels < 1 or bot_channels % groups:
            raise ConfigError(f"a ResNeXt block with {bot_channels} bottleneck channels "
                              f"(num_channels {num_channels} x bot_mul {bot_mul}) cannot be "
                              f"split into {groups} groups; pick groups dividing {bot_channels}")
        self.conv1 = nn.Conv2d(in_channels, bot_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(bot_channels, bot_channels, kernel_size=3, stride=strides,
                               padding=1, groups=groups)
        self.conv3 = nn.Conv2d(bot_channels, num_channels, kernel_size=1)
        self.bn1 = nn.BatchNorm2d(bot_channels)
        self.bn2 = nn.BatchNorm2d(bot_channels)
        self.bn3 = nn.BatchNorm2d(num_channels)
        if use_1x1conv:
            self.conv4 = nn.Conv2d(in_channels, num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.BatchNorm2d(num_channels)
        else:
            self.conv4 = None
            self.bn4 = None
        self.apply(init_cnn)

    @property
    def num_groups(self) -> int:
        """Number of groups of the 3x3 convolution."""
        return self.conv2.groups

    @property
    def group_width(self) -> int:
        """Channels per group of the 3x3 convolution."""
        return self.conv2.in_channels // self.conv2.groups

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


class ResNeXtBlock(ResNeXtBottleneck):
    """The book's ``ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv, strides)`` (8.6).

    Exactly the book's semantics, plus an explicit ``in_channels``: the 3x3 conv
    has ``bot_channels // groups`` groups, i.e. the book's ``groups`` is the group
    *width* (channels per group). ``ResNeXtBlock(32, 32, 16, 1)``: 32 bottleneck
    channels in 2 groups of 16. Use :class:`ResNeXtBottleneck` to give the number
    of groups directly.
    """

    def __init__(self, in_channels: int, num_channels: int, groups: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1) -> None:
        bot_channels = int(round(num_channels * bot_mul))
        if groups < 1 or bot_channels // groups < 1:
            raise ConfigError(f"ResNeXtBlock groups (the group width) must be between 1 and "
                              f"the {bot_channels} bottleneck channels, got {groups}")
        super().__init__(in_channels, num_channels, bot_channels // groups, bot_mul,
                         use_1x1conv=use_1x1conv, strides=strides)


BlockFn = Callable[..., nn.Module]  # (in_channels, num_channels, use_1x1conv=, strides=)


def stem(in_channels: int, num_channels: int = 64) -> nn.Sequential:
    """The book's ResNet/GoogLeNet/DenseNet first stage: conv 7x7/2, BN, ReLU, max pool 3x3/2.

    It divides the side by 4: 96 -> 24, 224 -> 56.
    """
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, num_channels, kernel_size=7, stride=2, padding=3)),
        ("bn", nn.BatchNorm2d(num_channels)),
        ("relu", nn.ReLU()),
        ("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
    ]))


def stage(block_fn: BlockFn, in_channels: int, num_residuals: int, num_channels: int,
          first_block: bool = False) -> nn.Sequential:
    """``num_residuals`` blocks; unless ``first_block`` the first one halves the side (book 8.6)."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(block_fn(in_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(block_fn(in_channels, num_channels,
                                   use_1x1conv=in_channels != num_channels))
        in_channels = num_channels
    return nn.Sequential(*blocks)


class ResNet(nn.Sequential):
    """stem, stage1 ... stageN, head; ``block_fn`` builds each block (default: ResidualBlock)."""

    def __init__(self, arch: Sequence[tuple[int, int]] = RESNET18_ARCH, num_classes: int = 10,
                 in_channels: int = 1, *, block_fn: BlockFn = ResidualBlock,
                 stem_channels: int = 64) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels)
        arch = as_arch(arch, 2, "resnet")
        layers: list[tuple[str, nn.Module]] = [("stem", stem(in_channels, stem_channels))]
        channels = stem_channels
        for i, (num_residuals, num_channels) in enumerate(arch):
            layers.append((f"stage{i + 1}", stage(block_fn, channels, num_residuals,
                                                  num_channels, first_block=i == 0)))
            channels = num_channels
        layers.append(("head", pooled_head(channels, num_classes)))
        super().__init__(OrderedDict(layers))
        self.arch = arch
        self.apply(init_cnn)

    def feature_side(self, n: int) -> int:
        """Side of the map entering global pooling for an n x n input (pixels)."""
        n = conv_out(conv_out(n, 7, stride=2, padding=3), 3, stride=2, padding=1)  # stem
        for _ in self.arch[1:]:  # every stage but the first halves: 3x3 conv, stride 2, pad 1
            n = conv_out(n, 3, stride=2, padding=1)
        return n


def resnet(arch: Sequence[tuple[int, int]], num_classes: int = 10, in_channels: int = 1,
           **kwargs) -> ResNet:
    """Any ResNet of the book's residual blocks: ``arch`` = ((num_residuals, num_channels), ...)."""
    return ResNet(arch, num_classes, in_channels, **kwargs)


def resnext(arch: Sequence[tuple[int, int]], num_classes: int = 10, in_channels: int = 1,
            groups: int = 16, bot_mul: float = 1.0, **kwargs) -> ResNet:
    """Any ResNet-shaped ResNeXt; ``groups`` = number of groups of every 3x3 conv."""
    block_fn = functools.partial(ResNeXtBottleneck, groups=groups, bot_mul=bot_mul)
    return ResNet(arch, num_classes, in_channels, block_fn=block_fn, **kwargs)


@register_model("resnet18", family="resnet", input_size=96, lr=0.01)
def resnet18(num_classes: int = 10, in_channels: int = 1,
             arch: Sequence[tuple[int, int]] = RESNET18_ARCH) -> ResNet:
    """ResNet-18 as in book 8.6 (96x96 inputs; 11.2 M parameters)."""
    return ResNet(arch, num_classes, in_channels)


@register_model("resnet34", family="resnet", input_size=96, lr=0.01)
def resnet34(num_classes: int = 10, in_channels: int = 1,
             arch: Sequence[tuple[int, int]] = RESNET34_ARCH) -> ResNet:
    """ResNet-34: the book's blocks in stages of 3, 4, 6, 3 (He et al. 2016, table 1)."""
    return ResNet(arch, num_classes, in_channels)


@register_model("resnext18", family="resnext", input_size=96, lr=0.05)
def resnext18(num_classes: int = 10, in_channels: int = 1,
              arch: Sequence[tuple[int, int]] = RESNET18_ARCH, groups: int = 16,
              bot_mul: float = 1.0) -> ResNet:
    """ResNet-18's shape built of ResNeXt blocks: 16 groups per 3x3 conv, no bottleneck."""
    return resnext(arch, num_classes, in_channels, groups=groups, bot_mul=bot_mul)
