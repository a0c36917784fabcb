# d2l 0.17, 3.5-3.7 Fashion-MNIST loaders, softmax regression with train_ch3 and predict_ch3
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn

from cnnlab import d2l017 as d2l

# %%
batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
X, y = next(iter(train_iter))
X.shape, X.dtype, y.dtype, len(train_iter), len(test_iter)

# %%
d2l.get_fashion_mnist_labels(y[:4])

# %%
W = torch.normal(0, 0.01, size=(784, 10), requires_grad=True)
b = torch.zeros(10, requires_grad=True)


def net(X):
    O = torch.matmul(X.reshape((-1, W.shape[0])), W) + b
    O_exp = torch.exp(O)
    return O_exp / O_exp.sum(1, keepdim=True)


def cross_entropy(y_hat, y):
    return -torch.log(y_hat[range(len(y_hat)), y])


def updater(batch_size):
    return d2l.sgd([W, b], 0.1, batch_size)


d2l.evaluate_accuracy(net, test_iter) < 0.3

# %% [training]
d2l.train_ch3(net, train_iter, test_iter, cross_entropy, 10, updater)
d2l.predict_ch3(net, test_iter)

# %% [training]
concise = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
concise.apply(lambda m: nn.init.normal_(m.weight, std=0.01) if type(m) == nn.Linear else None)
d2l.train_ch3(concise, train_iter, test_iter, nn.CrossEntropyLoss(reduction='none'), 10,
              torch.optim.SGD(concise.parameters(), lr=0.1))
