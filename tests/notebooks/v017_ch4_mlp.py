# d2l 0.17, 4.1-4.10 Multilayer perceptrons: from scratch and concise, model selection,
# weight decay, dropout, numerical stability, the Kaggle data functions
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import math

import numpy as np
import torch
from torch import nn

from cnnlab import d2l017 as d2l

# %% 4.1 activation functions and their gradients, with d2l.plot
x = torch.arange(-4.0, 4.0, 0.5, requires_grad=True)
y = torch.sigmoid(x)
y.backward(torch.ones_like(x))
d2l.plot(x.detach(), [y.detach(), x.grad], "x", "sigmoid", legend=["sigmoid", "gradient"],
         figsize=(4, 2.5))
torch.relu(torch.tensor([-1.0, 0.0, 2.0])), x.grad.max()

# %% 4.2 an MLP from scratch on Fashion-MNIST
batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
num_inputs, num_outputs, num_hiddens = 784, 10, 128
torch.manual_seed(0)
W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * 0.01)
b1 = nn.Parameter(torch.zeros(num_hiddens))
W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * 0.01)
b2 = nn.Parameter(torch.zeros(num_outputs))
params = [W1, b1, W2, b2]


def relu(X):
    return torch.max(X, torch.zeros_like(X))


def scratch_net(X):
    H = relu(X.reshape((-1, num_inputs)) @ W1 + b1)
    return H @ W2 + b2


loss = nn.CrossEntropyLoss(reduction="none")
scratch_net(next(iter(test_iter))[0]).shape, relu(torch.tensor([-2.0, 3.0]))

# %% [training]
num_epochs, lr = 10, 0.1
d2l.train_ch3(scratch_net, train_iter, test_iter, loss, num_epochs, torch.optim.SGD(params, lr=lr))
d2l.predict_ch3(scratch_net, test_iter)

# %% [training]
# 4.3 the same with nn.Sequential
def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


concise = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
concise.apply(init_weights)
d2l.train_ch3(concise, train_iter, test_iter, loss, num_epochs,
              torch.optim.SGD(concise.parameters(), lr=lr))

# %% 4.4 polynomial data: a cubic of our own plus noise
degree, n_train, n_test = 12, 100, 100
true_w = np.zeros(degree)
true_w[0:4] = np.array([1.0, -2.5, 1.5, 3.0])
np.random.seed(0)
features = np.random.normal(size=(n_train + n_test, 1))
np.random.shuffle(features)
poly_features = np.power(features, np.arange(degree).reshape(1, -1))
for i in range(degree):
    poly_features[:, i] /= math.gamma(i + 1)
labels = poly_features @ true_w
labels += np.random.normal(scale=0.1, size=labels.shape)
true_w, features, poly_features, labels = [
    torch.tensor(a, dtype=torch.float32) for a in (true_w, features, poly_features, labels)]
features[:2], poly_features[:2, :4], labels[:2]

# %% d2l.evaluate_loss on an untrained linear model
probe = nn.Sequential(nn.Linear(4, 1, bias=False))
nn.init.zeros_(probe[0].weight)
mse = nn.MSELoss(reduction="none")
probe_iter = d2l.load_array((poly_features[:n_train, :4], labels[:n_train].reshape(-1, 1)), 10,
                            is_train=False)
d2l.evaluate_loss(probe, probe_iter, mse), float((labels[:n_train] ** 2).mean())


# %% fitting with d2l.train_epoch_ch3, curves on a d2l.Animator
def fit_poly(train_features, test_features, train_labels, test_labels, num_epochs=400):
    net = nn.Sequential(nn.Linear(train_features.shape[-1], 1, bias=False))
    batch_size = min(10, train_labels.shape[0])
    train_iter = d2l.load_array((train_features, train_labels.reshape(-1, 1)), batch_size)
    test_iter = d2l.load_array((test_features, test_labels.reshape(-1, 1)), batch_size,
                               is_train=False)
    trainer = torch.optim.SGD(net.parameters(), lr=0.01)
    animator = d2l.Animator(xlabel="epoch", ylabel="loss", yscale="log", xlim=[1, num_epochs],
                            ylim=[1e-3, 1e2], legend=["train", "test"])
    for epoch in range(num_epochs):
        d2l.train_epoch_ch3(net, train_iter, mse, trainer)
        if epoch == 0 or (epoch + 1) % 20 == 0:
            animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, mse),
                                     d2l.evaluate_loss(net, test_iter, mse)))
    print("weight:", net[0].weight.data.numpy())
    return animator


# %% [training]
animator = fit_poly(poly_features[:n_train, :4], poly_features[n_train:, :4],
                    labels[:n_train], labels[n_train:])
len(animator.X[0]), animator.Y[0][-1] < animator.Y[0][0]

# %% [training]
fit_poly(poly_features[:n_train, :2], poly_features[n_train:, :2], labels[:n_train], labels[n_train:])
fit_poly(poly_features[:n_train, :], poly_features[n_train:, :], labels[:n_train], labels[n_train:],
         num_epochs=800)

