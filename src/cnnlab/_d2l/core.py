"""The object-oriented base classes of d2l 1.0.3 (book sections 3.2, 4.3, 6.4, 7.6).

``HyperParameters`` (constructor arguments become attributes), ``Module`` and
``Classifier`` (an ``nn.Module`` that knows its loss, optimizer and how to plot its
own progress), ``DataModule``; and the book's decorator that adds a method
to a class after it is defined.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from cnnlab import d2l
    >>> class Softmax(d2l.Classifier):
    ...     def __init__(self, num_outputs, lr):
    ...         super().__init__()
    ...         self.save_hyperparameters()
    ...         self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, num_outputs))
    >>> model = Softmax(3, lr=0.1)
    >>> model.hparams
    {'num_outputs': 3, 'lr': 0.1}
    >>> model(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError


class HyperParameters:
    """Base class whose ``save_hyperparameters`` stores the caller's arguments."""

    def save_hyperparameters(self, ignore: Sequence[str] = ()) -> None:
        """Make every argument of the calling ``__init__`` an attribute, and ``self.hparams``.

        Reads the caller's local variables (as the book does), so call it first thing
        in ``__init__``; names starting with ``_`` and those in ``ignore`` are skipped.
        """
        frame = inspect.currentframe()
        assert frame is not None and frame.f_back is not None
        local_vars = inspect.getargvalues(frame.f_back).locals
        skip = set(ignore) | {"self"}
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in skip and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


class Module(nn.Module, HyperParameters):
    """The book's base model: ``net``, ``loss``, ``training_step``, ``configure_optimizers``.

    ``plot_train_per_epoch`` / ``plot_valid_per_epoch``: points per epoch on the board
    when the training loop calls ``plot`` per batch (see :class:`cnnlab.d2l.Trainer`).
    """

    def __init__(self, plot_train_per_epoch: int = 2, plot_valid_per_epoch: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters()
        from cnnlab._d2l.board import ProgressBoard

        self.board = ProgressBoard()

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "net"):
            raise ConfigError(
                f"{type(self).__name__} has no self.net; set it in __init__ or override forward")
        return self.net(X)

    def plot(self, key: str, value: Any, train: bool) -> None:
        """Send one batch's ``value`` of ``key`` to the board (x in epochs, d2l 3.2.2)."""
        if not hasattr(self, "trainer"):
            raise ConfigError("plot() needs a trainer: call it from Trainer.fit(model, data)")
        self.board.xlabel = "epoch"
        trainer = self.trainer
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            n = trainer.num_val_batches / self.plot_valid_per_epoch
        self.board.draw(x, value, ("train_" if train else "val_") + key, every_n=int(n))

    def training_step(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=True)
        return l

    def validation_step(self, batch: Sequence[torch.Tensor]) -> None:
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Minibatch SGD with ``self.lr`` (d2l 4.3)."""
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs: Sequence[Any], init: Callable[[nn.Module], Any] | None = None
                   ) -> None:
        """One forward pass (materialises Lazy layers, d2l 6.4), then ``net.apply(init)``."""
        with torch.no_grad():
            self.forward(*inputs)
        if init is not None:
            self.net.apply(init)


class Classifier(Module):
    """A Module for classification: cross-entropy loss, accuracy, validation plots."""

    def validation_step(self, batch: Sequence[torch.Tensor]) -> None:
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat: torch.Tensor, Y: torch.Tensor, averaged: bool = True
                 ) -> torch.Tensor:
        """Fraction of correct predictions (or the 0/1 vector when not ``averaged``)."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        preds = Y_hat.argmax(dim=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat: torch.Tensor, Y: torch.Tensor, averaged: bool = True) -> torch.Tensor:
        """Cross-entropy of logits ``Y_hat`` against labels ``Y`` (mean over the batch)."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        return F.cross_entropy(Y_hat, Y.reshape((-1,)),
                               reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape: Sequence[int]) -> None:
        """Print each top-level layer of ``net`` and its output shape (d2l 7.6)."""
        X = torch.randn(*X_shape)
        with torch.no_grad():
            for layer in self.net:
                X = layer(X)
                print(layer.__class__.__name__, "output shape:\t", X.shape)


class DataModule(HyperParameters):
    """The book's base data class: ``get_dataloader(train)`` and the two loaders."""

    def __init__(self, root: str = "../data", num_workers: int = 4) -> None:
        self.save_hyperparameters()

    def get_dataloader(self, train: bool) -> Any:
        raise NotImplementedError

    def train_dataloader(self) -> Any:
        return self.get_dataloader(train=True)

    def val_dataloader(self) -> Any:
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors: Sequence[torch.Tensor], train: bool,
                         indices: Any = slice(0, None)) -> torch.utils.data.DataLoader:
        """A DataLoader over ``tensors[indices]``, shuffled when ``train``."""
        tensors = tuple(a[indices] for a in tensors)
        dataset = torch.utils.data.TensorDataset(*tensors)
        return torch.utils.data.DataLoader(dataset, self.batch_size, shuffle=train)
