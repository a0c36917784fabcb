"""The files of a run directory: config.json, metrics.csv/.jsonl, curves.png, confusion.png.

Checkpoints (best.pt, last.pt) are written by the Trainer through
:mod:`cnnlab.train.checkpoint`. Only rank 0 owns a RunFiles.

Example:
    >>> import tempfile, pathlib
    >>> from cnnlab.train.config import TrainConfig
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> files = RunFiles(d, TrainConfig(epochs=1))
    >>> files.start([])
    >>> sorted(p.name for p in d.iterdir())
    ['config.json', 'config.yaml', 'metrics.csv', 'metrics.jsonl']
"""

from __future__ import annotations

import csv
import datetime
import errno
import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
           "images_per_s")
# curves.png is redrawn after an epoch only if this many seconds passed since the last
# drawing (or the run's start), and always at the end: a drawing costs a visible share
# of a short LeNet epoch on a laptop (the first also imports matplotlib). Like
# TensorBoard's flush_secs.
PLOT_EVERY_S = 30.0


class RunFiles:
    """Writes the non-checkpoint files of one run directory."""

    def __init__(self, directory: str | Path, config: TrainConfig, resumed: bool = False):
        self.dir = Path(directory)
        self.config = config
        self.resumed = resumed
        self._drawn_at = time.monotonic()
        self._undrawn: Sequence[dict[str, Any]] | None = None  # history not yet in curves.png
        self._drawn_rows = -1  # how many epochs the last curves.png drawing showed
        self._confusion_drawn: list[list[int]] | None = None
        self._lock: int | None = None  # the run directory's open fd, locked while we write

    def start(self, history: Sequence[dict[str, Any]]) -> None:
        """Create and lock the directory, write config.json, (re)write the metrics from
        ``history``. Call :meth:`close` at the end of the run to unlock it."""
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError(f"the run directory {self.dir} is a file; pass a folder as out_dir=")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = lock_run_dir(self.dir)
        if not self.resumed:  # checked again under the lock: another run may just have begun
            refuse_earlier_run(self.dir)
        for stale in self.dir.glob(".*.tmp"):  # left by a kill during a save
            stale.unlink(missing_ok=True)
        cfg = self.config.to_dict()
        cfg["out_dir"] = str(self.dir)
        _write_atomic(self.dir / "config.json", json.dumps(cfg, indent=2) + "\n")
        from cnnlab.train.configfile import config_yaml  # `cnnlab train --config` reads it

        _write_atomic(self.dir / "config.yaml", config_yaml(self.config))
        self._rewrite(history)

    def _rewrite(self, history: Sequence[dict[str, Any]]) -> None:
        # A resumed run's metrics are exactly its checkpoint's history, whatever the
        # killed process had appended after its last checkpoint.
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
        _write_atomic(self.dir / "metrics.csv", buf.getvalue())
        _write_atomic(self.dir / "metrics.jsonl",
                      "".join(json.dumps(row) + "\n" for row in history))
        if history:
            self.plot(history)

    def add_row(self, row: dict[str, Any], history: Sequence[dict[str, Any]]) -> None:
        """Append one epoch to the metrics files; redraw curves.png if the last drawing
        is PLOT_EVERY_S old (:meth:`finish` draws what is left)."""
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore").writerow(row)
        with open(self.dir / "metrics.csv", "a") as f:
            f.write(buf.getvalue())
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._drawn_rows == len(history):  # drawn already (draw_early)
            return
        if time.monotonic() - self._drawn_at >= PLOT_EVERY_S:
            self.plot(history)
        else:
            self._undrawn = list(history)

    def plot(self, history: Sequence[dict[str, Any]]) -> None:
        """Draw curves.png from ``history`` now (in the CLI's plotting helper process when
        there is one: :meth:`finish` and :meth:`close` wait for it)."""
        self._draw("plot_curves", list(history), path=self.dir / "curves.png",
                   title=self._title())
        self._drawn_at, self._undrawn = time.monotonic(), None
        self._drawn_rows = len(history)

    def draw_early(self, history: Sequence[dict[str, Any]], confusion: list[list[int]] | None,
                   classes: list[str]) -> None:
        """After the last epoch's evaluation, before its checkpoint is saved: hand the final
        figures to the plotting helper, which draws them while the checkpoint is written.
        Without a helper this does nothing (:meth:`finish` draws them)."""
        from cnnlab.train import plotter

        if plotter.current() is None:
            return
        self.plot(history)
        if confusion is not None:
            self._draw_confusion(confusion, classes)

    def prepare_figures(self, classes: list[str]) -> None:
        """Before the first epoch: have the plotting helper, if there is one, draw what
        confusion.png does not take from the counts (labels, title, colour bar), so that
        after the last epoch only the cells are drawn (``plots.prepare_confusion``)."""
        from cnnlab.train import plotter

        helper = plotter.current()
        if helper is not None and classes:
            helper.prepare("prepare_confusion", list(classes), title=self._title())

    @staticmethod
    def _draw(name: str, *args: Any, **kwargs: Any) -> None:
        from cnnlab.train import plots, plotter

        helper = plotter.current()
        if helper is not None:
            helper.submit(name, *args, **kwargs)
        else:
            getattr(plots, name)(*args, **kwargs)

    def wait_for_figures(self) -> None:
        """Return when every figure asked for is written."""
        from cnnlab.train import plotter

        helper = plotter.current()
        if helper is not None:
            helper.wait()

    def draw_pending(self) -> None:
        """Bring curves.png up to the last epoch written (after an interruption too)."""
        if self._undrawn is not None:
            self.plot(self._undrawn)

    def finish(self, confusion: list[list[int]] | None, classes: list[str]) -> None:
        """Draw curves.png if it is behind, confusion.png (of the last validation), and
        say where everything is."""
        self.draw_pending()
        if confusion is not None and confusion is not self._confusion_drawn:
            self._draw_confusion(confusion, classes)
        self.wait_for_figures()
        print(f"run directory: {self.dir}", flush=True)

    def _draw_confusion(self, confusion: list[list[int]], classes: list[str]) -> None:
        self._draw("plot_confusion", confusion, classes, path=self.dir / "confusion.png",
                   title=self._title())
        self._confusion_drawn = confusion

    def close(self) -> None:
        """Unlock the run directory (another run may write there now), once every figure
        asked for is written."""
        try:
            self.wait_for_figures()
        finally:
            self._close_lock()

    def _close_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the last fd releases the flock
            self._lock = None

    def _title(self) -> str:
        c = self.config
        return f"{c.model} on {c.dataset}, lr {c.lr:g}, batch {c.batch_size}"


