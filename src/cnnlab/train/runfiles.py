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
    ['config.json', 'metrics.csv', 'metrics.jsonl']
"""

from __future__ import annotations

import csv
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
# drawing (or the run's start), and always at the end: a drawing costs ~0.13 s (1 s for
# the first, which imports matplotlib), 2% of a 6 s LeNet epoch on 2 cores. Like
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

    def start(self, history: Sequence[dict[str, Any]]) -> None:
        """Create the directory, write config.json, (re)write the metrics from ``history``."""
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError(f"the run directory {self.dir} is a file; pass a folder as --out")
        if not self.resumed and (self.dir / "last.pt").exists():
            raise ConfigError(
                f"{self.dir} already holds a run (last.pt); continue it with --resume auto "
                "--out DIR, or pick another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".*.tmp"):  # left by a kill during a save
            stale.unlink(missing_ok=True)
        cfg = self.config.to_dict()
        cfg["out_dir"] = str(self.dir)
        _write_atomic(self.dir / "config.json", json.dumps(cfg, indent=2) + "\n")
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
        if time.monotonic() - self._drawn_at >= PLOT_EVERY_S:
            self.plot(history)
        else:
            self._undrawn = list(history)

    def plot(self, history: Sequence[dict[str, Any]]) -> None:
        """Draw curves.png from ``history`` now."""
        from cnnlab.train.plots import plot_curves

        plot_curves(history, self.dir / "curves.png", title=self._title())
        self._drawn_at, self._undrawn = time.monotonic(), None

    def draw_pending(self) -> None:
        """Bring curves.png up to the last epoch written (after an interruption too)."""
        if self._undrawn is not None:
            self.plot(self._undrawn)

    def finish(self, confusion: list[list[int]] | None, classes: list[str]) -> None:
        """Draw curves.png if it is behind, confusion.png (of the last validation), and
        say where everything is."""
        self.draw_pending()
        if confusion is not None:
            from cnnlab.train.plots import plot_confusion

            plot_confusion(confusion, classes, self.dir / "confusion.png", title=self._title())
        print(f"run directory: {self.dir}", flush=True)

    def _title(self) -> str:
        c = self.config
        return f"{c.model} on {c.dataset}, lr {c.lr:g}, batch {c.batch_size}"


def _write_atomic(path: Path, text: str) -> None:
    # a kill while (re)writing must leave the old file or the new one, never half of one
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
