"""The book's chapter 7-8 networks as d2l defines them: Lazy layers, shapes inferred
on the first forward pass (d2l 6.4), ``init_cnn`` applied afterwards.

This is a second implementation of models that ``cnnlab.models`` (the zoo) also
builds, on purpose: the d2l API (``from cnnlab import d2l``) must construct the book's
classes with the book's signatures and Lazy layers, which the zoo's explicit layers
cannot. tests/test_d2l_parity.py keeps the two equal: the same parameter counts, and
the same outputs once the zoo's weights are copied in.

Lazy layers are the book's surface, so they live here only (the rest of cnnlab builds
eager layers). Older PyTorch releases warn "Lazy modules are a new feature under heavy
development" on each construction; that warning is silenced at the point of
construction here (never globally).

Example:
    >>> import torch
    >>> from cnnlab import d2l
    >>> d2l.Residual(6, use_1x1conv=True, strides=2)(torch.randn(4, 3, 6, 6)).shape
    torch.Size([4, 6, 3, 3])
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab._d2l.core import Classifier
from cnnlab.models.resnet import ResidualBlock


@contextlib.contextmanager
def quiet_lazy() -> Iterator[None]:
    """Silence PyTorch's Lazy-module UserWarning for the constructions inside."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Lazy modules are a new feature",
                                category=UserWarning)
        yield


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform weights for every Linear and Conv2d (d2l 7.6).

    Exact type match, as the book's: un-materialised Lazy layers are skipped, so call
    it after a forward pass (``model.apply_init(...)``), when they have become
    ``nn.Linear`` / ``nn.Conv2d``.
    """
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


class LeNet(Classifier):
    """LeNet-5 (d2l 7.6): two sigmoid conv blocks with average pooling, three dense layers."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10) -> None:
        super().__init__()
        self.save_hyperparameters()
        with quiet_lazy():
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))


class Residual(ResidualBlock):
    """ResNet's residual block (d2l 8.6.2): 3x3 conv-BN-ReLU, 3x3 conv-BN, + input, ReLU.

    ``use_1x1conv`` sends the input through a 1x1 conv with ``strides`` so that it
    matches the new channel count and size. The zoo's block with the book's signature
    and Lazy layers (its forward is the zoo's).
    """

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1) -> None:
        nn.Module.__init__(self)  # the zoo's __init__ builds eager layers; these are lazy
        with quiet_lazy():
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            self.conv3 = (nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                          if use_1x1conv else None)
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()


class ResNeXtBlock(nn.Module):
    """ResNeXt block (d2l 8.6.5): 1x1 to round(num_channels*bot_mul), grouped 3x3, 1x1 back.

    As in the book the 3x3 conv gets ``bot_channels // groups`` groups, i.e. ``groups``
    is the number of channels per group.
    """

    def __init__(self, num_channels: int, groups: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1) -> None:
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        with quiet_lazy():
            self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
            self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides, padding=1,
                                       groups=bot_channels // groups)
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()
            self.bn3 = nn.LazyBatchNorm2d()
            if use_1x1conv:
                self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                self.bn4 = nn.LazyBatchNorm2d()
            else:
                self.conv4 = None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


# --- 8.2 and 8.6 models: the chapter's own cells define these; cnnlab.d2l adds them so
# that `d2l.VGG(...)` / `d2l.ResNet18()` also work (d2l 1.0.3 itself does not export them).


def vgg_block(num_convs: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` x (3x3 conv pad 1, ReLU), then 2x2 max-pool stride 2 (d2l 8.2.1)."""
    layers: list[nn.Module] = []
    with quiet_lazy():
        for _ in range(num_convs):
            layers += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(Classifier):
    """VGG (d2l 8.2.2): ``arch`` = ((num_convs, out_channels), ...), then 4096-4096-classes."""

    def __init__(self, arch: Sequence[tuple[int, int]], lr: float = 0.1,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.save_hyperparameters()
        blocks = [vgg_block(num_convs, out_channels) for num_convs, out_channels in arch]
        with quiet_lazy():
            self.net = nn.Sequential(
                *blocks, nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(num_classes))
        self.net.apply(init_cnn)


class ResNet(Classifier):
    """ResNet (d2l 8.6.3): stem, stages of Residual blocks, global average pool, dense."""

    def b1(self) -> nn.Sequential:
        with quiet_lazy():
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def block(self, num_residuals: int, num_channels: int, first_block: bool = False
              ) -> nn.Sequential:
        blk = [Residual(num_channels, use_1x1conv=True, strides=2)
               if i == 0 and not first_block else Residual(num_channels)
               for i in range(num_residuals)]
        return nn.Sequential(*blk)

    def __init__(self, arch: Sequence[tuple[int, int]], lr: float = 0.1,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(self.b1())
        for i, b in enumerate(arch):
            self.net.add_module(f"b{i + 2}", self.block(*b, first_block=(i == 0)))
        with quiet_lazy():
            self.net.add_module("last", nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))
        self.net.apply(init_cnn)


class ResNet18(ResNet):
    """ResNet-18: arch ((2, 64), (2, 128), (2, 256), (2, 512))."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10) -> None:
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)), lr, num_classes)
