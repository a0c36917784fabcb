"""Bad input to cnnlab.ops: a ConfigError (a ValueError) that names the argument and shapes."""

from __future__ import annotations

import pytest
import torch

from cnnlab import ops
from cnnlab.errors import ConfigError


@pytest.mark.parametrize("call, words", [
    (lambda: ops.conv2d(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 5, 5)),
     ["larger than the padded input", "(5, 5)", "(4, 4)"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 3, 3), dilation=2),
     ["larger than the padded input", "dilation"]),
    (lambda: ops.conv2d(torch.rand(1, 3, 8, 8), torch.rand(4, 2, 3, 3)),
     ["channel mismatch", "(4, 2, 3, 3)", "(1, 3, 8, 8)"]),
    (lambda: ops.conv2d(torch.rand(1, 4, 8, 8), torch.rand(3, 2, 3, 3), groups=2),
     ["groups=2", "out_channels", "(3, 2, 3, 3)"]),
    (lambda: ops.conv2d(torch.rand(1, 3, 8, 8), torch.rand(4, 1, 3, 3), groups=2),
     ["groups=2", "in_channels", "(1, 3, 8, 8)"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3), stride=0),
     ["stride", ">= 1"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3), dilation=(1, 0)),
     ["dilation", ">= 1"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3), padding=-1),
     ["padding", ">= 0"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3), groups=0),
     ["groups"]),
    (lambda: ops.conv2d(torch.rand(8, 8), torch.rand(1, 1, 3, 3)),
     ["X must be 4-D", "(8, 8)"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(3, 3)),
     ["weight must be 4-D", "(3, 3)"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(2, 1, 3, 3), torch.rand(3)),
     ["bias", "(2,)", "(3,)"]),
    (lambda: ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3), stride=2,
                        padding="same"), ["same", "stride"]),
    (lambda: ops.max_pool2d(torch.rand(1, 1, 4, 4), 5), ["larger than the padded input"]),
    (lambda: ops.max_pool2d(torch.rand(1, 1, 8, 8), 3, padding=2),
     ["padding (2, 2)", "half of kernel_size (3, 3)"]),
    (lambda: ops.avg_pool2d(torch.rand(1, 1, 8, 8), 2, padding=2), ["padding", "half"]),
    (lambda: ops.avg_pool2d(torch.rand(1, 1, 8, 8), 0), ["kernel_size", ">= 1"]),
    (lambda: ops.max_pool2d(torch.rand(1, 1, 8, 8), 2, stride=0), ["stride", ">= 1"]),
    (lambda: ops.max_pool2d(torch.rand(1, 1, 8, 8), 2, padding=-1), ["padding", ">= 0"]),
    (lambda: ops.max_pool2d(torch.rand(8), 2), ["4-D", "(8,)"]),
    (lambda: ops.avg_pool2d(torch.rand(1, 1, 1, 2, 8), 2), ["4-D", "(1, 1, 1, 2, 8)"]),
    (lambda: ops.output_shape(8, 9), ["larger than the padded input"]),
    (lambda: ops.output_shape(8, (3, 3, 3)), ["kernel_size", "pair"]),
    (lambda: ops.corr2d(torch.rand(2, 2), torch.rand(3, 1)), ["kernel K", "(3, 1)", "(2, 2)"]),
    (lambda: ops.corr2d(torch.rand(1, 2, 2), torch.rand(1, 1)), ["X must be 2-D"]),
    (lambda: ops.corr2d_multi_in(torch.rand(2, 3, 3), torch.rand(3, 2, 2)), ["same number"]),
    (lambda: ops.pool2d(torch.rand(3, 3), (2, 2), mode="min"), ["mode", "'min'"]),
])
def test_bad_input_is_a_one_line_config_error(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    for word in words:
        assert word in message, message
