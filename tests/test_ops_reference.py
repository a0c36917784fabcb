"""The book's values (SEEDS.md 7.2-7.5) through cnnlab.ops and cnnlab.layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import ops
from cnnlab.layers import Conv2D, ScratchConv2d, ScratchMaxPool2d


def test_corr2d_book_values():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(ops.corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def _edge_image() -> torch.Tensor:
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    return X


def test_edge_detection_and_transposed_image():
    X, K = _edge_image(), torch.tensor([[1.0, -1.0]])
    Y = ops.corr2d(X, K)
    expected = torch.zeros(6, 7)
    expected[:, 1], expected[:, 5] = 1.0, -1.0
    assert torch.equal(Y, expected)
    Y_t = ops.corr2d(X.t(), K)
    assert Y_t.shape == (8, 5) and torch.equal(Y_t, torch.zeros(8, 5))


def test_book_conv2d_layer():
    torch.manual_seed(0)
    layer = Conv2D((1, 2))
    assert layer.weight.shape == (1, 2) and torch.equal(layer.bias.data, torch.zeros(1))
    assert bool(((layer.weight >= 0) & (layer.weight < 1)).all())
    X = _edge_image()
    expected = ops.corr2d(X, layer.weight.detach()) + layer.bias.detach()
    assert torch.equal(layer(X).detach(), expected)


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False),
    lambda: ScratchConv2d(1, 1, kernel_size=(1, 2), bias=False),
])
def test_learning_the_edge_kernel(make):
    torch.manual_seed(1)
    conv2d = make()
    X = _edge_image().reshape((1, 1, 6, 8))
    Y = ops.corr2d(_edge_image(), torch.tensor([[1.0, -1.0]])).reshape((1, 1, 6, 7))
    lr, losses = 3e-2, []
    for _ in range(10):
        Y_hat = conv2d(X)
        loss = ((Y_hat - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(loss.item())
    final = ((conv2d(X) - Y) ** 2).sum().item()
    assert losses[0] / final > 100
    assert torch.allclose(conv2d.weight.data.reshape(1, 2), torch.tensor([[1.0, -1.0]]),
                          atol=0.05)


@pytest.mark.parametrize("kernel, padding, stride, expected", [
    (3, 1, 1, (8, 8)),
    ((5, 3), (2, 1), 1, (8, 8)),
    (3, 1, 2, (4, 4)),
    ((3, 5), (0, 1), (3, 4), (2, 2)),
])
def test_padding_stride_table(kernel, padding, stride, expected):
    assert ops.output_shape((8, 8), kernel, padding, stride) == expected
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    Y = ops.conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, kh, kw), padding=padding,
                   stride=stride)
    assert tuple(Y.shape[2:]) == expected
    layer = ScratchConv2d(1, 1, kernel_size=kernel, padding=padding, stride=stride)
    assert tuple(layer(torch.rand(1, 1, 8, 8)).shape[2:]) == expected


def test_output_shape_with_dilation_matches_conv():
    X, W = torch.rand(1, 1, 11, 9), torch.rand(1, 1, 3, 2)
    Y = F.conv2d(X, W, padding=(1, 2), stride=(2, 3), dilation=(3, 2))
    assert ops.output_shape((11, 9), (3, 2), (1, 2), (2, 3), (3, 2)) == tuple(Y.shape[2:])


def _multi_channel_example() -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                      [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    return X, K


def test_multi_input_channels():
    X, K = _multi_channel_example()
    assert torch.equal(ops.corr2d_multi_in(X, K), torch.tensor([[56.0, 72.0], [104.0, 120.0]]))


def test_multi_input_output_channels():
    X, K = _multi_channel_example()
    K3 = torch.stack((K, K + 1, K + 2), 0)
    assert K3.shape == (3, 2, 2, 2)
    expected = torch.tensor([[[56.0, 72.0], [104.0, 120.0]],
                             [[76.0, 100.0], [148.0, 172.0]],
                             [[96.0, 128.0], [192.0, 224.0]]])
    assert torch.equal(ops.corr2d_multi_in_out(X, K3), expected)
    # The vectorised conv2d gives the same on the unbatched input.
    assert torch.equal(ops.conv2d(X, K3), expected)


def test_1x1_convolution_is_a_matmul():
    torch.manual_seed(0)
    X = torch.normal(0, 1, (3, 3, 3))
    K = torch.normal(0, 1, (2, 3, 1, 1))
    Y1 = ops.corr2d_multi_in_out_1x1(X, K)
    Y2 = ops.corr2d_multi_in_out(X, K)
    assert Y1.shape == (2, 3, 3)
    assert float(torch.abs(Y1 - Y2).sum()) < 1e-6
    assert float(torch.abs(ops.conv2d(X, K) - Y2).sum()) < 1e-6


def test_pool2d_loop_book_values():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    assert torch.equal(ops.pool2d(X, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    assert torch.equal(ops.pool2d(X, (2, 2), "avg"), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def test_max_pooling_padding_and_stride_book_values():
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    assert torch.equal(ops.max_pool2d(X, 3), torch.tensor([[[[10.0]]]]))
    assert torch.equal(ScratchMaxPool2d(3)(X), torch.tensor([[[[10.0]]]]))
    expected = torch.tensor([[[[5.0, 7.0], [13.0, 15.0]]]])
    assert torch.equal(ops.max_pool2d(X, 3, padding=1, stride=2), expected)
    assert torch.equal(ScratchMaxPool2d(3, padding=1, stride=2)(X), expected)
    assert torch.equal(ops.max_pool2d(X, (2, 3), stride=(2, 3), padding=(0, 1)), expected)
    assert torch.equal(ScratchMaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))(X), expected)


def test_pooling_is_per_channel():
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    X2 = torch.cat((X, X + 1), 1)
    Y = ScratchMaxPool2d(3, padding=1, stride=2)(X2)
    assert torch.equal(Y, torch.tensor([[[[5.0, 7.0], [13.0, 15.0]],
                                         [[6.0, 8.0], [14.0, 16.0]]]]))
    assert torch.equal(ops.avg_pool2d(X2, 2), F.avg_pool2d(X2, 2))
