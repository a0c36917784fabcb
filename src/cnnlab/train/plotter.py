"""Draw a run's figures in a helper process that imported matplotlib while torch imported.

A short ``cnnlab train`` spends about as long on matplotlib (its import, then drawing
curves.png and confusion.png after the last epoch) as on ``import torch`` itself, one
after the other on one core. ``import torch`` is single-threaded, so on a quiet machine
a second core sits idle through it. :func:`start`, called by the CLI before anything
imports torch, forks a helper process that imports matplotlib there and then waits.
:class:`cnnlab.train.runfiles.RunFiles` sends it the figures to draw; each one is drawn
in a process forked from the helper, so curves.png and confusion.png are drawn side by
side, and beside the last checkpoint's save; ``RunFiles.finish`` waits for them, so
every file exists when the command ends. Before the first epoch ``RunFiles`` has the
helper itself draw all of confusion.png but its cells (:meth:`Plotter.prepare`), which
every later drawing starts from. The figures are the same bytes as when drawn
in the training process (the same functions of :mod:`cnnlab.train.plots` draw them).

Anything the helper cannot do (it died, a figure failed) is drawn again in the training
process, which then raises what the helper hit (a full disk...), as before. If the
training process dies (``kill -9``), the drawings it left are stopped and their temp
files removed: a resumed run draws its own. Linux only
(``fork`` before torch's threads exist); not when torch is already imported (the
Python API, notebooks, the test suite: drawn in process as before), not on a DDP rank
other than 0, and ``CNNLAB_PLOT_PROCESS=0`` turns it off.

Example:
    >>> plotter = start()  # None here: the doctest's process has imported torch
    >>> plotter is None or isinstance(plotter, Plotter)
    True
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Any

__all__ = ["Plotter", "start", "current", "ENV"]

ENV = "CNNLAB_PLOT_PROCESS"  # "0": draw the figures in the training process
WAIT_S = 120.0  # a helper silent this long is given up on; its figures are drawn here
# the helper's (and its drawings') niceness: on a 2-core machine its matplotlib import
# slowed torch's import beside it, and its figures the epochs; at 10 the training process
# goes first and the figures still take what it leaves (benchmarks/results/startup.md)
NICE = 10

_plotter: Plotter | None = None


class Plotter:
    """The training process's end of the helper: ``submit`` figures, ``wait`` for them."""

    def __init__(self, pid: int, requests: Any, replies: Any) -> None:
        self.pid, self._requests, self._replies = pid, requests, replies
        self._owner = os.getpid()
        self._pending: dict[int, tuple[str, tuple, dict]] = {}
        self._next = 0
        self.alive = True

    def submit(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Have the helper call ``cnnlab.train.plots.<name>(*args, **kwargs)``; do not wait.
        The output file is passed as ``path=`` (figures of one file are drawn in order)."""
        job = (name, args, kwargs)
        if self.alive:
            try:
                self._requests.send((self._next, *job))
                self._pending[self._next] = job
                self._next += 1
                return
            except (OSError, ValueError):  # the helper is gone: draw here
                self.alive = False
        _draw_here(job)

    def prepare(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Have the helper itself call ``cnnlab.train.plots.<name>(*args, **kwargs)`` (a
        ``prepare_...`` function), so that the drawings it forks later start from what that
        built; no reply, and nothing to redraw if the helper is gone."""
        if self.alive:
            try:
                self._requests.send((None, name, args, kwargs))
            except (OSError, ValueError):
                self.alive = False

    def wait(self) -> None:
        """Return when every submitted figure is written; redraw here what the helper
        could not write (raising what drawing raises here)."""
        failed = []
        while self._pending and self.alive:
            try:
                if not self._replies.poll(WAIT_S):
                    self.alive = False
                    break
                key, error = self._replies.recv()
            except (EOFError, OSError):
                self.alive = False
                break
            job = self._pending.pop(key, None)
            if job is not None and error is not None:
                failed.append(job)
        failed += list(self._pending.values())
        self._pending.clear()
        for job in failed:
            _draw_here(job)

    def cpu_seconds(self) -> float:
        """CPU seconds the helper has used so far (0.0 where /proc cannot say)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime stime cutime cstime: fields 14-17 of proc(5), the helper's drawings included
            return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        """Wait for the figures, then let the helper exit."""
        if os.getpid() != self._owner:  # a forked copy of the training process
            return
        try:
            self.wait()
        finally:
            self.alive = False
            try:
                self._requests.send(None)  # a clean end: the helper lets its drawings finish
            except (OSError, ValueError):
                pass
            self._requests.close()
            # nothing is left to draw: end it now, even mid-import (a command that fails
            # fast does not wait for matplotlib)
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass


def current() -> Plotter | None:
    """The helper of this process, if one was started and is still usable."""
    p = _plotter
    if p is None or not p.alive or p._owner != os.getpid():
        return None
    return p


def start() -> Plotter | None:
    """Fork the helper, if it can help here (see the module docstring); else None."""
    global _plotter
    if _plotter is not None:
        return current()
    if (os.environ.get(ENV, "1").strip() == "0" or not sys.platform.startswith("linux")
            or "torch" in sys.modules or os.environ.get("RANK", "0") != "0"
            or not hasattr(os, "fork")):
        return None
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # not imported here: the helper's job
        return None
    from multiprocessing.connection import Pipe

    req_r, req_w = Pipe(duplex=False)
    rep_r, rep_w = Pipe(duplex=False)
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the helper
        code = 1
        try:
            req_w.close()
            rep_r.close()
            _serve(req_r, rep_w)
            code = 0
        finally:
            os._exit(code)
    req_r.close()
    rep_w.close()
    _plotter = Plotter(pid, req_w, rep_r)
    atexit.register(_plotter.close)
    return _plotter


def _draw_here(job: tuple[str, tuple, dict]) -> None:
    from cnnlab.train import plots

    name, args, kwargs = job
    getattr(plots, name)(*args, **kwargs)


def _serve(requests: Any, replies: Any) -> None:
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group; the training
    # process stops gracefully and still wants its figures drawn. The helper ends when
    # the training process says so (None), or dies: then its figures are abandoned (see
    # _abandon).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # below the training process: its import and epochs come first (see NICE)
        os.nice(NICE)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # what the figures need (plots.py imports matplotlib only when it draws); drawing a
    # throwaway figure as well gained nothing measurable
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    from cnnlab.train import plots

    # the label-free part of confusion.png, built once here while torch imports (every
    # dataset the CLI reads has 10 classes; another number is built when it is asked for)
    plots.warm_confusion(10)
    drawing: dict[str, int] = {}  # output path -> the process drawing it
    while True:
        try:
            msg = requests.recv()
        except (EOFError, OSError):  # the training process died (kill -9, a crash)
            _abandon(drawing)
            return
        if msg is None:
            break
        key, name, args, kwargs = msg
        if key is None:  # prepare: done here, so that every drawing forked later has it
            try:
                getattr(plots, name)(*args, **kwargs)
            except Exception:  # noqa: BLE001 - only a head start: the drawing builds it all
                pass
            continue
        path = str(kwargs.get("path"))
        if path in drawing:  # the same file: in order, so the newest drawing is the last
            _reap(drawing.pop(path), block=True)
        for p, pid in list(drawing.items()):
            if _reap(pid, block=False):
                del drawing[p]
        pid = os.fork()
        if pid == 0:
            error = None
            try:
                getattr(plots, name)(*args, **kwargs)
            except BaseException as e:  # reported; the training process draws it again
                error = f"{type(e).__name__}: {e}"[:500]
            try:
                replies.send((key, error))  # one small write: atomic on a pipe
            finally:
                os._exit(0)
        drawing[path] = pid
    for pid in drawing.values():
        _reap(pid, block=True)


def _abandon(drawing: dict[str, int]) -> None:
    """Stop the drawings of a training process that died, and remove their temp files.

    A drawing left to finish would replace its figure seconds later: after a quick
    ``--resume`` has drawn a newer one, or with a temp file the resume has not swept.
    Killing it leaves the figure of the last completed drawing, which is whole
    (guards.atomic_output) and which the resumed run redraws.
    """
    from cnnlab.guards import atomic_temp_files

    for path, pid in drawing.items():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(pid, block=True)
        for tmp in atomic_temp_files(path, pid):
            try:
                tmp.unlink()
            except OSError:
                pass


def _reap(pid: int, block: bool) -> bool:
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0
