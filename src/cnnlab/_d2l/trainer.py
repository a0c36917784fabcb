"""d2l's ``Trainer(max_epochs, num_gpus=0, gradient_clip_val=0).fit(model, data)``,
driven by :class:`cnnlab.train.Trainer`.

The fast path (taken whenever the book's own steps would run): the user's model, its
``loss`` and ``configure_optimizers()`` go to cnnlab's loop over device-resident
in-memory batches, with no host synchronisation per step, and on CPU with the book's
layers swapped for :mod:`cnnlab.accel`'s kernels while it trains (the notebook's own
layer objects are back afterwards); once per epoch a callback
puts train_loss, val_loss and val_acc on ``model.board`` (the book draws two train
points per epoch from per-batch values; here each epoch's mean is drawn at the mean x
of its batches).

The compatibility path: when the user overrides ``training_step``,
``validation_step``, ``plot`` or ``accuracy``, passes a data module other than ``d2l.FashionMNIST``
(or one overriding its loaders), or ``configure_optimizers`` returns something that is
not a ``torch.optim.Optimizer`` (the book's scratch ``SGD``), cnnlab cannot honour that
in its own loop, so the book's loop runs instead, calling those methods per batch
exactly as d2l 1.0.3 does.

Device: the first GPU when ``num_gpus > 0`` and CUDA is there, else the CPU, silently.

Environment (for smoke-running notebooks in CI; unset by default):
``CNNLAB_D2L_MAX_EPOCHS`` caps ``max_epochs``; ``CNNLAB_D2L_LIMIT_BATCHES`` caps the
training and validation batches per epoch. ``CNNLAB_ACCEL=0`` (or
``Trainer(..., accel=False)``, which wins) trains the notebook's layers as they are, without
:mod:`cnnlab.accel`'s kernels: ``cnnlab train --no-accel``'s switch for the book's API.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from cnnlab._d2l.caps import Limited
from cnnlab._d2l.core import Classifier, HyperParameters, Module
from cnnlab._d2l.data import FashionMNIST
from cnnlab._d2l.utils import cpu, gpu, num_gpus
from cnnlab.guards import check_int


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value: Any = int(raw)
    except ValueError:
        value = raw
    return check_int(name, value, hint="unset it or use 1")


def _overrides(obj: Any, base: type, name: str) -> bool:
    return getattr(type(obj), name, None) is not getattr(base, name)


class _ModelLoss:
    """cnnlab's ``loss_fn(Y_hat, y)`` calling the d2l model's own ``loss``."""

    def __init__(self, model: Module) -> None:
        self.model = model

    def __call__(self, Y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.loss(Y_hat, y)


class _BoardFeed:
    """cnnlab callback: one point per curve per epoch on the d2l board."""

    def __init__(self, owner: Trainer, model: Module, with_acc: bool) -> None:
        self.owner, self.model, self.with_acc = owner, model, with_acc

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        t, board = self.owner, self.model.board
        e, n = int(row["epoch"]) - 1, t.num_train_batches
        t.epoch = e
        t.train_batch_idx += n
        t.val_batch_idx += t.num_val_batches
        board.xlabel = "epoch"
        shown, board.display = board.display, False  # one redraw per epoch, not three
        try:
            # batch i of epoch e sits at x = e + i/n in the book's plot; this is their mean
            board.draw(e + (n - 1) / (2 * n), row["train_loss"], "train_loss")
            board.draw(e + 1, row["val_loss"], "val_loss")
            if self.with_acc:
                board.draw(e + 1, row["val_acc"], "val_acc")
        finally:
            board.display = shown
        if shown:
            board.refresh()


class Trainer(HyperParameters):
    """Train a d2l ``Module`` on a d2l ``DataModule`` (d2l 3.2.4, 6.7).

    ``out_dir`` (cnnlab addition): also keep cnnlab's run directory there
    (checkpoints, metrics.csv, curves.png) and the board's PNG; by default nothing is
    written but the board's PNG (outside Jupyter: ``./d2l-board.png``, path printed).
    ``accel`` (cnnlab addition): False trains without :mod:`cnnlab.accel`'s CPU kernels;
    None (default) follows the environment, ``CNNLAB_ACCEL=0`` meaning off.

    Example:
        >>> from cnnlab import d2l
        >>> trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
        >>> trainer.max_epochs, trainer.gradient_clip_val
        (10, 0)
    """

    def __init__(self, max_epochs: int, num_gpus: int = 0, gradient_clip_val: float = 0,
                 *, out_dir: str | None = None, accel: bool | None = None) -> None:
        check_int("max_epochs", max_epochs, least=0, hint="e.g. max_epochs=10")  # 0: no epoch
        check_int("num_gpus", num_gpus, least=0)
        self.save_hyperparameters(ignore=["out_dir", "accel"])
        self.out_dir = out_dir
        self.accel = accel
        self.gpus = [gpu(i) for i in range(min(int(num_gpus), _num_gpus()))]
        self.history: list[dict[str, Any]] = []

    # --- the book's pieces -------------------------------------------------------------
    def prepare_data(self, data: Any) -> None:
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        limit = _env_int("CNNLAB_D2L_LIMIT_BATCHES")
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)
        if limit:
            self.num_train_batches = min(self.num_train_batches, limit)
            self.num_val_batches = min(self.num_val_batches, limit)
            # wrapped, so that a fit_epoch of the notebook's own stops at the cap too
            self.train_dataloader = Limited(self.train_dataloader, limit)
            if self.val_dataloader is not None:
                self.val_dataloader = Limited(self.val_dataloader, limit)

    def prepare_model(self, model: Module) -> None:
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        if self.gpus:
            model.to(self.gpus[0])
        self.model = model

    def prepare_batch(self, batch: Any) -> Any:
        if self.gpus:
            batch = [a.to(self.gpus[0]) for a in batch]
        return batch

    def clip_gradients(self, grad_clip_val: float, model: torch.nn.Module) -> None:
        """Rescale all gradients so that their joint L2 norm is at most ``grad_clip_val``."""
        params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
        if norm > grad_clip_val:
            for p in params:
                p.grad[:] *= grad_clip_val / norm

    @property
    def device(self) -> torch.device:
        return self.gpus[0] if self.gpus else cpu()

    def _epochs(self) -> int:
        cap = _env_int("CNNLAB_D2L_MAX_EPOCHS")
        return min(int(self.max_epochs), cap) if cap else int(self.max_epochs)

    # --- fit ------------------------------------------------------------------------------
    def fit(self, model: Module, data: Any) -> None:
        """Train ``model`` on ``data`` for ``max_epochs`` epochs, drawing ``model.board``."""
        # a notebook may put the book's own __init__ on d2l.Trainer (6.7 does), which
        # sets neither of cnnlab's two attributes
        self.out_dir = getattr(self, "out_dir", None)
        self.accel = getattr(self, "accel", None)
        self.gpus = getattr(self, "gpus", [])
        if self.out_dir is not None and hasattr(model, "board"):
            os.makedirs(self.out_dir, exist_ok=True)
            model.board.png_path = os.path.join(self.out_dir, "d2l-board.png")
        if self._fast_path_ok(model, data):
            self._fit_fast(model, data)
        else:
            self._fit_loop(model, data)
        flush = getattr(getattr(model, "board", None), "flush", None)
        if flush is not None:
            flush()  # the PNG redraws are throttled: write the last points now

    @staticmethod
    def _fast_path_ok(model: Any, data: Any) -> bool:
        if not isinstance(model, Module) or not isinstance(data, FashionMNIST):
            return False
        if any(_overrides(data, FashionMNIST, name)
               for name in ("get_dataloader", "train_dataloader", "val_dataloader")):
            return False
        if _overrides(model, Module, "training_step") or _overrides(model, Module, "plot"):
            return False
        if isinstance(model, Classifier) and _overrides(model, Classifier, "accuracy"):
            return False  # cnnlab counts argmax hits; a custom accuracy needs the book's loop
        return type(model).validation_step in (Module.validation_step,
                                               Classifier.validation_step)

    def _fit_fast(self, model: Module, data: FashionMNIST) -> None:
        from cnnlab.train.config import TrainConfig
        from cnnlab.train.trainer import Trainer as CnnlabTrainer

        device = self.device
        module = data._module if device.type == "cpu" else data.cnnlab_module(device)
        self.prepare_data(module)
        self.prepare_model(model)
        from cnnlab.train.startup import defer_dynamo

        defer_dynamo()  # torch.optim would import torch._dynamo, which no eager run needs
        self.optim = model.configure_optimizers()
        if not isinstance(self.optim, torch.optim.Optimizer):
            self._loop(model, data, self._epochs())
            return
        self.epoch, self.train_batch_idx, self.val_batch_idx = 0, 0, 0
        if self._epochs() == 0:  # zero is a value (the book's loop runs no epoch), not "unset"
            self.history = []
            return
        limit = _env_int("CNNLAB_D2L_LIMIT_BATCHES")
        config = TrainConfig(
            model=type(model).__name__.lower(), epochs=self._epochs(),
            batch_size=int(data.batch_size), lr=float(self.optim.param_groups[0]["lr"]),
            device=device.type, grad_clip=float(self.gradient_clip_val or 0),
            limit_train_batches=limit, limit_val_batches=limit, out_dir=self.out_dir,
            accel=self._accel())
        with_acc = type(model).validation_step is Classifier.validation_step
        inner = CnnlabTrainer(config, model=model, data=module, loss_fn=_ModelLoss(model),
                              optimizer=self.optim,
                              callbacks=[_BoardFeed(self, model, with_acc)],
                              save=self.out_dir is not None, live_plot=False)
        # cnnlab.accel's CPU kernels for the book's layers (same parameters, so the
        # optimizer built above still holds them) while training only: afterwards the
        # notebook's own layer objects are back, e.g. for a layer-by-layer walk
        from cnnlab.accel import accelerated

        with accelerated(model, device) if config.accel else contextlib.nullcontext():
            self.history = inner.fit()
        model.eval()  # as the book's loop leaves it: validation comes last in each epoch

    def _accel(self) -> bool:
        return accel_enabled(self.accel)

    def _fit_loop(self, model: Module, data: Any) -> None:
        self.prepare_data(data)
        self.prepare_model(model)
        from cnnlab.train.startup import defer_dynamo

        defer_dynamo()  # torch.optim would import torch._dynamo, which no eager run needs
        self.optim = model.configure_optimizers()
        self._loop(model, data, self._epochs())

    def _loop(self, model: Module, data: Any, epochs: int) -> None:
        self.epoch, self.train_batch_idx, self.val_batch_idx = 0, 0, 0
        for self.epoch in range(epochs):
            self.fit_epoch()

    def fit_epoch(self) -> None:
        """One pass of the book's loop: training_step per batch, then validation_step."""
        self.model.train()
        for i, batch in enumerate(self.train_dataloader):
            if i >= self.num_train_batches:
                break
            loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            with torch.no_grad():
                loss.backward()
                if self.gradient_clip_val > 0:
                    self.clip_gradients(self.gradient_clip_val, self.model)
                self.optim.step()
            self.train_batch_idx += 1
        if self.val_dataloader is None:
            return
        self.model.eval()
        for i, batch in enumerate(self.val_dataloader):
            if i >= self.num_val_batches:
                break
            with torch.no_grad():
                self.model.validation_step(self.prepare_batch(batch))
            self.val_batch_idx += 1


def accel_enabled(flag: bool | None) -> bool:
    """Whether to train with cnnlab.accel: ``flag`` if given, else not ``CNNLAB_ACCEL=0``."""
    if flag is not None:
        return bool(flag)
    return os.environ.get("CNNLAB_ACCEL", "1").strip() != "0"


def _num_gpus() -> int:
    return num_gpus()