def new_run_dir(name: str) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``, ... when that folder exists):
    the folder of a run the user gave no ``out_dir`` for."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def refuse_earlier_run(directory: Path) -> None:
    """ConfigError when ``directory`` holds what an earlier run would lose to a new one:
    a ``last.pt``, or finished epochs' metrics (with or without ``best.pt``). A folder
    whose first epoch never finished (config.json, a metrics header, perhaps the first
    best.pt of a run killed while saving) may be started again."""
    last = directory / "last.pt"
    if last.exists() or last.is_symlink():
        raise ConfigError(f"{directory} already holds a run; continue it with "
                          f"resume={last}, or pick another out_dir=")
    rows = directory / "metrics.jsonl"
    try:
        finished = rows.is_file() and rows.stat().st_size > 0
    except OSError:
        finished = False
    if finished:
        what = "best.pt and metrics" if (directory / "best.pt").exists() else "metrics"
        raise ConfigError(f"{directory} holds an earlier run's {what} but no last.pt, so it "
                          "can be neither continued nor overwritten; pick another out_dir= "
                          "or move those files away")


def lock_run_dir(directory: Path) -> int | None:
    """Lock ``directory`` for this process (``flock`` on the folder itself: no lock file to
    leave behind); return the open fd that holds the lock, or None where there are no
    locks. A run directory that another process holds is a ConfigError."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise ConfigError(f"{directory} is in use by another training right now; wait for "
                              "it to finish, or pick another out_dir=") from None
        return None  # a filesystem without locks (some network mounts): go on unlocked
    return fd


def _write_atomic(path: Path, text: str) -> None:
    # a kill while (re)writing must leave the old file or the new one, never half of one;
    # a full disk says which file
    from cnnlab.guards import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text)
