"""AnyNet and RegNetX-32 (book 8.8, Radosavovic et al. 2020): stem, stages of ResNeXt blocks.

An AnyNet arch is ``((depth, num_channels, groups, bot_mul), ...)`` per stage with
the book's meaning of ``groups``: the group *width* (channels per group) of the
book's :class:`~cnnlab.models.resnet.ResNeXtBlock`. RegNetX-32: stem 32 channels,
``((4, 32, 16, 1), (6, 80, 16, 1))``. The stem (3x3 conv stride 2) and each stage
halve the side: 96 -> 48 -> 24 -> 12.

Example:
    >>> import torch
    >>> from cnnlab.models.regnet import regnetx32
    >>> net = regnetx32()
    >>> net(torch.zeros(2, 1, 96, 96)).shape
    torch.Size([2, 10])
    >>> net.stage2[0].conv2.groups   # 80 channels in groups of 16
    5
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from cnnlab.models._common import as_arch, check_positive, conv_out, init_cnn, pooled_head
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import ResNeXtBlock

REGNETX32_ARCH = ((4, 32, 16, 1), (6, 80, 16, 1))


def anynet_stage(in_channels: int, depth: int, num_channels: int, groups: int,
                 bot_mul: float) -> nn.Sequential:
    """``depth`` ResNeXt blocks; the first halves the side (strided, 1x1 conv on the shortcut)."""
    blocks = [ResNeXtBlock(in_channels, num_channels, groups, bot_mul, use_1x1conv=True,
                           strides=2)]
    blocks += [ResNeXtBlock(num_channels, num_channels, groups, bot_mul)
               for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


class AnyNet(nn.Sequential):
    """stem (3x3 conv stride 2, BN, ReLU), stage1 ... stageN, head (global pool, linear)."""

    def __init__(self, arch: Sequence[tuple[int, int, int, float]] = REGNETX32_ARCH,
                 stem_channels: int = 32, num_classes: int = 10, in_channels: int = 1) -> None:
        check_positive(num_classes=num_classes, in_channels=in_channels,
                       stem_channels=stem_channels)
        arch = as_arch(arch, 4, "anynet")
        layers: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(in_channels, stem_channels, kernel_size=3, stride=2, padding=1)),
            ("bn", nn.BatchNorm2d(stem_channels)),
            ("relu", nn.ReLU()),
        ])))]
        channels = stem_channels
        for i, (depth, num_channels, groups, bot_mul) in enumerate(arch):
            layers.append((f"stage{i + 1}", anynet_stage(channels, depth, num_channels, groups,
                                                         bot_mul)))
            channels = num_channels
        layers.append(("head", pooled_head(channels, num_classes)))
        super().__init__(OrderedDict(layers))
        self.arch = arch
        self.apply(init_cnn)

    def feature_side(self, n: int) -> int:
        """Side of the map entering global pooling for an n x n input (pixels)."""
        for _ in range(1 + len(self.arch)):  # stem and every stage: 3x3 conv, stride 2, pad 1
            n = conv_out(n, 3, stride=2, padding=1)
        return n


@register_model("regnetx32", family="regnet", input_size=96, lr=0.05)
def regnetx32(num_classes: int = 10, in_channels: int = 1,
              arch: Sequence[tuple[int, int, int, float]] = REGNETX32_ARCH,
              stem_channels: int = 32) -> AnyNet:
    """RegNetX-32 as in book 8.8: group width 16, no bottleneck, 32 and 80 channels."""
    return AnyNet(arch, stem_channels, num_classes, in_channels)
