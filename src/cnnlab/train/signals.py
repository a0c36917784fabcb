"""Stopping a training run by signal: save what can be resumed, say so in one line.

A cluster sends SIGTERM (SLURM: also SIGUSR1 with ``--signal``) some time before
it kills a job. :class:`StopSignals` turns them into a request that the Trainer
honours at the next step boundary: it writes ``last.pt`` with the epoch, the
step and the batches already done in the current epoch, then raises
:class:`Preempted`; ``--resume`` continues in the middle of that epoch with the
batches an uninterrupted run would have seen. A second SIGTERM stops at once,
like Ctrl-C. SIGHUP (the terminal went away) is handled like Ctrl-C: it raises
:class:`Interrupted`, a KeyboardInterrupt, and ``last.pt`` keeps the last
finished epoch. Handlers are installed only for the duration of ``fit`` and only
in the main thread; the previous ones come back afterwards.

Example:
    >>> import os, signal
    >>> with StopSignals() as stop:
    ...     os.kill(os.getpid(), signal.SIGUSR1)
    ...     stop.requested
    'SIGUSR1'
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from cnnlab.errors import CnnlabError

# signals that ask for a checkpoint at the next step boundary, then an exit
SAVE_AND_STOP = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGUSR1") if hasattr(signal, n))
# signals that stop at once, like Ctrl-C (the last finished epoch is kept)
STOP_NOW = tuple(getattr(signal, n) for n in ("SIGHUP",) if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """A stop like Ctrl-C; ``signum`` says which signal (the exit code is 128 + signum)."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


class Preempted(CnnlabError):
    """Training stopped on request after saving a resumable checkpoint (``signum``: why)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = int(signum)


class StopSignals:
    """Context manager: SIGTERM/SIGUSR1 set :attr:`requested`; SIGHUP raises Interrupted."""

    def __init__(self) -> None:
        self.requested: str | None = None  # the name of the signal that asked to stop
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self.requested, self.signum = None, None  # a Trainer may fit again after a stop
        if threading.current_thread() is not threading.main_thread():
            return self  # signal.signal works only in the main thread
        for sig in SAVE_AND_STOP:
            self._install(sig, self._save_and_stop)
        for sig in STOP_NOW:
            self._install(sig, self._stop_now)
        return self

    def _install(self, sig: int, handler: Any) -> None:
        try:
            self._old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not settable here
            pass

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            try:
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        self._old.clear()

    def _save_and_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:  # asked twice: do not wait for the step to end
            raise Interrupted(signum=signum)
        self.requested, self.signum = signal.Signals(signum).name, signum

    def _stop_now(self, signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum=signum)


def agreed(stop: StopSignals, dist: Any, step: int, every: int, device: Any = "cpu") -> bool:
    """Whether to stop after this step. One process: as soon as asked. Several: every
    rank must stop at the same step (or the others wait forever in the next
    all-reduce), so the ranks agree every ``every`` steps, where the loop already
    synchronises."""
    if not getattr(dist, "enabled", False):
        return stop.requested is not None
    if step % every:
        return False
    import torch

    flag = torch.tensor([1.0 if stop.requested else 0.0], device=device)  # nccl: on the GPU
    dist.all_reduce_sum(flag)
    if flag.item() > 0 and stop.requested is None:
        stop.requested, stop.signum = "SIGTERM", int(signal.SIGTERM)  # another rank was asked
    return flag.item() > 0


def save_mid_epoch(trainer: Any, batch: int, sums: dict[str, float]) -> str:
    """Write ``last.pt`` of the state after ``batch`` steps of the current epoch (rank 0);
    return the one line to print. ``sums``: the epoch's running train loss, correct
    count, example count and seconds, so that the resumed epoch's row is complete."""
    from cnnlab.train import checkpoint as ckpt

    stop = trainer._stop
    where = "no run directory: nothing saved"
    files = getattr(trainer, "files", None)
    if files is not None:
        state = trainer.checkpoint_state()
        state["batch"] = int(batch)  # batches of epoch `epoch + 1` already trained on
        state["partial"] = {k: float(v) for k, v in sums.items()}
        last = files.dir / "last.pt"
        ckpt.save_checkpoint(state, last)
        where = f"saved {last}; continue with --resume {last}"
    return (f"stopped by {stop.requested} in epoch {trainer.epoch + 1} after step "
            f"{batch}/{trainer.steps_per_epoch}: {where}")


def resume_point(state: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """(batches already done in the checkpoint's current epoch, that epoch's running sums)."""
    batch = state.get("batch", 0)
    partial = state.get("partial") or {}
    if not (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 0) or not (
            isinstance(partial, dict) and all(isinstance(v, (int, float))
                                              for v in partial.values())):
        from cnnlab.errors import CheckpointError

        raise CheckpointError("the checkpoint has a malformed batch/partial entry; it is "
                              "damaged, resume from best.pt or start a new run")
    return batch, {k: float(v) for k, v in partial.items()}


def preempt(trainer: Any, batch: int, sums: dict[str, float]) -> Preempted:
    """Save (rank 0) and return the :class:`Preempted` to raise."""
    stop = trainer._stop
    if trainer.is_main:
        message = save_mid_epoch(trainer, batch, sums)
    else:
        message = f"stopped by {stop.requested} (rank {trainer.dist.rank})"
    return Preempted(message, stop.signum or int(signal.SIGTERM))


def interrupted(trainer: Any, error: BaseException) -> Interrupted:
    """The one-line :class:`Interrupted` for Ctrl-C or SIGHUP inside ``fit``."""
    signum = getattr(error, "signum", int(signal.SIGINT))
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    files = getattr(trainer, "files", None)
    if not trainer.is_main:
        return Interrupted(f"{how} (rank {trainer.dist.rank})", signum)
    where = "no epoch completed, nothing saved"
    if files is not None and (files.dir / "last.pt").exists():
        last = files.dir / "last.pt"
        where = (f"{last} holds the {trainer.epoch} completed epochs; continue with "
                 f"--resume {last}")
    return Interrupted(f"{how} in epoch {trainer.epoch + 1}: {where}", signum)
