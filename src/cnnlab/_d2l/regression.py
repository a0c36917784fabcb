"""The models and data of d2l 1.0.3's chapters 3-5 (linear and softmax regression, MLP).

``SyntheticRegressionData`` (y = Xw + b + noise, 3.3), ``LinearRegressionScratch``
with the book's own minibatch ``SGD`` (3.4), ``LinearRegression`` on ``nn.LazyLinear``
(3.5), ``SoftmaxRegression`` (4.5), and the ``MLPScratch`` and ``MLP`` that 5.2 defines.
They behave as the book's: the scratch model
holds plain tensors with ``requires_grad`` and steps them with ``SGD``, so
``Trainer.fit`` runs the book's loop for it.

Example:
    >>> import torch
    >>> from cnnlab import d2l
    >>> data = d2l.SyntheticRegressionData(w=torch.tensor([2, -3.4]), b=4.2)
    >>> X, y = next(iter(data.train_dataloader()))
    >>> X.shape, y.shape, len(data.train_dataloader())
    (torch.Size([32, 2]), torch.Size([32, 1]), 32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnlab._d2l.core import Classifier, DataModule, HyperParameters, Module
from cnnlab._d2l.models import quiet_lazy


class SyntheticRegressionData(DataModule):
    """``num_train + num_val`` examples of y = X w + b + N(0, noise^2), X ~ N(0, 1)."""

    def __init__(self, w: torch.Tensor, b: Any, noise: float = 0.01, num_train: int = 1000,
                 num_val: int = 1000, batch_size: int = 32) -> None:
        super().__init__()
        self.save_hyperparameters()
        n = num_train + num_val
        self.X = torch.randn(n, len(w))
        noise = torch.randn(n, 1) * noise
        self.y = torch.matmul(self.X, w.reshape((-1, 1))) + b + noise

    def get_dataloader(self, train: bool) -> torch.utils.data.DataLoader:
        """The first ``num_train`` examples (shuffled) or the rest."""
        i = slice(0, self.num_train) if train else slice(self.num_train, None)
        return self.get_tensorloader((self.X, self.y), train, i)


class SGD(HyperParameters):
    """The book's minibatch SGD for plain tensors: ``param -= lr * param.grad``."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float) -> None:
        self.save_hyperparameters()

    def step(self) -> None:
        for param in self.params:
            param -= self.lr * param.grad

    def zero_grad(self) -> None:
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()


class LinearRegressionScratch(Module):
    """y_hat = X w + b with w ~ N(0, sigma^2), b = 0; half squared error; the book's SGD."""

    def __init__(self, num_inputs: int, lr: float, sigma: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.w = torch.normal(0, sigma, (num_inputs, 1), requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.matmul(X, self.w) + self.b

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((y_hat - y) ** 2 / 2).mean()

    def configure_optimizers(self) -> SGD:
        return SGD([self.w, self.b], self.lr)


class LinearRegression(Module):
    """One ``nn.LazyLinear(1)``, mean squared error, ``torch.optim.SGD``."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        with quiet_lazy():
            self.net = nn.LazyLinear(1)
        # as the book: on a not yet materialised parameter these two calls change nothing,
        # so the first forward's default initialisation is what trains
        self.net.weight.data.normal_(0, 0.01)
        self.net.bias.data.fill_(0)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(y_hat, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), self.lr)

    def get_w_b(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned weight (1, num_inputs) and bias (1,)."""
        return (self.net.weight.data, self.net.bias.data)


class SoftmaxRegression(Classifier):
    """Flatten, then one ``nn.LazyLinear(num_outputs)``: logits for cross-entropy."""

    def __init__(self, num_outputs: int, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        with quiet_lazy():
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)


# --- 5.2's models: the section's own cells define them; cnnlab.d2l adds them, as it
# does VGG and ResNet, so that `d2l.MLP(...)` also works (d2l 1.0.3 does not export them).


class MLPScratch(Classifier):
    """One hidden ReLU layer from ``nn.Parameter`` matrices, weights ~ N(0, sigma^2)."""

    def __init__(self, num_inputs: int, num_outputs: int, num_hiddens: int, lr: float,
                 sigma: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.b1 = nn.Parameter(torch.zeros(num_hiddens))
        self.W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * sigma)
        self.b2 = nn.Parameter(torch.zeros(num_outputs))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        H = torch.relu(torch.matmul(X.reshape((-1, self.num_inputs)), self.W1) + self.b1)
        return torch.matmul(H, self.W2) + self.b2


class MLP(Classifier):
    """Flatten, ``LazyLinear(num_hiddens)``, ReLU, ``LazyLinear(num_outputs)``."""

    def __init__(self, num_outputs: int, num_hiddens: int, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        with quiet_lazy():
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_hiddens), nn.ReLU(),
                                     nn.LazyLinear(num_outputs))
