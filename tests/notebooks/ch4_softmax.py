# 4.2-4.5 Fashion-MNIST, softmax regression from scratch and with nn
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn

from cnnlab import d2l

# %%
data = d2l.FashionMNIST(resize=(32, 32))
len(data.train), len(data.val), data.train[0][0].shape

# %%
X, y = next(iter(data.val_dataloader()))
X.shape, X.dtype, y.shape, y.dtype, data.text_labels(y[:3])


# %%
class ScratchSoftmax(d2l.Classifier):
    def __init__(self, num_inputs, num_outputs, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W = torch.normal(0, sigma, size=(num_inputs, num_outputs), requires_grad=True)
        self.b = torch.zeros(num_outputs, requires_grad=True)

    def parameters(self):
        return [self.W, self.b]

    def forward(self, X):
        logits = d2l.matmul(d2l.reshape(X, (-1, self.W.shape[0])), self.W) + self.b
        e = d2l.exp(logits)
        return e / d2l.reduce_sum(e, 1, keepdims=True)

    def loss(self, y_hat, y):
        return -d2l.reduce_mean(d2l.log(y_hat[list(range(len(y_hat))), y]))


# %% [training]
data = d2l.FashionMNIST(batch_size=256)
model = ScratchSoftmax(num_inputs=784, num_outputs=10, lr=0.1)
trainer = d2l.Trainer(max_epochs=10)
trainer.fit(model, data)

# %% [training]
data = d2l.FashionMNIST(batch_size=256)
model = d2l.SoftmaxRegression(num_outputs=10, lr=0.1)
trainer = d2l.Trainer(max_epochs=10)
trainer.fit(model, data)
