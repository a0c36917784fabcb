"""Checkpoints: plain dicts of tensors and Python builtins, written atomically.

A checkpoint holds no pickled class, so ``torch.load(path, weights_only=True)``
reads it and loading never runs code. It is written to a temporary file in the
same directory, flushed and fsync'ed, then renamed over the old one (a rename
within one filesystem is atomic on POSIX), so a crash or ``kill -9`` at any
moment leaves either the old or the new file, never a broken one.

Example:
    >>> import pathlib, tempfile, torch
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_checkpoint({"format": FORMAT, "version": VERSION, "x": torch.ones(2)}, d / "a.pt")
    >>> torch.load(d / "a.pt", weights_only=True)["x"]
    tensor([1., 1.])
"""

from __future__ import annotations

import os
import pickle
import random
import re
import secrets
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CheckpointError

FORMAT = "cnnlab-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "model", "epoch", "config", "num_classes", "in_channels")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name in the same directory (same filesystem: the rename is atomic), created
    # with open(..., "xb") so that it gets the usual umask permissions, unlike mkstemp's 0600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a read-only folder: say which file, and what is kept
        Path(tmp).unlink(missing_ok=True)
        kept = f"; {path} still holds the previous checkpoint" if path.exists() else ""
        raise OSError(e.errno, f"cannot write checkpoint {path} ({e.strerror or e}){kept}"
                      ) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a cnnlab checkpoint with ``weights_only=True``; anything else is a CheckpointError.

    Example:
        >>> load_checkpoint("/nonexistent.pt")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        cnnlab.errors.CheckpointError: checkpoint /nonexistent.pt does not exist; ...
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"a checkpoint path must be a str or os.PathLike, got "
                              f"{type(path).__name__}; pass the path of a best.pt or last.pt")
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass the path of a best.pt or last.pt "
            "from a run directory")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass {path / 'best.pt'} or "
                              f"{path / 'last.pt'}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols: we refuse
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unpickling_message(path, str(e))) from None
    except Exception as e:  # noqa: BLE001 - any failure to parse means "not a checkpoint"
        raise CheckpointError(
            f"{path} is not a cnnlab checkpoint (truncated, damaged or not written by "
            f"torch.save: {type(e).__name__}); use the run's other checkpoint "
            "(best.pt/last.pt) or retrain") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a cnnlab checkpoint (no format={FORMAT!r} entry); "
            "pass a best.pt or last.pt written by cnnlab train")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')!r}, this cnnlab reads "
            f"version {VERSION}; retrain with this version")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing or not isinstance(state["config"], dict):
        raise CheckpointError(
            f"{path} lacks the entries {missing or ['config']}; it is damaged, retrain")
    bad = _malformed_entry(state)
    if bad:
        raise CheckpointError(f"{path} has a malformed {bad} entry; it is damaged or was not "
                              "written by cnnlab train, use another checkpoint or retrain")
    return state


def _unpickling_message(path: Path, detail: str) -> str:
    """One line for a file that ``weights_only`` refused (torch's own text spans lines)."""
    wanted = re.search(r"GLOBAL ([\w.]+)", detail)
    if wanted:  # the pickle asks to import a callable: what a code-running payload does
        return (f"{path} is not a safe cnnlab checkpoint (loading it would run code: it asks "
                f"for {wanted.group(1)}); it was refused and nothing ran; only load "
                "checkpoints written by cnnlab train")
    return (f"{path} is not a cnnlab checkpoint (not a file torch.save wrote, or damaged); "
            "pass a best.pt or last.pt written by cnnlab train")


