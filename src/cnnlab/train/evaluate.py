"""`cnnlab eval`: accuracy, per-class accuracy and the confusion matrix of a checkpoint.

Example:
    >>> print(format_report({"acc": 0.5, "loss": 0.7, "confusion": [[1, 1], [0, 2]]},
    ...                     ["cat", "dog"]))  # doctest: +NORMALIZE_WHITESPACE
    accuracy 0.5000 (3/4)  loss 0.7000
    class  accuracy  images
    cat      0.5000       2
    dog      1.0000       2
    confusion (rows: true class, columns: predicted)
           cat  dog
    cat      1    1
    dog      0    2
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError


def evaluate_checkpoint(path: str | Path, dataset: str | None = None,
                        data_dir: str | None = None, device: str = "auto",
                        batch_size: int | None = None,
                        limit_batches: int | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on the test split of ``dataset`` (default: the one it was trained on).

    Returns ``dict(loss, acc, confusion, classes, model, dataset)``.
    """
    from cnnlab.guards import check_int
    from cnnlab.train.checkpoint import check_fits, model_from_checkpoint
    from cnnlab.train.distributed import DistContext
    from cnnlab.train.trainer import Trainer

    if limit_batches is not None:
        check_int("limit_batches", limit_batches, hint="e.g. limit_batches=10")
    if batch_size is not None:
        check_int("batch_size", batch_size, hint="e.g. batch_size=256")
    net, cfg, state = model_from_checkpoint(path)
    if dataset is not None:
        cfg.dataset = dataset
    if data_dir is not None:
        cfg.data_dir = data_dir  # named now: used or refused
    elif cfg.data_dir and not Path(cfg.data_dir).expanduser().is_dir():
        cfg.data_dir = None  # named on the machine that trained, gone here: the usual places
    if batch_size is not None:
        cfg.batch_size = batch_size
    cfg.device = device
    cfg.dry_run = False
    cfg.validate()
    trainer = Trainer(cfg, model=net, save=False)
    trainer.dist = DistContext()  # evaluation is one process, even under torchrun
    trainer._build()
    check_fits(state, path, num_classes=trainer.data.num_classes,
               in_channels=trainer.data.in_channels)
    result = trainer.evaluate(limit=limit_batches)
    classes = list(getattr(trainer.data, "classes", [])) or state.get("classes", [])
    return {**result, "classes": classes, "model": cfg.model, "dataset": cfg.dataset}


def format_report(result: dict[str, Any], classes: Sequence[str]) -> str:
    """Accuracy line, per-class table and confusion matrix as plain text."""
    cm = result["confusion"]
    n = len(cm)
    names = list(classes) if len(classes) == n else [str(i) for i in range(n)]
    total = sum(map(sum, cm))
    right = sum(cm[i][i] for i in range(n))
    lines = [f"accuracy {result['acc']:.4f} ({right}/{total})  loss {result['loss']:.4f}"]
    w = max([5, *map(len, names)])
    lines.append(f"{'class':<{w}}  accuracy  images")
    for i, name in enumerate(names):
        count = sum(cm[i])
        acc = f"{cm[i][i] / count:.4f}" if count else "   n/a"
        lines.append(f"{name:<{w}}  {acc:>8}  {count:>6}")
    lines.append("confusion (rows: true class, columns: predicted)")
    cw = max([len(str(total)), *(min(len(s), 7) for s in names)])
    lines.append(" " * w + " " + " ".join(f"{s[:7]:>{cw}}" for s in names))
    for i, name in enumerate(names):
        lines.append(f"{name:<{w}} " + " ".join(f"{v:>{cw}}" for v in cm[i]))
    return "\n".join(lines)


def check_png(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {str(path)!r}")
    return path
