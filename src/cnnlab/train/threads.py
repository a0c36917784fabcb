"""How many CPU threads a run uses when the user did not say: as many as there are free CPUs.

PyTorch's default is one thread per core, and its OpenMP threads spin while they
wait for the next parallel region. On an idle machine that is the fastest choice.
When another program keeps a core busy, the spinning threads and that program take
turns on the cores, and every parallel region waits for the thread that is
descheduled: each epoch then takes several times as long, where one thread fewer
would lose almost nothing. ``OMP_WAIT_POLICY=passive`` avoids the spinning but
makes every idle-machine step slower.

So the Trainer counts the CPUs that are actually free, and uses that many threads:

* at the start of ``fit()``, from the busy time of this process's CPUs (``/proc/stat``)
  minus this process's own CPU time over the set-up (building the model, reading the
  data), at least :data:`SAMPLE_S` seconds; the CLI starts that sample before it
  imports torch (:func:`sample_from_now`), so it spans the import and needs no pause;
* after each epoch, from the epoch's own counts: the busy time of those CPUs minus
  this process's own CPU time (spinning included) is what other programs used.

A CPU counts as free when other programs used less than ``1 - SLACK`` of it. Linux
only (``/proc/stat``, ``sched_getaffinity``); elsewhere, with ``--num-threads`` or
``OMP_NUM_THREADS``, with ``--deterministic`` (the results must not depend on the
machine's load), or with ``CNNLAB_ADAPTIVE_THREADS=0``, the threads stay as they are.

Example:
    >>> gov = ThreadGovernor(max_threads=2, cpus=[0, 1])
    >>> gov.threads_for(others=0.05), gov.threads_for(others=0.7), gov.threads_for(others=1.9)
    (2, 1, 1)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence

# torch is imported where it is used: the CLI calls sample_from_now before torch's import
__all__ = ["ThreadGovernor", "ENV", "sample_from_now"]

ENV = "CNNLAB_ADAPTIVE_THREADS"  # "0": keep PyTorch's thread count (the old behaviour)
SAMPLE_S = 0.1  # the start-of-run sample: 10 clock ticks per CPU at the usual 100 Hz
SLACK = 0.3  # a CPU that others use less than 70% of still counts as free
MIN_WINDOW_S = 0.5  # shorter windows hold too few 10 ms clock ticks to decide on
_STAT = "/proc/stat"
EARLY_MAX_S = 60.0  # an early sample older than this (a long resume's checks) is not used
_early: tuple[int, tuple[float, float, float] | None] | None = None  # (pid, mark)


def sample_from_now() -> None:
    """Start the first ``fit()``'s machine sample now (the CLI: before torch's import, so
    the sample spans it and the run does not pause for one)."""
    global _early
    _early = os.getpid(), _mark_now(_allowed_cpus())


def _take_early() -> tuple[float, float, float] | None:
    global _early
    early, _early = _early, None
    if early is None or early[0] != os.getpid() or early[1] is None:
        return None
    return early[1] if 0.0 <= time.perf_counter() - early[1][0] < EARLY_MAX_S else None


def _mark_now(cpus: Sequence[int]) -> tuple[float, float, float] | None:
    """(now, busy seconds of ``cpus``, CPU seconds of this process and its plotting
    helper), or None where /proc/stat cannot say."""
    busy = _busy_seconds(cpus)
    if busy is None:
        return None
    from cnnlab.train import plotter

    # ours: this process and its plotting helper (train/plotter.py), which imports
    # matplotlib beside torch's import and draws figures beside the training
    helper = plotter.current()
    ours = time.process_time() + (helper.cpu_seconds() if helper is not None else 0.0)
    return time.perf_counter(), busy, ours


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _busy_seconds(cpus: Sequence[int]) -> float | None:
    """Seconds the CPUs ``cpus`` spent busy since boot (every process), or None."""
    try:
        with open(_STAT) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted, busy = {f"cpu{c}" for c in cpus}, 0
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            # user nice system idle iowait irq softirq steal (guest is inside user)
            ticks = [int(v) for v in parts[1:9]]
            busy += sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


class ThreadGovernor:
    """Sets ``torch.set_num_threads`` to the number of free CPUs, re-checked per epoch."""

    def __init__(self, max_threads: int, cpus: Sequence[int] | None = None) -> None:
        self.max_threads = max(1, int(max_threads))
        self.cpus = list(cpus) if cpus is not None else _allowed_cpus()
        self.threads = self.max_threads
        self._mark: tuple[float, float, float] | None = None

    @classmethod
    def for_run(cls, num_threads: int | None, deterministic: bool,
                env: Mapping[str, str] | None = None) -> ThreadGovernor | None:
        """A governor, or None when the thread count is the user's (or must stay fixed)."""
        env = os.environ if env is None else env
        if (num_threads or deterministic or env.get(ENV, "1").strip() == "0"
                or env.get("OMP_NUM_THREADS") or _busy_seconds([0]) is None):
            return None
        import torch

        return cls(torch.get_num_threads())

    def threads_for(self, others: float) -> int:
        """Threads for a machine where other programs keep ``others`` of our CPUs busy."""
        free = len(self.cpus) - max(0.0, others)
        return min(self.max_threads, max(1, math.floor(free + SLACK)))

    def _now(self) -> tuple[float, float, float] | None:
        return _mark_now(self.cpus)

    def _apply(self, then: tuple[float, float, float] | None,
               now: tuple[float, float, float] | None) -> int:
        import torch

        if then is not None and now is not None and now[0] - then[0] > 0:
            others = ((now[1] - then[1]) - (now[2] - then[2])) / (now[0] - then[0])
            threads = self.threads_for(others)
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
            self.threads = threads
        self._mark = now
        return self.threads

    def begin(self) -> None:
        """Start the first sample now, while the run sets itself up (see :meth:`start`), or
        take the one :func:`sample_from_now` started in this process, if it is recent."""
        early = _take_early() if self.cpus == _allowed_cpus() else None
        self._mark = early if early is not None else self._now()

    def start(self) -> int:
        """Sample the machine for :data:`SAMPLE_S` seconds (since :meth:`begin`, whose set-up
        time counts, or from now); set and return the threads."""
        then = self._mark if self._mark is not None else self._now()
        if then is not None:
            time.sleep(max(0.0, SAMPLE_S - (time.perf_counter() - then[0])))
        return self._apply(then, self._now())

    def update(self) -> int:
        """Re-decide from what other programs used since the last call; return the threads.

        A window under :data:`MIN_WINDOW_S` keeps the last decision (and its start)."""
        now = self._now()
        if self._mark is not None and now is not None and now[0] - self._mark[0] < MIN_WINDOW_S:
            return self.threads
        return self._apply(self._mark, now)