def _is_int(x: Any, least: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= least


def _malformed_entry(state: dict[str, Any]) -> str | None:
    """The name of the first entry whose type cannot be what cnnlab train wrote, else None.

    A checkpoint is data from elsewhere: check every entry that eval, predict, viz and
    resume read, so that a damaged or hand-made file is one clear error, never a
    KeyError or TypeError deep inside.
    """
    model = state["model"]
    if not isinstance(model, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        return "model"
    if not _is_int(state["epoch"]):
        return "epoch"
    if "step" in state and not _is_int(state["step"]):
        return "step"
    for key in ("num_classes", "in_channels"):
        if not _is_int(state[key], least=1):
            return key
    size = state.get("image_size")
    if size is not None and not (isinstance(size, (list, tuple)) and len(size) in (1, 2)
                                 and all(_is_int(s, least=1) for s in size)):
        return "image_size"
    classes = state.get("classes")
    if classes is not None and not (
            isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes)
            and len(classes) in (0, state["num_classes"])):
        return "classes"
    history = state.get("history")
    if history is not None and not (isinstance(history, list)
                                    and all(isinstance(r, dict) for r in history)):
        return "history"
    if "best" in state and not isinstance(state["best"], (int, float)):
        return "best"
    norm = state.get("normalization")
    if norm is not None and not (
            isinstance(norm, dict) and all(
                isinstance(norm.get(k), list) and norm[k]
                and all(isinstance(v, (int, float)) for v in norm[k]) for k in ("mean", "std"))
            and all(v > 0 for v in norm["std"])):
        return "normalization"
    for key in ("optimizer", "scheduler", "scaler", "rng"):
        if key in state and not isinstance(state[key], dict):
            return key
    extra = state["config"].get("extra")
    if extra is not None and not isinstance(extra, dict):
        return "config.extra"
    return None


def rng_state() -> dict[str, Any]:
    """Every RNG state a run uses, as weights_only-loadable values."""
    import numpy as np

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    import numpy as np

    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        # .cpu(): a resume on a GPU loads the checkpoint with map_location='cuda'
        np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def check_fits(state: dict[str, Any], path: str | os.PathLike, *, model: str | None = None,
               num_classes: int | None = None, in_channels: int | None = None) -> None:
    """CheckpointError if the checkpoint was trained for another model or data shape."""
    cfg = state["config"]
    if model is not None and cfg.get("model") != model:
        raise CheckpointError(
            f"{path} holds a {cfg.get('model')!r} model, not {model!r}; "
            f"pass --model {cfg.get('model')} or a checkpoint of {model}")
    if num_classes is not None and state["num_classes"] != num_classes:
        raise CheckpointError(
            f"{path} was trained for {state['num_classes']} classes, the data has "
            f"{num_classes}; use a dataset with {state['num_classes']} classes")
    if in_channels is not None and state["in_channels"] != in_channels:
        raise CheckpointError(
            f"{path} expects {state['in_channels']} input channels, the data has "
            f"{in_channels}; use matching data")


def model_from_checkpoint(path: str | os.PathLike, map_location: Any = "cpu"):
    """Rebuild the trained model: ``(nn.Module in eval mode, TrainConfig, checkpoint dict)``.

    Example:
        >>> net, cfg, ckpt = model_from_checkpoint("runs/lenet/best.pt")  # doctest: +SKIP
        >>> cfg.model, ckpt["best"]  # doctest: +SKIP
        ('lenet', 0.83)
    """
    from cnnlab.models import create_model
    from cnnlab.train.config import TrainConfig

    state = load_checkpoint(path, map_location=map_location)
    try:
        cfg = TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} holds an unusable config ({e}); retrain") from None
    cfg.out_dir = None  # never write where a checkpoint says: it may come from elsewhere
    size = state.get("image_size") or [cfg.resize]
    try:
        net = create_model(cfg.model, num_classes=state["num_classes"],
                           in_channels=state["in_channels"], input_size=int(size[0]),
                           **(cfg.extra or {}))
    except (TypeError, ValueError) as e:  # a config this cnnlab cannot build a model from
        raise CheckpointError(f"{path} describes a model this cnnlab cannot build ({e}); "
                              "retrain with this version") from None
    try:
        net.load_state_dict(state["model"])
    except (RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{path} does not fit model {cfg.model!r} ({first}); it was written by another "
            "version of the model, retrain") from None
    net.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    net.eval()
    return net, cfg, state
