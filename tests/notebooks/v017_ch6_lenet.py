# d2l 0.17, 6.6 and 7.6 LeNet with train_ch6; the 0.17 Residual block
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn

from cnnlab import d2l017 as d2l

# %%
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10))
X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, 'output shape: \t', X.shape)

# %%
blk = d2l.Residual(3, 6, use_1x1conv=True, strides=2)
blk(torch.rand(4, 3, 6, 6)).shape, d2l.try_all_gpus()

# %% [training]
batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
lr, num_epochs = 0.9, 10
d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())
