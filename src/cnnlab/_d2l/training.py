"""d2l 0.17's training functions: ``train_epoch_ch3``, ``train_ch3``, ``predict_ch3``,
``train_ch6``.

Fast path: when the network is an ``nn.Module``, the optimizer a
``torch.optim.Optimizer`` and the iterators the two loaders of
:func:`~cnnlab.d2l.load_data_fashion_mnist`, training runs on cnnlab's loop
(:class:`cnnlab.train.Trainer`: batches made on the device from the in-memory set,
no host read per step, on CPU the layers swapped for :mod:`cnnlab.accel`'s kernels
while it trains). The animator then gets one point per curve per epoch, at the
epoch's end, with the values the book's last point of each epoch has (the
epoch's mean training loss and accuracy, the test accuracy); the book also draws
four points inside each epoch. Printed lines are the book's.

Otherwise (a function as the network, a scratch ``updater``, the user's own
iterators, a loss that is not per-example for ``train_ch3``) the book's loop runs,
summing its metrics on the device and reading them where the book plots.

``CNNLAB_D2L_MAX_EPOCHS`` caps the epochs and ``CNNLAB_D2L_LIMIT_BATCHES`` the
batches per epoch (training and evaluation) of every function here, as for
``Trainer.fit``; with either set, ``train_ch3`` skips the book's final accuracy
checks (a shortened run cannot pass them).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from cnnlab._d2l.animator import Animator
from cnnlab._d2l.caps import Limited
from cnnlab._d2l.legacy import _correct, evaluate_accuracy, evaluate_accuracy_gpu
from cnnlab._d2l.trainer import _env_int, accel_enabled
from cnnlab._d2l.utils import TEXT_LABELS, Timer, show_images


def _caps() -> tuple[int | None, int | None]:
    return _env_int("CNNLAB_D2L_MAX_EPOCHS"), _env_int("CNNLAB_D2L_LIMIT_BATCHES")


def _epochs(num_epochs: int) -> int:
    cap = _caps()[0]
    return min(int(num_epochs), cap) if cap else int(num_epochs)


def _cnnlab_module(train_iter: Any, test_iter: Any) -> Any:
    """The cnnlab DataModule behind load_data_fashion_mnist's two loaders, else None."""
    from cnnlab.data import DataModule

    module = getattr(train_iter, "module", None)
    if not isinstance(module, DataModule) or getattr(test_iter, "module", None) is not module:
        return None
    if train_iter.train is not True or test_iter.train is not False or module.world_size != 1:
        return None
    return module


def _on_device(module: Any, device: torch.device) -> Any:
    if module.device == device:
        return module
    from cnnlab.data import DataModule, load_dataset

    return DataModule(module.name, batch_size=module.batch_size, resize=module.resize,
                      device=device, dataset=load_dataset(module.name))


class _EpochEnd:
    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        self.fn(row)


def _fit_cnnlab(net: nn.Module, module: Any, loss: Any, optimizer: torch.optim.Optimizer,
                epochs: int, device: torch.device, on_epoch: Callable[[dict[str, Any]], None]
                ) -> list[dict[str, Any]]:
    """Train on cnnlab's loop, its own printing silenced (the caller prints the book's)."""
    from cnnlab.accel import accelerated
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.trainer import Trainer

    limit = _caps()[1]
    config = TrainConfig(model=type(net).__name__.lower(), epochs=epochs,
                         batch_size=int(module.batch_size),
                         lr=float(optimizer.param_groups[0]["lr"]), device=device.type,
                         limit_train_batches=limit, limit_val_batches=limit,
                         accel=accel_enabled(None))
    inner = Trainer(config, model=net, data=_on_device(module, device), loss_fn=loss,
                    optimizer=optimizer, callbacks=[_EpochEnd(on_epoch)], save=False,
                    live_plot=False)
    fast = accelerated(net, device) if config.accel else contextlib.nullcontext()
    with fast, contextlib.redirect_stdout(io.StringIO()):
        history = inner.fit()
    net.eval()  # as the book's functions leave it: their last step is an evaluation
    return history


def _fit_animated(net: nn.Module, module: Any, loss: Any, optimizer: torch.optim.Optimizer,
                  epochs: int, device: torch.device, animator: Animator
                  ) -> tuple[list[dict[str, Any]], float, float, float]:
    """:func:`_fit_cnnlab` drawing one animator point per curve per epoch; returns the
    history and the last epoch's train loss, train accuracy and test accuracy."""
    animator.display = False

    def on_epoch(row: dict[str, Any]) -> None:
        animator.add(row["epoch"], (row["train_loss"], row["train_acc"], row["val_acc"]))
        animator.refresh(announce=False)  # stdout is captured here: announce at the end

    history = _fit_cnnlab(net, module, loss, optimizer, epochs, device, on_epoch)
    animator.render()
    last = history[-1]
    return history, last["train_loss"], last["train_acc"], last["val_acc"]


def train_epoch_ch3(net: Callable[[torch.Tensor], torch.Tensor], train_iter: Iterable,
                    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], updater: Any
                    ) -> tuple[float, float]:
    """One epoch of the book's loop; (mean training loss, training accuracy).

    ``updater``: a torch optimizer (steps on the mean loss) or a function called with
    the batch size after ``backward`` of the summed loss (the scratch ``sgd``).
    """
    if isinstance(net, nn.Module):
        net.train()
    loss_sum = correct = None
    count = 0
    for X, y in Limited(train_iter, _caps()[1]):
        y_hat = net(X)
        l = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            l.mean().backward()
            updater.step()
        else:
            l.sum().backward()
            updater(X.shape[0])
        s, c = l.detach().sum(), _correct(y_hat.detach(), y)
        loss_sum = s if loss_sum is None else loss_sum + s
        correct = c if correct is None else correct + c
        count += y.numel()
    if loss_sum is None:
        return 0.0, 0.0
    return float(loss_sum) / count, float(correct) / count


