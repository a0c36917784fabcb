"""Layers built on :mod:`cnnlab.ops`: the book's Conv2D and drop-in nn replacements.

``ScratchConv2d``, ``ScratchMaxPool2d`` and ``ScratchAvgPool2d`` have the
constructor arguments, parameter names (``weight``, ``bias``), attributes and
default initialisation of ``nn.Conv2d`` / ``nn.MaxPool2d`` / ``nn.AvgPool2d``, so a
state_dict loads in either direction and a model can swap one for the other.

Example:
    >>> import torch
    >>> from torch import nn
    >>> conv = ScratchConv2d(3, 8, kernel_size=3, padding=1)
    >>> ref = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    >>> _ = ref.load_state_dict(conv.state_dict())
    >>> X = torch.randn(2, 3, 8, 8)
    >>> bool(torch.allclose(conv(X), ref(X), atol=1e-5))
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import ops
from cnnlab.errors import ConfigError
from cnnlab.guards import check_int
from cnnlab.ops.shape import IntOrPair, nonnegative_pair, positive_pair

__all__ = ["Conv2D", "ScratchAvgPool2d", "ScratchConv2d", "ScratchMaxPool2d"]


class Conv2D(nn.Module):
    """The book's learnable single-channel layer (d2l 7.2.2): ``corr2d(x, weight) + bias``.

    ``weight`` is uniform random in [0, 1) of shape ``kernel_size``; ``bias`` is ``zeros(1)``.

    Example:
        >>> layer = Conv2D((1, 2))
        >>> layer(torch.ones(6, 8)).shape
        torch.Size([6, 7])
    """

    def __init__(self, kernel_size: IntOrPair) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(positive_pair(kernel_size, "kernel_size")))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.corr2d(x, self.weight) + self.bias


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class ScratchConv2d(nn.Module):
    """``nn.Conv2d`` on :func:`cnnlab.ops.conv2d`: same arguments, parameters and init.

    Example:
        >>> conv = ScratchConv2d(1, 6, kernel_size=5, padding=2)
        >>> conv
        ScratchConv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
        >>> conv(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 6, 28, 28])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups)):
            check_int(name, value)
        if in_channels % groups or out_channels % groups:
            raise ConfigError(f"groups={groups} must divide in_channels={in_channels} and "
                              f"out_channels={out_channels}")
        if padding_mode not in _PADDING_MODES:
            raise ConfigError(f"padding_mode must be one of {_PADDING_MODES}, "
                              f"got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = positive_pair(stride, "stride")
        self.dilation = positive_pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ConfigError(f"padding must be an int, a pair, 'valid' or 'same', "
                                  f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ConfigError("padding='same' needs stride 1; pass explicit padding")
            self.padding: tuple[int, int] | str = padding
        else:
            self.padding = nonnegative_pair(padding, "padding")
        self.padding_mode = padding_mode
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(
            (out_channels, in_channels // groups, *self.kernel_size), **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's default init (same random draws in the same order, so a seeded
        ScratchConv2d equals a seeded nn.Conv2d): kaiming_uniform(a=sqrt(5)) weight,
        uniform(+-1/sqrt(fan_in)) bias."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros" and self.padding != "valid":
            ph, pw = self._explicit_padding()
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), mode=self.padding_mode)
            return ops.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation,
                              self.groups)
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                          self.groups)

    def _explicit_padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.padding == "same":
            total = [self.dilation[i] * (self.kernel_size[i] - 1) for i in range(2)]
            return ((total[0] // 2, total[0] - total[0] // 2),
                    (total[1] // 2, total[1] - total[1] // 2))
        ph, pw = self.padding  # type: ignore[misc]
        return (ph, ph), (pw, pw)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class ScratchMaxPool2d(nn.Module):
    """``nn.MaxPool2d`` on :func:`cnnlab.ops.max_pool2d` (attributes kept as given, like nn).

    Example:
        >>> pool = ScratchMaxPool2d(3, padding=1, stride=2)
        >>> pool(torch.arange(16.0).reshape(1, 1, 4, 4))
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
    """

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, *,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        positive_pair(kernel_size, "kernel_size")
        nonnegative_pair(padding, "padding")
        positive_pair(dilation, "dilation")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        positive_pair(self.stride, "stride")
        self.padding, self.dilation, self.ceil_mode = padding, dilation, bool(ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class ScratchAvgPool2d(nn.Module):
    """``nn.AvgPool2d`` on :func:`cnnlab.ops.avg_pool2d` (count_include_pad=True, like nn).

    Example:
        >>> ScratchAvgPool2d(2)(torch.ones(1, 6, 28, 28)).shape
        torch.Size([1, 6, 14, 14])
    """

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        positive_pair(kernel_size, "kernel_size")
        nonnegative_pair(padding, "padding")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        positive_pair(self.stride, "stride")
        self.padding = padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