# %% 4.5 weight decay from scratch: few examples, many inputs
n_train, n_test, num_inputs, batch_size = 20, 100, 200, 5
torch.manual_seed(0)
wd_true_w, wd_true_b = torch.ones((num_inputs, 1)) * 0.01, 0.05
train_data = d2l.synthetic_data(wd_true_w, wd_true_b, n_train)
wd_train_iter = d2l.load_array(train_data, batch_size)
test_data = d2l.synthetic_data(wd_true_w, wd_true_b, n_test)
wd_test_iter = d2l.load_array(test_data, batch_size, is_train=False)


def l2_penalty(w):
    return torch.sum(w.pow(2)) / 2


def train_wd(lambd, num_epochs=100, lr=0.003):
    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    net, loss = (lambda X: d2l.linreg(X, w, b)), d2l.squared_loss
    animator = d2l.Animator(xlabel="epochs", ylabel="loss", yscale="log", xlim=[5, num_epochs],
                            legend=["train", "test"])
    for epoch in range(num_epochs):
        for X, y in wd_train_iter:
            l = loss(net(X), y) + lambd * l2_penalty(w)
            l.sum().backward()
            d2l.sgd([w, b], lr, batch_size)
        if (epoch + 1) % 5 == 0:
            animator.add(epoch + 1, (d2l.evaluate_loss(net, wd_train_iter, loss),
                                     d2l.evaluate_loss(net, wd_test_iter, loss)))
    print(f"L2 norm of w: {torch.norm(w).item():.4f}")
    return torch.norm(w).item()


train_data[0].shape, l2_penalty(torch.tensor([3.0, 4.0]))

# %% [training]
without, with_decay = train_wd(lambd=0), train_wd(lambd=3)
with_decay < without


# %% [training]
# the same with the optimizer's weight_decay
def train_concise(wd, num_epochs=100, lr=0.003):
    net = nn.Sequential(nn.Linear(num_inputs, 1))
    for param in net.parameters():
        param.data.normal_()
    loss = nn.MSELoss(reduction="none")
    trainer = torch.optim.SGD([{"params": net[0].weight, "weight_decay": wd},
                               {"params": net[0].bias}], lr=lr)
    for epoch in range(num_epochs):
        for X, y in wd_train_iter:
            trainer.zero_grad()
            loss(net(X), y).mean().backward()
            trainer.step()
    print(f"L2 norm of w: {net[0].weight.norm().item():.4f}",
          f"test loss {d2l.evaluate_loss(net, wd_test_iter, loss):.4f}")


train_concise(0)
train_concise(3)


# %% 4.6 dropout from scratch
def dropout_layer(X, dropout):
    assert 0 <= dropout <= 1
    if dropout == 1:
        return torch.zeros_like(X)
    if dropout == 0:
        return X
    mask = (torch.rand(X.shape) > dropout).float()
    return mask * X / (1.0 - dropout)


X = torch.arange(12, dtype=torch.float32).reshape((2, 6))
torch.manual_seed(0)
kept = dropout_layer(X, 0.5)
dropout_layer(X, 0.0), dropout_layer(X, 1.0), bool(((kept == 0) | (kept == 2 * X)).all())


# %%
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, is_training=True):
        super().__init__()
        self.num_inputs, self.training = num_inputs, is_training
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.relu = nn.ReLU()

    def forward(self, X):
        H1 = self.relu(self.lin1(X.reshape((-1, self.num_inputs))))
        if self.training:
            H1 = dropout_layer(H1, 0.2)
        H2 = self.relu(self.lin2(H1))
        if self.training:
            H2 = dropout_layer(H2, 0.5)
        return self.lin3(H2)


dropout_net = DropoutMLP(784, 10, 256, 128)
dropout_net(torch.rand(3, 1, 28, 28)).shape

# %% [training]
d2l.train_ch3(dropout_net, train_iter, test_iter, loss, num_epochs,
              torch.optim.SGD(dropout_net.parameters(), lr=0.5))

# %% [training]
dropout_seq = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
dropout_seq.apply(init_weights)
d2l.train_ch3(dropout_seq, train_iter, test_iter, loss, num_epochs,
              torch.optim.SGD(dropout_seq.parameters(), lr=0.5))

# %% 4.8 numerical stability: vanishing sigmoid gradients, exploding products
x = torch.arange(-6.0, 6.0, 0.25, requires_grad=True)
y = torch.sigmoid(x)
y.backward(torch.ones_like(x))
d2l.plot(x.detach().numpy(), [y.detach().numpy(), x.grad.numpy()],
         legend=["sigmoid", "gradient"], figsize=(4.5, 2.5))
torch.manual_seed(0)
M = torch.normal(0, 1, size=(4, 4))
for _ in range(50):
    M = M @ torch.normal(0, 1, size=(4, 4))
float(x.grad[0]) < 0.01, float(M.abs().max()) > 1e10

# %% 4.10 the Kaggle files: registered in DATA_HUB, fetched with d2l.download (no network here)
d2l.DATA_HUB["kaggle_house_train"] = (d2l.DATA_URL + "kaggle_house_pred_train.csv",
                                      "585e9cc93e70b39160e7921475f9bcd7d31219ce")
try:
    d2l.download("kaggle_house_train")
    outcome = "downloaded"
except Exception as e:  # offline: the real d2l raises requests' ConnectionError
    outcome = type(e).__name__
    print(str(e).splitlines()[0][:60])
callable(d2l.download_extract), callable(d2l.download_all)
