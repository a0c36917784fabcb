"""d2l's ``FashionMNIST`` data module, served by :class:`cnnlab.data.DataModule`.

The book's version reads the files through torchvision and resizes every image with
PIL in worker processes on every epoch. This one holds the set in memory as uint8
and builds each batch with a few tensor ops (resize: bilinear with antialias, on the
whole batch), without torchvision and without downloading when the files are on the
machine (see ``cnnlab data``). Batches are what the book's are: ``X`` float32
(B, 1, H, W) in [0, 1], ``y`` int64.

Example:
    >>> from cnnlab import d2l
    >>> data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))  # doctest: +SKIP
    >>> X, y = next(iter(data.get_dataloader(True)))  # doctest: +SKIP
    >>> X.shape, y.dtype  # doctest: +SKIP
    (torch.Size([128, 1, 96, 96]), torch.int64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cnnlab._d2l.core import DataModule
from cnnlab._d2l.utils import TEXT_LABELS, show_images
from cnnlab.data import DataModule as _CnnlabData
from cnnlab.data import load_dataset


class _Split(torch.utils.data.Dataset):
    """``data.train`` / ``data.val``: indexable like the torchvision dataset the book has."""

    def __init__(self, owner: FashionMNIST, train: bool) -> None:
        self.owner, self.train = owner, train

    def _arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        ds = self.owner._dataset
        return ((ds.train_images, ds.train_labels) if self.train
                else (ds.test_images, ds.test_labels))

    def __len__(self) -> int:
        return int(self._arrays()[1].shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        images, labels = self._arrays()
        X = self.owner._module.make_batch(images[i:i + 1] if i >= 0 else images[i][None])
        return X[0].cpu(), int(labels[i])


class FashionMNIST(DataModule):
    """Fashion-MNIST (d2l 4.2): ``get_dataloader(train)``, ``text_labels``, ``visualize``.

    ``resize`` (height, width) in pixels; 28x28 is the original size (no resizing).
    """

    def __init__(self, batch_size: int = 64, resize: tuple[int, int] = (28, 28)) -> None:
        super().__init__()
        self.save_hyperparameters()
        self._dataset = load_dataset("fashion-mnist")
        self._module = self.cnnlab_module("cpu")
        self.train = _Split(self, train=True)
        self.val = _Split(self, train=False)

    def cnnlab_module(self, device: Any = "cpu") -> _CnnlabData:
        """A :class:`cnnlab.data.DataModule` over the same images, batches on ``device``."""
        size = tuple(int(s) for s in (self.resize if isinstance(self.resize, Sequence)
                                      else (self.resize, self.resize)))
        return _CnnlabData(name="fashion-mnist", batch_size=self.batch_size,
                           resize=None if size == (28, 28) else size, device=device,
                           dataset=self._dataset)

    def text_labels(self, indices: Any) -> list[str]:
        """The book's lower-case class names of label indices."""
        return [TEXT_LABELS[int(i)] for i in indices]

    def get_dataloader(self, train: bool) -> Any:
        """Shuffled training batches (a new order per pass) or the validation batches."""
        return self._module.get_dataloader(train)

    def visualize(self, batch: tuple[torch.Tensor, torch.Tensor], nrows: int = 1,
                  ncols: int = 8, labels: Sequence[str] = ()) -> Any:
        """Show the first ``nrows * ncols`` images of ``batch`` titled with their labels."""
        X, y = batch
        if not labels:
            labels = self.text_labels(y)
        return show_images(X.squeeze(1), nrows, ncols, titles=list(labels))
