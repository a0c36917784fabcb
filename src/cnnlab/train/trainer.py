"""The one training loop: d2l's ``Trainer.fit`` plus what a real run needs.

Per batch it does what the book's loop does (forward, cross-entropy, backward,
SGD step, sections 3.4 and 7.6), and around it: lr schedules, mixed precision,
gradient clipping, a progress bar, a history, plots, atomic checkpoints,
bitwise-reproducible resume, divergence detection and DistributedDataParallel.

The loop never waits for the device per batch: loss and accuracy are summed
as device tensors and read once per epoch (and every ``SYNC_EVERY`` steps for
the progress bar and the NaN check).

Example:
    >>> from cnnlab.train import Trainer, TrainConfig
    >>> cfg = TrainConfig(model="lenet", dataset="synthetic", epochs=1,
    ...                   num_train=256, limit_val_batches=2)
    >>> history = Trainer(cfg, save=False).fit()  # doctest: +SKIP
    >>> sorted(history[0])  # doctest: +SKIP
    ['epoch', 'images_per_s', 'lr', 'seconds', 'train_acc', 'train_loss', 'val_acc', 'val_loss']
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import DistContext, unwrap
from cnnlab.train.runfiles import RunFiles, new_run_dir, refuse_earlier_run
from cnnlab.train.schedules import make_scheduler
from cnnlab.train.signals import StopSignals, agreed, interrupted, preempt, resume_point
from cnnlab.train.steps import (
    build_optimizer,
    effective_precision,
    evaluate_batches,
    format_row,
    normalization_of,
    pick_device,
    seed_everything,
    synchronized_clock,
    torch_settings,
)
from cnnlab.train.threads import ThreadGovernor

SYNC_EVERY = 20  # steps between host reads of the running loss (progress bar, NaN check)
DRY_RUN_BATCHES = 2


def _check_args(config: Any, model: Any, data: Any, optimizer: Any, callbacks: Any,
                resume: Any) -> None:
    """The Trainer's arguments by type, each named (a public API: users pass anything)."""
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig (e.g. TrainConfig(model='lenet')), "
                          f"got {type(config).__name__}")
    if model is not None and not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
    if data is not None and not (hasattr(data, "train_dataloader")
                                 and hasattr(data, "val_dataloader")):
        raise ConfigError(f"data must be a DataModule (with train_dataloader and "
                          f"val_dataloader) or None, got {type(data).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"optimizer must be a torch.optim.Optimizer or None, got "
                          f"{type(optimizer).__name__}")
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise ConfigError(f"callbacks must be a list of callback objects, got {callbacks!r}")
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise ConfigError(f"resume must be a checkpoint path (str or pathlib.Path) or None, "
                          f"got {type(resume).__name__}")


