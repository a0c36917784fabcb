"""The Runs view: the curves and final metrics of the runs under the folders given.

Reads what the Trainer writes into a run directory (:mod:`cnnlab.train.runfiles`):
``metrics.jsonl`` (one JSON object per finished epoch; ``metrics.csv`` when it is
missing) and ``config.json``. Nothing is written. A run that is still training has
a last line being appended: a line that does not parse yet is skipped and read on
the next refresh.

Example:
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_acc": 0.5}) + "\\n{")
    30
    >>> read_history(d)
    [{'epoch': 1, 'val_acc': 0.5}]
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

CURVES = ("train_loss", "val_loss", "val_acc")
TABLE_COLUMNS = ("run", "model", "dataset", "epochs", "train_loss", "val_loss", "val_acc",
                 "best val_acc", "lr", "batch_size", "optimizer", "seconds")
MAX_ROWS = 100_000  # epochs read per run: a huge or endless file does not stall the page


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v) if v.strip() else None
        except ValueError:
            return v
    return v


def read_history(run: str | Path) -> list[dict[str, Any]]:
    """The epochs a run has finished, as dicts (numbers as numbers)."""
    run = Path(run)
    rows: list[dict[str, Any]] = []
    jsonl, csv_path = run / "metrics.jsonl", run / "metrics.csv"
    if jsonl.is_file():
        with open(jsonl, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f):
                if i >= MAX_ROWS:
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line being written right now, or a damaged one
                if isinstance(row, dict):
                    rows.append(row)
    elif csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
            for i, row in enumerate(csv.DictReader(f)):
                if i >= MAX_ROWS:
                    break
                rows.append({k: _number(v) for k, v in row.items() if k})
    return rows


def read_config(run: str | Path) -> dict[str, Any]:
    """config.json of a run, or {} when it is missing or unreadable."""
    try:
        cfg = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _fmt(v: Any, digits: int = 4) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, digits)
    return v


def run_row(label: str, run: Path) -> list[Any]:
    """One line of the runs table: the last epoch's metrics and the config's main settings."""
    hist, cfg = read_history(run), read_config(run)
    last = hist[-1] if hist else {}
    accs = [r["val_acc"] for r in hist if isinstance(r.get("val_acc"), (int, float))]
    seconds = sum(r["seconds"] for r in hist if isinstance(r.get("seconds"), (int, float)))
    return [label, cfg.get("model"), cfg.get("dataset"), len(hist),
            _fmt(last.get("train_loss")), _fmt(last.get("val_loss")), _fmt(last.get("val_acc")),
            _fmt(max(accs)) if accs else None, cfg.get("lr"), cfg.get("batch_size"),
            cfg.get("optimizer"), _fmt(seconds, 1) if hist else None]


def table(runs: dict[str, Path]) -> list[list[Any]]:
    """The runs table, one row per run (columns: TABLE_COLUMNS), best val_acc first."""
    rows = [run_row(label, path) for label, path in runs.items()]
    return sorted(rows, key=lambda r: -(r[7] if isinstance(r[7], (int, float)) else -1))


def curves(runs: dict[str, Path], metrics: tuple[str, ...] = CURVES) -> list[dict[str, Any]]:
    """Long-format points for a line plot: epoch, value, series (``run: metric``)."""
    points = []
    for label, path in runs.items():
        for row in read_history(path):
            epoch = row.get("epoch")
            for name in metrics:
                v = row.get(name)
                if isinstance(epoch, (int, float)) and isinstance(v, (int, float)) \
                        and math.isfinite(v):
                    points.append({"epoch": float(epoch), "value": float(v),
                                   "series": f"{label}: {name}"})
    return points


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[list[Any]]:
    """The config entries in which two runs differ: (key, value of a, value of b)."""
    keys = sorted(set(a) | set(b) - {"out_dir"})
    return [[k, str(a.get(k)), str(b.get(k))] for k in keys
            if k != "out_dir" and a.get(k) != b.get(k)]