def train_ch3(net: Callable[[torch.Tensor], torch.Tensor], train_iter: Iterable,
              test_iter: Iterable, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              num_epochs: int, updater: Any) -> None:
    """Train and plot train loss, train accuracy and test accuracy per epoch (0.17, 3.6).

    As the book's, it then checks train loss < 0.5 and both accuracies > 0.7
    (AssertionError otherwise), except in runs shortened by the CNNLAB_D2L_* caps.
    """
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs], ylim=[0.3, 0.9],
                        legend=["train loss", "train acc", "test acc"])
    epochs = _epochs(num_epochs)
    module = _cnnlab_module(train_iter, test_iter)
    if (module is not None and epochs >= 1 and isinstance(net, nn.Module)
            and isinstance(updater, torch.optim.Optimizer)
            and getattr(loss, "reduction", None) == "none"):
        device = next(iter(net.parameters())).device
        _, train_loss, train_acc, test_acc = _fit_animated(net, module, loss, updater, epochs,
                                                           device, animator)
    else:
        test = Limited(test_iter, _caps()[1])
        train_loss = train_acc = test_acc = 0.0
        for epoch in range(epochs):
            train_loss, train_acc = train_epoch_ch3(net, train_iter, loss, updater)
            test_acc = evaluate_accuracy(net, test)
            animator.add(epoch + 1, (train_loss, train_acc, test_acc))
        animator.flush()  # the PNG redraws are throttled: write the last points now
    if any(_caps()):
        return
    assert train_loss < 0.5, f"train loss {train_loss} is not below 0.5"
    assert 0.7 < train_acc <= 1, f"train acc {train_acc} is not above 0.7"
    assert 0.7 < test_acc <= 1, f"test acc {test_acc} is not above 0.7"


def predict_ch3(net: Callable[[torch.Tensor], torch.Tensor], test_iter: Iterable, n: int = 6
                ) -> None:
    """Show the first ``n`` test images titled with true and predicted labels."""
    X, y = next(iter(test_iter))
    with torch.no_grad():
        preds = net(X).argmax(dim=1)
    titles = [TEXT_LABELS[int(t)] + "\n" + TEXT_LABELS[int(p)] for t, p in zip(y, preds)]
    show_images(X[0:n].reshape((n, 28, 28)), 1, n, titles=titles[0:n])


def _init_weights(m: nn.Module) -> None:
    if type(m) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight)


def train_ch6(net: nn.Module, train_iter: Iterable, test_iter: Iterable, num_epochs: int,
              lr: float, device: Any) -> None:
    """Xavier-initialise ``net``, train it with SGD and cross-entropy on ``device`` (0.17, 6.6).

    Prints ``training on DEVICE``, then the final ``loss ..., train acc ..., test acc ...``
    and the training speed in examples per second.
    """
    device = torch.device(device)
    net.apply(_init_weights)
    print("training on", device)
    net.to(device)
    from cnnlab.train.startup import defer_dynamo

    defer_dynamo()  # as cnnlab's Trainer: no torch._dynamo import for an eager run
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs],
                        legend=["train loss", "train acc", "test acc"])
    epochs = _epochs(num_epochs)
    module = _cnnlab_module(train_iter, test_iter)
    if module is not None and epochs >= 1:
        history, train_l, train_acc, test_acc = _fit_animated(net, module, loss, optimizer,
                                                              epochs, device, animator)
        limit = _caps()[1]
        per_epoch = min(module.num_train, limit * module.batch_size) if limit \
            else module.num_train
        examples = per_epoch * len(history)  # the rows' img/s count training time only
        seconds = sum(per_epoch / max(r["images_per_s"], 1e-9) for r in history)
    else:
        train_l, train_acc, test_acc, examples, seconds = _train_ch6_loop(
            net, train_iter, test_iter, epochs, optimizer, loss, device, animator)
        animator.flush()  # the PNG redraws are throttled: write the last points now
    print(f"loss {train_l:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    print(f"{examples / max(seconds, 1e-9):.1f} examples/sec on {device}")


def _train_ch6_loop(net: nn.Module, train_iter: Iterable, test_iter: Iterable, epochs: int,
                    optimizer: torch.optim.Optimizer, loss: nn.Module, device: torch.device,
                    animator: Animator) -> tuple[float, float, float, int, float]:
    """The book's loop; metrics summed on the device, read at the five plot points per epoch."""
    limit = _caps()[1]
    train = Limited(train_iter, limit)
    test = Limited(test_iter, limit)
    timer, num_batches = Timer(), len(train)
    train_l = train_acc = test_acc = 0.0
    count = 0
    for epoch in range(epochs):
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        timer.start()
        for i, (X, y) in enumerate(train):
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += l.detach().double() * X.shape[0]
                correct += _correct(y_hat, y)
            count += X.shape[0]
            if (i + 1) % max(num_batches // 5, 1) == 0 or i == num_batches - 1:
                train_l, train_acc = float(loss_sum) / count, float(correct) / count
                timer.stop()
                animator.add(epoch + (i + 1) / num_batches, (train_l, train_acc, None))
                timer.start()
        timer.stop()
        test_acc = evaluate_accuracy_gpu(net, test)
        animator.add(epoch + 1, (None, None, test_acc))
    return train_l, train_acc, test_acc, count * epochs, timer.sum()