class Trainer:
    """Train a model as ``config`` says; see the module docstring.

    ``model``, ``data``, ``loss_fn`` and ``optimizer`` override what the config
    would build. ``resume``: a checkpoint to continue from. ``save=False``:
    write no run directory. ``live_plot``: redraw the curves in Jupyter
    (default: when running in a notebook kernel).
    """

    def __init__(self, config: TrainConfig, model: nn.Module | None = None, data: Any = None,
                 loss_fn: Any = None, optimizer: torch.optim.Optimizer | None = None,
                 callbacks: Sequence[Any] = (), *, resume: str | Path | None = None,
                 save: bool = True, live_plot: bool | None = None) -> None:
        from cnnlab.train.resolve import resolve_config

        _check_args(config, model, data, optimizer, callbacks, resume)
        if model is None:
            if not getattr(config, "_resolved", False):  # resolve_config marks its output
                config = resolve_config(config)
        else:  # a user's own nn.Module: no registry entry to take book values from
            config = TrainConfig.from_dict(config.to_dict())
            config.epochs = config.epochs or 10
            config.batch_size = config.batch_size or 128
            config.lr = config.lr or 0.1
            config.validate()
        self.config = config
        self.dist = DistContext.from_env()
        self.device = pick_device(config.device, self.dist.local_rank)
        # what the device runs (bf16 below sm_80: fp16), and why, for the first line
        self.precision, self.precision_note = effective_precision(config.precision, self.device)
        if data is None and config.batch_size % self.dist.world_size:
            n = self.dist.world_size
            raise ConfigError(
                f"batch_size={config.batch_size} is the global batch, split over {n} processes; "
                f"pass a multiple of {n}, e.g. batch_size={config.batch_size // n * n or n}")
        self.model = model
        self.data = data
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.callbacks = list(callbacks)
        self.resume = Path(resume) if resume else None
        self.live_plot = live_plot
        self.history: list[dict[str, Any]] = []
        self.best = -math.inf
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps so far
        self._run_dir = self._choose_run_dir(save)
        self.files: RunFiles | None = None
        self._stop = StopSignals()  # SIGTERM/SIGUSR1: save at the next step; SIGHUP: Ctrl-C
        self._skip, self._partial = 0, {}  # a mid-epoch resume: batches done, running sums
        if config.logger == "tensorboard":  # checked here: a missing package fails at once
            from cnnlab.train.loggers import TensorBoardLogger

            self.callbacks.append(TensorBoardLogger())

    # ------------------------------------------------------------------ set-up
    @property
    def run_dir(self) -> Path | None:
        """Where this run writes (None: writes nothing, e.g. dry runs and ranks > 0)."""
        return self._run_dir

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def _choose_run_dir(self, save: bool) -> Path | None:
        cfg = self.config
        if not save or not self.dist.is_main:
            return None
        if self.resume is not None:  # a checkpoint's own out_dir is never trusted
            if cfg.dry_run:  # a check of the resume: the run's files stay as they are
                return None
            # the folder the user named, even when last.pt is a link into another run
            return Path(os.path.abspath(self.resume)).parent
        if cfg.out_dir:
            return Path(cfg.out_dir)
        if cfg.dry_run:
            return None
        return new_run_dir(cfg.model)

    def _build(self, scope: contextlib.ExitStack | None = None) -> None:
        """Data, model, optimizer, schedule; ``scope`` (fit's): CPU kernels while it lasts."""
        cfg = self.config
        if self.device.type == "cpu":
            from cnnlab.accel import keep_freed_memory

            keep_freed_memory()  # no page faults on each step's fresh activations
        if self.data is None:
            from cnnlab.data import DataModule

            self.data = DataModule(
                # batch_size is the global batch: each of N processes takes 1/N of it, so
                # that a torchrun run takes the steps of the one-process run
                name=cfg.dataset, batch_size=cfg.batch_size // self.dist.world_size,
                resize=cfg.resize, root=cfg.data_dir, device=str(self.device),
                normalize=cfg.normalize, augment=cfg.augment, seed=cfg.seed,
                num_train=cfg.num_train, rank=self.dist.rank,
                world_size=self.dist.world_size,
                drop_last=cfg.compile)  # one batch shape: one compile, not two
        if self.model is None:
            from cnnlab.models import create_model

            self.model = create_model(cfg.model, num_classes=self.data.num_classes,
                                      in_channels=self.data.in_channels,
                                      input_size=int(self.data.image_size[0]),
                                      **(cfg.extra or {}))
            built = True
            if self.device.type == "cpu":
                from cnnlab.train.budget import check_training_memory

                # an absurd batch_size or resize: one line naming the machine's memory,
                # not the OOM killer (one image through the model measures what a batch needs)
                check_training_memory(self.model, self.data.batch_size, self.data.in_channels,
                                      int(self.data.image_size[0]), cfg.optimizer, cfg.model)
        else:
            built = False
        self.model.to(self.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if (scope is not None and built and cfg.accel and self.device.type == "cpu"
                and not cfg.compile):
            # cnnlab.accel's CPU kernels for the small convolutions, sigmoid + avg-pool
            # pairs and 2x2 avg-pools, for fit() only: the same Parameter objects (so the
            # optimizer and checkpoints are unchanged), and the model's own layers again
            # when fit() ends. A no-op for models it cannot help.
            from cnnlab.accel import accelerated

            scope.enter_context(accelerated(self.model, cfg))  # channels_last decides too
        if self.loss_fn is None:
            self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
            self.val_loss_fn = nn.CrossEntropyLoss()  # the book's val loss, comparable across runs
        else:
            self.val_loss_fn = self.loss_fn
        if self.optimizer is None:
            from cnnlab.train.startup import defer_dynamo

            defer_dynamo()  # torch.optim would import torch._dynamo, which no eager run needs
            self.optimizer = build_optimizer(self.model.parameters(), cfg, self.device)
        n = len(self.data.train_dataloader())
        self.steps_per_epoch = min(n, self._limit(cfg.limit_train_batches))
        if self.steps_per_epoch < 1:
            raise ConfigError("the training set gives no batch; use a smaller batch_size= "
                              "or more training images (num_train=)")
        self.scheduler = make_scheduler(self.optimizer, cfg.schedule,
                                        self.epochs * self.steps_per_epoch,
                                        round(cfg.warmup_epochs * self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        net = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        if cfg.compile:
            net = torch.compile(net)
        self.net = net

    @property
    def epochs(self) -> int:
        # a dry run: a few batches of one epoch (of the next one, when resuming)
        return getattr(self, "_dry_end", 1) if self.config.dry_run else int(self.config.epochs)

    def _limit(self, value: int | None) -> int:
        if self.config.dry_run:
            return DRY_RUN_BATCHES
        return value if value else sys.maxsize

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _load_resume(self) -> None:
        state = ckpt.load_checkpoint(self.resume, map_location=self.device)
        ckpt.check_fits(state, self.resume, num_classes=self.data.num_classes,
                        in_channels=self.data.in_channels)
        got = ckpt.restore_training_state(
            state, self.resume, model=unwrap(self.model), optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, rank=self.dist.rank,
            world_size=self.dist.world_size)
        if got["note"] and self.is_main:
            print(got["note"], flush=True)
        self.epoch, self.step = got["epoch"], got["step"]
        self._skip, self._partial = resume_point(state)  # a SIGTERM's mid-epoch checkpoint
        self.history, self.best = got["history"], got["best"]
        self._dry_end = self.epoch + 1

    def _check_batch_size(self) -> None:
        # A batch larger than the data is one partial batch per epoch: almost surely a
        # mistake in --batch-size or --num-train, so say so before any work is done.
        loader = self.data.train_dataloader()
        n, size = getattr(loader, "num_examples", None), getattr(loader, "batch_size", None)
        if isinstance(n, int) and isinstance(size, int) and size > n:
            raise ConfigError(f"batch_size {size} is larger than the {n} training images; "
                              f"pass batch_size={n} or less, or more images (num_train=)")

    # ------------------------------------------------------------------ the loop
    def fit(self) -> list[dict[str, Any]]:
        """Train for ``config.epochs`` epochs; return the history (one dict per epoch)."""
        cfg = self.config
        scope = contextlib.ExitStack()  # what fit() changes, undone when it ends
        try:
            self._stop.__enter__()
            scope.enter_context(torch_settings(self.device, num_threads=cfg.num_threads,
                                               deterministic=cfg.deterministic))
            if self._run_dir is not None and self.resume is None:
                # say so before any work (and before other DDP ranks wait on this one)
                refuse_earlier_run(self._run_dir)
            self.dist.start(self.device)
            self._threads = ThreadGovernor.for_run(cfg.num_threads, cfg.deterministic) \
                if self.device.type == "cpu" else None
            if self._threads is not None:
                self._threads.begin()  # the set-up below counts towards its first sample
            seed_everything(cfg.seed)
            self._build(scope)
            if self.dist.enabled:  # the same initial weights, but each rank its own dropout
                seed_everything((cfg.seed + self.dist.rank * 0x9E3779B97F4A7C15) % 2**63)
            self._check_batch_size()
            if self.resume is not None:
                self._load_resume()
            if self._run_dir is not None:
                self.files = RunFiles(self._run_dir, cfg, resumed=self.resume is not None)
                self.files.start(self.history)
                self.files.prepare_figures(list(getattr(self.data, "classes", [])))
            if self.live_plot is None:
                from cnnlab.train.plots import in_notebook

                self.live_plot = self.is_main and in_notebook()
            if self._threads is not None:
                self._threads.start()
            if self.is_main:
                print(self._banner(), flush=True)
            if self.epoch >= self.epochs and self.is_main:
                print(f"nothing to do: the run already has {self.epoch} epochs "
                      f"(ask for more epochs to train on)", flush=True)
            confusion = None
            while self.epoch < self.epochs:
                row, confusion = self._epoch()
                self.last_confusion = confusion  # for loggers' on_epoch_end
                self._end_epoch(row)
            if self.files is not None:
                self.files.finish(confusion, list(getattr(self.data, "classes", [])))
            for cb in self.callbacks:
                if hasattr(cb, "on_fit_end"):
                    cb.on_fit_end(self)
            return self.history
        except KeyboardInterrupt as e:  # Ctrl-C or SIGHUP: one line, printed by the caller
            raise interrupted(self, e) from None
        finally:
            self._stop.__exit__()
            if getattr(self, "_active_bar", None) is not None:
                self._active_bar.close()  # no half bar left above an error message
            if self.files is not None:
                self.files.draw_pending()  # curves.png of every finished epoch, even if stopped
                self.files.close()  # unlocks the run directory
            self.dist.stop()
            scope.close()  # the model's own layers and the torch settings of before

    def _banner(self) -> str:
        cfg = self.config
        where = f"; writing {self._run_dir}" if self._run_dir is not None else ""
        n = self.dist.world_size
        ranks = f" ({cfg.batch_size // n} x {n} processes)" if self.dist.enabled else ""
        start = f" from epoch {self.epoch + 1}" if self.epoch else ""
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        k = torch.get_num_threads()
        threads = f" ({k} thread{'s' if k != 1 else ''})" if self.device.type == "cpu" else ""
        note = f" [{self.precision_note}]" if self.precision_note else ""
        return (f"training {cfg.model} on {cfg.dataset}: {epochs}{start} of "
                f"{self.steps_per_epoch} steps, batch {cfg.batch_size}{ranks}, "
                f"{cfg.optimizer} lr {cfg.lr:g}, {self.precision} on {self.device}{threads}"
                f"{where}{note}")

    def _epoch(self) -> tuple[dict[str, Any], list[list[int]]]:
        cfg, epoch = self.config, self.epoch
        if hasattr(self.data, "set_epoch"):
            self.data.set_epoch(epoch)
        if getattr(self, "_threads", None) is not None:
            self._threads.update()  # what other programs used of the CPUs since the last look
        start = synchronized_clock(self.device)
        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        skip, partial = self._skip, self._partial  # resumed mid-epoch: go on after `skip`
        self._skip, self._partial = 0, {}
        if partial:
            loss_sum += partial.get("loss_sum", 0.0)
            correct += int(partial.get("correct", 0))
            count, start = int(partial.get("count", 0)), start - partial.get("seconds", 0.0)
        lr = self.optimizer.param_groups[0]["lr"]
        bar = self._active_bar = self._bar(epoch)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for i, (X, y) in enumerate(self.data.train_dataloader()):
            if i >= self.steps_per_epoch:
                break
            if i < skip:  # trained on before the stop; drawn anyway so the RNGs stay in step
                continue
            if agreed(self._stop, self.dist, i, SYNC_EVERY, self.device):
                raise preempt(self, i, {"loss_sum": loss_sum.item(), "correct": correct.item(),
                                        "count": count, "seconds": time.perf_counter() - start})
            if X.device != self.device:  # a user's own data module on another device
                X, y = X.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if cfg.channels_last and X.dim() == 4:
                X = X.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                Y_hat = self.net(X)
                loss = self.loss_fn(Y_hat, y)
            if loss.dim():
                loss = loss.mean()
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            lr = self.optimizer.param_groups[0]["lr"]  # the lr this step used (host float)
            self.scheduler.step()
            self.step += 1
            n = y.shape[0]
            loss_sum += loss.detach().double() * n
            correct += (Y_hat.detach().argmax(dim=1) == y).sum()
            count += n
            if bar is not None:
                bar.update(1)
            if (i + 1) % SYNC_EVERY == 0:  # the only per-step host syncs
                running = self._check_finite(loss_sum, i + 1)
                for cb in self.callbacks:  # e.g. TensorBoard's loss every SYNC_EVERY steps
                    if hasattr(cb, "on_train_steps"):
                        cb.on_train_steps(self, running, count)
                if bar is not None:
                    secs = time.perf_counter() - start
                    bar.set_postfix(loss=f"{running / count:.3f}",
                                    acc=f"{correct.item() / count:.3f}",
                                    img_s=f"{count * self.dist.world_size / secs:.0f}")
        train_secs = synchronized_clock(self.device) - start  # the GPU's work, not its queue
        if bar is not None:
            bar.close()
        totals = torch.stack([loss_sum, correct.double(),
                              torch.tensor(float(count), dtype=torch.float64,
                                           device=self.device)])
        self.dist.all_reduce_sum(totals)
        total_loss, total_correct, total = totals.tolist()
        if not math.isfinite(total_loss):
            self._diverged(total_loss, self.steps_per_epoch)
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 >= self.epochs:
            # test-time augmentation (twice the work) for the final figures only
            result = self.evaluate(limit=self._limit(cfg.limit_val_batches),
                                   tta=cfg.tta and epoch + 1 >= self.epochs)
        else:  # skipped (--val-every): no figures for this epoch, and no best.pt
            result = {"loss": None, "acc": None, "confusion": None}
        seconds = synchronized_clock(self.device) - start
        row = {"epoch": epoch + 1, "train_loss": total_loss / max(total, 1),
               "train_acc": total_correct / max(total, 1), "val_loss": result["loss"],
               "val_acc": result["acc"], "lr": lr, "seconds": round(seconds, 3),
               "images_per_s": round(total / max(train_secs, 1e-9), 1)}
        return row, result["confusion"]

    def _check_finite(self, loss_sum: torch.Tensor, steps: int) -> float:
        total = self.dist.all_reduce_sum(loss_sum.detach().clone()) if self.dist.enabled \
            else loss_sum
        value = total.item()
        if not math.isfinite(value):
            self._diverged(value, steps)
        return loss_sum.item() if self.dist.enabled else value

    def _diverged(self, value: float, steps: int) -> None:
        where = ""
        if self._run_dir is not None and (self._run_dir / "last.pt").exists():
            where = f"; {self._run_dir / 'last.pt'} keeps the last good epoch ({self.epoch})"
        lr = self.config.lr or self.optimizer.param_groups[0]["lr"]
        raise TrainingDiverged(
            f"the training loss became {value} in epoch {self.epoch + 1} by step {steps}: "
            f"lower the learning rate (lr={lr / 10:g}) or add grad_clip=1{where}")

    def _bar(self, epoch: int):
        if not (self.is_main and sys.stderr.isatty()):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.epochs}",
                    leave=False, file=sys.stderr, unit="batch", dynamic_ncols=True)

    def _end_epoch(self, row: dict[str, Any]) -> None:
        self.epoch += 1
        self.history.append(row)
        improved = row["val_acc"] is not None and row["val_acc"] > self.best
        if improved:
            self.best = row["val_acc"]
        if self.is_main:
            print(format_row(row, self.epochs), flush=True)
        # every rank's random state (each has its own dropout stream); all ranks take part
        rng_ranks = self.dist.all_gather_object(ckpt.rng_state()) if self.dist.enabled else None
        if self.files is not None:
            if self.epoch >= self.epochs:  # the figures draw beside the checkpoint's save
                self.files.draw_early(self.history, self.last_confusion,
                                      list(getattr(self.data, "classes", [])))
            state = self.checkpoint_state(rng_ranks=rng_ranks)
            # best.pt before last.pt: a kill between the two leaves last.pt one epoch
            # behind, and the resumed run rewrites best.pt identically. One write: last.pt
            # is a hard link to the new best.pt.
            d = self.files.dir
            ckpt.save_checkpoints(state, [d / "best.pt", d / "last.pt"] if improved
                                  else [d / "last.pt"])
            self.files.add_row(row, self.history)
        if self.live_plot:
            from cnnlab.train.plots import show_live

            show_live(self.history, self.config.model)
        for cb in self.callbacks:
            if hasattr(cb, "on_epoch_end"):
                cb.on_epoch_end(self, row)

    def checkpoint_state(self, rng_ranks: list[dict[str, Any]] | None = None
                         ) -> dict[str, Any]:
        """The checkpoint dict of the current state (see docs/DESIGN.md). ``rng_ranks``:
        every process's random state, gathered by all of them (DDP)."""
        cfg = self.config.to_dict()
        if self._run_dir is not None:
            cfg["out_dir"] = str(self._run_dir)
        data = self.data
        return {
            "format": ckpt.FORMAT, "version": ckpt.VERSION,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "epoch": self.epoch, "step": self.step, "config": cfg,
            "best": self.best, "history": [dict(r) for r in self.history],
            "classes": [str(c) for c in getattr(data, "classes", [])],
            "num_classes": int(data.num_classes), "in_channels": int(data.in_channels),
            "image_size": [int(s) for s in data.image_size],
            "normalization": normalization_of(data),
            **({"rng_ranks": rng_ranks} if rng_ranks else {}),
        }

    def lr_find(self, **kwargs: Any):
        """The LR range test (Smith 2017) on this trainer's model, data and optimizer,
        which it leaves as they were; see :func:`cnnlab.train.lr_find.lr_find`."""
        from cnnlab.train.lr_find import lr_find

        return lr_find(self, **kwargs)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, loader: Iterable | None = None, limit: int | None = None,
                 tta: bool | None = None) -> dict[str, Any]:
        """Loss, accuracy and confusion matrix (rows: true class) on ``loader`` (default: val).

        ``tta``: average with the mirror image (default: ``config.tta``). Outside ``fit()``
        the model's own layers run (no kernels swapped in).
        """
        if not hasattr(self, "net"):
            self.dist.start(self.device)
            self._build()
        model = unwrap(self.model)
        was_training = model.training
        model.eval()
        if loader is None:
            loader = self.data.val_dataloader()
        loss_sum, confusion = evaluate_batches(
            model, loader, device=self.device, num_classes=int(self.data.num_classes),
            loss_fn=self.val_loss_fn, limit=limit, channels_last=self.config.channels_last,
            tta=self.config.tta if tta is None else tta, autocast=self._autocast)
        model.train(was_training)
        if self.dist.enabled and getattr(self.data, "world_size", 1) > 1:  # val is sharded
            self.dist.all_reduce_sum(loss_sum)
            self.dist.all_reduce_sum(confusion)
        k = int(self.data.num_classes)
        cm = confusion.view(k, k)
        total = int(cm.sum().item())
        return {"loss": loss_sum.item() / max(total, 1),
                "acc": int(cm.diagonal().sum().item()) / max(total, 1),
                "confusion": cm.tolist()}


