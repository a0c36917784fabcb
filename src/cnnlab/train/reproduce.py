"""`cnnlab reproduce`: the users' chapter 7-8 training runs with the book's settings.

Each experiment is the model's registry defaults (the book's lr, batch size,
epochs and input size; minibatch SGD, constant lr, plain cross-entropy). Every
run gets its own run directory under ``out``; ``out/reproduce.md`` collects
final validation accuracy, wall time and device, and links the curves.

Example:
    >>> EXPERIMENTS
    ('lenet', 'lenet-modern', 'vgg11-narrow', 'resnet18')
"""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

EXPERIMENTS = ("lenet", "lenet-modern", "vgg11-narrow", "resnet18")


def experiment_names(which: str) -> list[str]:
    if which == "all":
        return list(EXPERIMENTS)
    if which not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {which!r}; pick one of "
                          f"{', '.join(EXPERIMENTS)} or all")
    return [which]


def reproduce(names: Sequence[str], out: str | Path, epochs: int | None = None,
              dataset: str = "fashion-mnist", data_dir: str | None = None,
              device: str = "auto", **overrides: Any) -> list[dict[str, Any]]:
    """Train each named model with the book's settings; write ``out/reproduce.md``."""
    import torch

    from cnnlab.train.resolve import resolve_config
    from cnnlab.train.trainer import Trainer

    out = Path(out)
    rows = []
    for name in names:
        cfg = TrainConfig(model=name, dataset=dataset, data_dir=data_dir, epochs=epochs,
                          device=device, out_dir=str(out / name), **overrides)
        explicit = {"model", "dataset", "data_dir", "device", "out_dir", *overrides}
        if epochs is not None:
            explicit.add("epochs")
        cfg = resolve_config(cfg, explicit)
        print(f"== {name}: {cfg.epochs} epochs, lr {cfg.lr:g}, batch {cfg.batch_size}, "
              f"{cfg.resize}x{cfg.resize} ==", flush=True)
        trainer = Trainer(cfg)
        start = time.perf_counter()
        history = trainer.fit()
        wall = time.perf_counter() - start
        dev = trainer.device
        dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
            f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        rows.append({"model": name, "epochs": len(history),
                     "val_acc": history[-1]["val_acc"] if history else float("nan"),
                     "train_loss": history[-1]["train_loss"] if history else float("nan"),
                     "seconds": wall, "device": dev_name, "lr": cfg.lr,
                     "batch_size": cfg.batch_size, "resize": cfg.resize})
        write_report(rows, out, dataset)
    return rows


def write_report(rows: Sequence[dict[str, Any]], out: Path, dataset: str) -> Path:
    """``out/reproduce.md``: one table row per experiment, then each run's curves."""
    import torch

    from cnnlab import __version__

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# cnnlab reproduce ({dataset})", "",
             f"cnnlab {__version__}, torch {torch.__version__}, {when}. Book settings: "
             "minibatch SGD, constant lr, cross-entropy.", "",
             "| model | epochs | lr | batch | input | final val acc | final train loss "
             "| wall time (s) | device |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['epochs']} | {r['lr']:g} | {r['batch_size']} | "
                     f"{r['resize']}x{r['resize']} | {r['val_acc']:.4f} | "
                     f"{r['train_loss']:.4f} | {r['seconds']:.1f} | {r['device']} |")
    lines.append("")
    for r in rows:
        lines += [f"## {r['model']}", "", f"![{r['model']} curves]({r['model']}/curves.png)", ""]
    path = out / "reproduce.md"
    from cnnlab.guards import atomic_output

    with atomic_output(path) as tmp:  # an earlier report stays whole if this write fails
        tmp.write_text("\n".join(lines))
    return path
