"""Experiment loggers: Trainer callbacks that send a run's numbers to a dashboard.

:class:`TensorBoardLogger` (``--logger tensorboard``, ``TrainConfig.logger``)
writes TensorBoard event files into the run directory, so that
``tensorboard --logdir runs`` shows every run under its folder's name:

- ``train/loss_steps``: the mean training loss of each window of ``SYNC_EVERY``
  steps, read where the loop already reads the loss (no extra device sync);
- per epoch: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``lr``,
  ``images_per_s`` and ``epoch``, all against the optimizer step;
- images: ``confusion`` (each validated epoch) and ``curves``;
- the hyperparameters with the final metrics (TensorBoard's HPARAMS tab).

metrics.csv and metrics.jsonl are written as always. A resumed run drops the
events the stopped run wrote after its checkpoint (``purge_step``).
TensorBoard is an optional extra: ``pip install 'cnnlab[tensorboard]'``.

Example:
    >>> from cnnlab.train import Trainer, TrainConfig
    >>> cfg = TrainConfig(model="lenet", dataset="synthetic", epochs=1, logger="tensorboard")
    >>> Trainer(cfg).fit()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package
        raise ConfigError("--logger tensorboard needs the tensorboard package: "
                          "pip install 'cnnlab[tensorboard]' (or pip install tensorboard)"
                          ) from None
    return SummaryWriter


class TensorBoardLogger:
    """A Trainer callback writing TensorBoard events (rank 0 only).

    ``log_dir``: where the event files go (default: the run directory; nothing is
    written by a run without one, e.g. a dry run without ``--out``).
    """

    def __init__(self, log_dir: str | Path | None = None) -> None:
        self._writer_cls = _summary_writer()  # fail at once if the package is missing
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.writer: Any = None
        self._prev = (0.0, 0)  # (running loss sum, examples) at the last window

    def _open(self, trainer: Any) -> Any:
        if self.writer is None and trainer.is_main:
            where = self.log_dir or trainer.run_dir
            if where is not None:
                # a resumed run: forget what the stopped run logged after its checkpoint
                purge = trainer.step if getattr(trainer, "resume", None) else None
                self.writer = self._writer_cls(log_dir=str(where), purge_step=purge)
        return self.writer

    def on_train_steps(self, trainer: Any, loss_sum: float, count: int) -> None:
        """The running sums of this rank's epoch so far (called every SYNC_EVERY steps)."""
        prev_sum, prev_count = self._prev if count > self._prev[1] else (0.0, 0)
        self._prev = (loss_sum, count)
        w = self._open(trainer)
        if w is not None and count > prev_count:
            w.add_scalar("train/loss_steps", (loss_sum - prev_sum) / (count - prev_count),
                         trainer.step)

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        self._prev = (0.0, 0)
        w = self._open(trainer)
        if w is None:
            return
        step = trainer.step
        for tag, key in (("train/loss", "train_loss"), ("train/acc", "train_acc"),
                         ("val/loss", "val_loss"), ("val/acc", "val_acc"), ("lr", "lr"),
                         ("images_per_s", "images_per_s"), ("epoch", "epoch")):
            value = row.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                w.add_scalar(tag, value, step)
        confusion = getattr(trainer, "last_confusion", None)
        if confusion is not None:
            classes = [str(c) for c in getattr(trainer.data, "classes", [])]
            w.add_image("confusion", _confusion_image(confusion, classes), step,
                        dataformats="HWC")
        from cnnlab.train.plots import curves_figure

        w.add_figure("curves", curves_figure(trainer.history), step)
        w.flush()  # a stopped run keeps every finished epoch's events

    def on_fit_end(self, trainer: Any) -> None:
        w = self._open(trainer)
        if w is None:
            return
        from torch.utils.tensorboard.summary import hparams

        last = trainer.history[-1] if trainer.history else {}
        metrics = {f"hparam/{k}": float(last[k]) for k in ("val_acc", "val_loss", "train_loss")
                   if isinstance(last.get(k), (int, float))}
        if math.isfinite(trainer.best):
            metrics["hparam/best_val_acc"] = float(trainer.best)
        params = {k: _hparam_value(v) for k, v in trainer.config.to_dict().items()
                  if k not in ("out_dir", "data_dir", "extra")}
        # written into this run's own file (SummaryWriter.add_hparams would start a new
        # sub-run per call), so the HPARAMS tab lists each run once, under its name
        file_writer = w._get_file_writer()
        for summary in hparams(params, metrics):
            file_writer.add_summary(summary)
        for tag, value in metrics.items():
            w.add_scalar(tag, value, trainer.step)
        w.close()
        self.writer = None


def _hparam_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # None and anything else: TensorBoard takes bool, number or string


def _confusion_image(confusion: list[list[int]], classes: list[str]):
    """The confusion-matrix PNG cnnlab draws, as an HxWx3 uint8 array."""
    import numpy as np
    from PIL import Image

    from cnnlab.train.plots import plot_confusion

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_confusion(confusion, classes, Path(tmp) / "confusion.png")
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()
