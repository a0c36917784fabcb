"""One configuration, several seeds: report the mean and spread, not one lucky run.

Accuracy differs from seed to seed by more than many of the changes one wants
to measure (airbench reports means over hundreds of runs), so
``cnnlab train MODEL --seeds 0,1,2`` trains once per seed into
``<out>/seed-<N>`` and prints a table with the mean +- sample standard
deviation (n - 1) of the final val_acc and of the wall time; ``<out>/seeds.csv``
keeps it.

Example:
    >>> mean, std = summarize([{"seed": 0, "val_acc": 0.80, "seconds": 10.0},
    ...                        {"seed": 1, "val_acc": 0.84, "seconds": 12.0}])["val_acc"]
    >>> round(mean, 4), round(std, 4)
    (0.82, 0.0283)
    >>> from cnnlab.train import TrainConfig
    >>> cfg = TrainConfig(model="lenet", dataset="synthetic", epochs=1, num_train=256)
    >>> result = run_seeds(cfg, [0, 1])  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """(mean, sample std) of val_acc and seconds over ``rows`` (std 0 for one row)."""
    out = {}
    for key in ("val_acc", "seconds"):
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        if not values:
            out[key] = (math.nan, math.nan)
            continue
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = (statistics.fmean(values), sd)
    return out


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The per-seed table and its mean +- std line."""
    lines = [f"{'seed':>6}  {'val_acc':>7}  {'seconds':>8}"]
    for r in rows:
        acc = f"{r['val_acc']:.4f}" if r.get("val_acc") is not None else "n/a"
        lines.append(f"{r['seed']:>6}  {acc:>7}  {r['seconds']:>8.1f}")
    s = summarize(rows)
    (acc, acc_sd), (secs, secs_sd) = s["val_acc"], s["seconds"]
    lines.append(f"{'mean':>6}  {acc:.4f} +- {acc_sd:.4f}  {secs:.1f} +- {secs_sd:.1f} s  "
                 f"({len(rows)} seed{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def run_seeds(config: TrainConfig, seeds: Iterable[int], *,
              explicit: Iterable[str] | None = None) -> dict[str, Any]:
    """Train ``config`` once per seed into ``<config.out_dir>/seed-<N>``.

    ``config.out_dir`` None: ``runs/<model>-seeds-<timestamp>``. ``explicit``: the
    fields the user set (see :func:`cnnlab.train.resolve.resolve_config`).
    Returns ``{"runs": [{seed, val_acc, seconds, run_dir}], "val_acc": (mean, std),
    "seconds": (mean, std), "out_dir": Path}`` and prints the table (rank 0).
    """
    from cnnlab.train.resolve import explicit_fields, resolve_config
    from cnnlab.train.runfiles import new_run_dir
    from cnnlab.train.trainer import Trainer

    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers, got {seeds!r}; "
                          "e.g. --seeds 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    explicit = set(explicit_fields(config) if explicit is None else explicit)
    base = Path(config.out_dir) if config.out_dir else new_run_dir(f"{config.model}-seeds")
    rows: list[dict[str, Any]] = []
    main = True
    for seed in seeds:
        cfg = TrainConfig.from_dict(config.to_dict())
        cfg.seed, cfg.out_dir = seed, str(base / f"seed-{seed}")
        cfg = resolve_config(cfg, explicit | {"seed", "out_dir"})
        trainer = Trainer(cfg)
        main = trainer.is_main
        start = time.perf_counter()
        history = trainer.fit()
        seconds = time.perf_counter() - start
        last = history[-1] if history else {}
        rows.append({"seed": seed, "val_acc": last.get("val_acc"), "seconds": seconds,
                     "run_dir": str(trainer.run_dir) if trainer.run_dir else None})
    summary = summarize(rows)
    if main:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["seed", "val_acc", "seconds", "run_dir"])
        writer.writeheader()
        writer.writerows(rows)
        base.mkdir(parents=True, exist_ok=True)
        (base / "seeds.csv").write_text(buf.getvalue())
        print(format_table(rows), flush=True)
        print(f"wrote {base / 'seeds.csv'}", flush=True)
    return {"runs": rows, **summary, "out_dir": base}
