"""The functional API of d2l 0.17 (kept in 1.0.3's utilities): data, scratch pieces, metrics.

``synthetic_data``, ``linreg``, ``squared_loss``, ``sgd``, ``load_array`` (3.2-3.3 of
0.17), ``load_data_fashion_mnist`` (3.5), ``accuracy``, ``evaluate_accuracy``,
``evaluate_accuracy_gpu``, ``evaluate_loss``, ``grad_clipping``.

``load_data_fashion_mnist`` returns the two loaders of one in-memory
:class:`cnnlab.data.DataModule` (no torchvision, no worker processes, resize on the
whole batch) with the book's batches: ``X`` float32 (B, 1, H, W) in [0, 1], ``y``
int64; training batches shuffled anew on each pass, test batches in order. The
metrics sum on the device and read the result once, not once per batch.

Example:
    >>> import torch
    >>> from cnnlab import d2l
    >>> X, y = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 1000)
    >>> X.shape, y.shape
    (torch.Size([1000, 2]), torch.Size([1000, 1]))
    >>> d2l.linreg(torch.ones(1, 2), torch.tensor([[2.0], [-3.4]]), 4.2)
    tensor([[2.8000]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn


def synthetic_data(w: torch.Tensor, b: Any, num_examples: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """X ~ N(0, 1) of shape (num_examples, len(w)) and y = X w + b + N(0, 0.01^2) as a column."""
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def linreg(X: torch.Tensor, w: torch.Tensor, b: Any) -> torch.Tensor:
    """The linear regression model X w + b."""
    return torch.matmul(X, w) + b


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the squared error per example (not averaged), y reshaped like y_hat."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params: Iterable[torch.Tensor], lr: float, batch_size: int) -> None:
    """Minibatch SGD on summed-loss gradients: ``p -= lr * p.grad / batch_size``, grad zeroed."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def load_array(data_arrays: Sequence[torch.Tensor], batch_size: int, is_train: bool = True
               ) -> torch.utils.data.DataLoader:
    """A PyTorch DataLoader over the tensors (shuffled when ``is_train``)."""
    dataset = torch.utils.data.TensorDataset(*data_arrays)
    return torch.utils.data.DataLoader(dataset, batch_size, shuffle=is_train)


def get_dataloader_workers() -> int:
    """d2l's worker count for torch DataLoaders (4); cnnlab's own loaders use none."""
    return 4


def load_data_fashion_mnist(batch_size: int, resize: Any = None) -> tuple[Any, Any]:
    """(train_iter, test_iter) over Fashion-MNIST, images resized to ``resize`` if given.

    ``resize``: an int (square side) or (height, width), in pixels.
    """
    from cnnlab.data import DataModule

    module = DataModule("fashion-mnist", batch_size=batch_size, resize=resize or None)
    return module.train_dataloader(), module.val_dataloader()


def _correct(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions as a device tensor (no host read)."""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.type(y.dtype) == y).type(y.dtype).sum()


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Number of correct predictions (a count, not a rate), argmax over dim 1 when 2-D."""
    return float(_correct(y_hat, y))


def evaluate_accuracy(net: Callable[[torch.Tensor], torch.Tensor], data_iter: Iterable
                      ) -> float:
    """Fraction of ``data_iter``'s examples that ``net`` classifies right (eval mode)."""
    if isinstance(net, nn.Module):
        net.eval()
    return _accuracy_over(net, data_iter, None)


def evaluate_accuracy_gpu(net: Callable[[torch.Tensor], torch.Tensor], data_iter: Iterable,
                          device: Any = None) -> float:
    """``evaluate_accuracy`` with each batch moved to ``device`` (default: the net's)."""
    if isinstance(net, nn.Module):
        net.eval()
        if not device:
            device = next(iter(net.parameters())).device
    return _accuracy_over(net, data_iter, device)


def _accuracy_over(net: Callable[[Any], torch.Tensor], data_iter: Iterable, device: Any
                   ) -> float:
    correct, total = None, 0
    with torch.no_grad():
        for X, y in data_iter:
            if device is not None:
                X = [x.to(device) for x in X] if isinstance(X, list) else X.to(device)
                y = y.to(device)
            c = _correct(net(X), y)
            correct = c if correct is None else correct + c
            total += y.numel()
    return (float(correct) if correct is not None else 0.0) / total


def evaluate_loss(net: Callable[[torch.Tensor], torch.Tensor], data_iter: Iterable,
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """Mean of ``loss`` over every element of ``data_iter`` (y reshaped like the output)."""
    total, count = None, 0
    for X, y in data_iter:
        out = net(X)
        l = loss(out, y.reshape(out.shape))
        # each batch's float32 sum added in float64, as the book's Accumulator does on the host
        s = l.detach().sum().double()
        total = s if total is None else total + s
        count += l.numel()
    return (float(total) if total is not None else 0.0) / count


def grad_clipping(net: Any, theta: float) -> None:
    """Rescale the gradients so that their joint L2 norm is at most ``theta``."""
    params = ([p for p in net.parameters() if p.requires_grad] if isinstance(net, nn.Module)
              else net.params)
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm
