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

import math
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
from cnnlab.guards import open_regular, printable
from cnnlab.train.checkpoint_checks import malformed_entry, out_of_range

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
    except (OSError, RuntimeError) as e:  # a full disk, a read-only folder: which file, what
        # is kept. torch.save reports a failed write as a RuntimeError ("PytorchStreamWriter
        # failed writing file ...: file write failed"), without the errno: ask the disk.
        if isinstance(e, RuntimeError) and not _write_failed(e):
            Path(tmp).unlink(missing_ok=True)
            raise
        code = getattr(e, "errno", None) or _disk_errno(path.parent)  # before freeing tmp
        Path(tmp).unlink(missing_ok=True)
        why = getattr(e, "strerror", None) or (os.strerror(code) if code else
                                               "the write failed")
        kept = f"; {path} still holds the previous checkpoint" if path.exists() else ""
        raise OSError(code, f"cannot write checkpoint {path} ({why}){kept}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_failed(e: RuntimeError) -> bool:
    text = str(e)
    return "PytorchStreamWriter" in text or "file write failed" in text \
        or "unexpected pos" in text


def _disk_errno(folder: Path) -> int:
    """ENOSPC when ``folder``'s filesystem is full (or out of inodes), else EIO."""
    import errno

    try:
        st = os.statvfs(folder)
    except OSError:
        return errno.EIO
    # a few blocks may stay free for root only; what is left for this user is f_bavail
    full = st.f_bavail * st.f_frsize < 64 * 1024 or (st.f_files and st.f_favail == 0)
    return errno.ENOSPC if full else errno.EIO


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
    # a FIFO or a device would block torch.load forever: only regular files are opened;
    # a file we may not read is said to be unreadable, not damaged
    f = open_regular(path, "checkpoint", "pass the path of a best.pt or last.pt")
    try:
        with f, warnings.catch_warnings():  # torch warns about odd pickle protocols: we refuse
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(f, map_location=map_location, weights_only=True)
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
    bad = malformed_entry(state) or out_of_range(state)
    if bad:
        raise CheckpointError(f"{path} has a malformed {bad} entry; it is damaged or was not "
                              "written by cnnlab train, use another checkpoint or retrain")
    for key, value in state["model"].items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{path} holds NaN or infinite weights ({printable(key)}); the run diverged "
                "or the file is damaged: use an earlier checkpoint (best.pt) or retrain")
    if state.get("classes"):  # names from a file reach the terminal: no escape sequences
        state["classes"] = [printable(c) for c in state["classes"]]
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
            f"pass model={cfg.get('model')!r} or a checkpoint of {model}")
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

    if isinstance(path, (str, os.PathLike)) and Path(path).is_dir() \
            and (Path(path) / "model.safetensors").exists():  # `cnnlab export --to safetensors`
        from cnnlab.train.export import folder_checkpoint

        return folder_checkpoint(path, map_location)
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


# ------------------------------------------------------------------ saving and resuming a run
# Optimizer options that belong to the device the run is on, not to the run: a checkpoint
# written on a GPU (fused kernels) resumes on a CPU, and the other way round.
DEVICE_OPTIONS = ("fused", "foreach", "capturable")


def save_checkpoints(state: dict[str, Any], paths: list[Path]) -> None:
    """Write ``state`` to each of ``paths`` (e.g. best.pt and last.pt) with one write.

    The first file is written by :func:`save_checkpoint` (temp file, fsync, rename); each
    other one is a hard link to it renamed into place, which is just as atomic and costs
    no second write or data fsync. A later save of one name replaces that name's
    directory entry only, so the other keeps its content. Where links are not possible
    (some network and FAT filesystems), each file is written in full.
    """
    first, *rest = [Path(p) for p in paths]
    save_checkpoint(state, first)
    for path in rest:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.link(first, tmp)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            save_checkpoint(state, path)  # says which file failed, and what is kept
            continue
        _fsync_dir(path.parent)


def restore_training_state(state: dict[str, Any], path: str | os.PathLike, *,
                           model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           scheduler: Any, scaler: Any, rank: int = 0, world_size: int = 1
                           ) -> dict[str, Any]:
    """Load what :meth:`Trainer.checkpoint_state` saved into a run's objects, in place.

    The optimizer keeps this run's device options (:data:`DEVICE_OPTIONS`). Each
    process takes its own rank's random state; when the number of processes (or of
    GPUs) changed, the states that do not fit are left out and ``note`` says so in one
    line. Returns ``{"epoch", "step", "history", "best", "note"}``; anything that does
    not fit is a :class:`CheckpointError` naming ``path``.
    """
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng", "step") if k not in state]
    if missing:  # e.g. a hand-made file: usable by eval/predict, not to continue training
        raise CheckpointError(
            f"{path} lacks {missing}, so training cannot continue from it; "
            "evaluate it with cnnlab eval, or start a new run")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        model_name = state["config"].get("model")
        raise CheckpointError(
            f"{path} does not fit model {model_name!r} ({first}); "
            "it is damaged or from another model, start a new run") from None
    try:
        optimizer.load_state_dict(_with_device_options(state["optimizer"], optimizer))
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] or not scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        # else: the saved run had no scaler (e.g. bf16 there, fp16 on this GPU): a fresh one
    except (ValueError, KeyError, RuntimeError, TypeError, IndexError, AttributeError) as e:
        raise CheckpointError(
            f"{path} does not fit this run's optimizer ({e}); "
            "resume with the same optimizer= and schedule=") from None
    rng, note = _rng_of_rank(state, rank, world_size)
    try:
        set_rng_state(rng)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
        raise CheckpointError(
            f"{path} holds a damaged random-number state ({type(e).__name__}); "
            "start a new run") from None
    if note is None and "cuda" in rng and torch.cuda.is_available() \
            and len(rng["cuda"]) != torch.cuda.device_count():
        note = (f"the checkpoint holds the CUDA random state of {len(rng['cuda'])} GPUs, this "
                f"machine has {torch.cuda.device_count()}: CUDA random numbers (dropout) "
                "start afresh")
    try:
        history = [dict(r) for r in state.get("history", [])]
        best = float(state.get("best", -math.inf))
    except (TypeError, ValueError):
        raise CheckpointError(f"{path} has a malformed history; start a new run") from None
    return {"epoch": int(state["epoch"]), "step": int(state["step"]), "history": history,
            "best": best, "note": note}


def _with_device_options(saved: dict[str, Any], optimizer: torch.optim.Optimizer
                         ) -> dict[str, Any]:
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        return saved  # load_state_dict says what does not fit
    mine = [{k: g[k] for k in DEVICE_OPTIONS if k in g} for g in optimizer.param_groups]
    return {**saved, "param_groups": [{**dict(g), **m} for g, m in zip(groups, mine)]}


def _rng_of_rank(state: dict[str, Any], rank: int, world_size: int
                 ) -> tuple[dict[str, Any], str | None]:
    """The random state for this process, and a note when the process count changed."""
    ranks = state.get("rng_ranks")
    if ranks is not None and not (isinstance(ranks, list) and ranks
                                  and all(isinstance(r, dict) for r in ranks)):
        raise CheckpointError("the checkpoint has a malformed rng_ranks entry; start a new run")
    saved = len(ranks) if ranks else 1
    if saved == world_size:
        return (ranks[rank] if ranks else state["rng"]), None
    note = (f"the checkpoint holds the random state of {saved} process"
            f"{'es' if saved != 1 else ''}, this run has {world_size}: ")
    if rank < saved:
        return (ranks[rank] if ranks else state["rng"]), note + (
            f"processes {saved}..{world_size - 1} start from their own seeds"
            if world_size > saved else f"the states of processes {world_size}..{saved - 1} "
            "are left out")
    return {"torch": torch.get_rng_state(), "python": list(_python_state())}, note + (
        f"processes {saved}..{world_size - 1} start from their own seeds")


def _python_state() -> tuple[int, list[int], Any]:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss
