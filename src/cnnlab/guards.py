"""Checks at the boundary between cnnlab and what a user hands it.

One place for each check that several parts need: integer arguments
(:func:`check_int`), files that must be regular files before they are opened
(:func:`open_regular`), sizes that must fit in the machine's memory before they
are allocated (:func:`check_memory`), output files that are replaced only once
they are complete (:func:`atomic_output`) and text from a file that is printed
to a terminal (:func:`printable`). Every failure is one
:class:`cnnlab.errors.CnnlabError` line naming the argument or the file. Like
``errors.py`` this module only needs the standard library, so anything may import it.

Example:
    >>> check_int("batch_size", 128)
    128
    >>> check_int("batch_size", "128")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    cnnlab.errors.ConfigError: batch_size must be a positive integer, got '128'
    >>> printable("Bag\\x1b[2J")
    'Bag\\\\x1b[2J'
"""

from __future__ import annotations

import contextlib
import errno
import glob
import numbers
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cnnlab.errors import CheckpointError, ConfigError, DataError, DataNotFoundError

__all__ = ["check_int", "memory_available", "check_memory", "format_bytes", "open_regular",
           "file_kind", "atomic_output", "atomic_temp_files", "printable", "MAX_THREADS"]

# torch.set_num_threads(100000) crashes the process (one OS thread each, never checked):
# no machine cnnlab runs on has more than a few hundred cores
MAX_THREADS = max(256, 4 * (os.cpu_count() or 1))


def check_int(name: str, value: Any, *, least: int = 1, most: int | None = None,
              hint: str = "") -> int:
    """``value`` as an int when it is an integer in ``least..most``, else ConfigError.

    ``name`` is what the caller wrote (``batch_size`` in Python, ``--batch-size`` on
    the command line); ``hint`` (e.g. ``"e.g. --epochs 10"``) ends the message. A bool,
    a str such as ``"28"`` or a float is refused: it would give silently wrong shapes.

    Example:
        >>> check_int("--top", 5000, most=256)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        cnnlab.errors.ConfigError: --top must be a positive integer (at most 256), got 5000
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (int(value) < least or (most is not None and int(value) > most)):
        ok = False
    if not ok:
        what = {1: "a positive integer", 0: "a non-negative integer"}.get(least)
        if what is None:
            what = f"an integer in {least}..{most}" if most is not None else \
                f"an integer >= {least}"
        elif most is not None:
            what += f" (at most {most})"
        raise ConfigError(f"{name} must be {what}, got {value!r}" + (f"; {hint}" if hint else ""))
    return int(value)


# ----------------------------------------------------------------------------- memory
def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    # a container's limit (cgroup v2), which /proc/meminfo does not show
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_left() -> int | None:
    # `ulimit -v` / prlimit --as: what this process may still map
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(0, soft - mapped)
    except (ImportError, OSError, ValueError, IndexError):
        return None


def memory_available() -> tuple[int, str] | None:
    """``(bytes, where)``: the memory this process can still allocate, and its source.

    The smallest of MemAvailable (``/proc/meminfo``, or ``sysconf`` elsewhere), a
    cgroup limit and the address-space limit (``ulimit -v``); None if none is known.
    """
    found = [(v, w) for v, w in ((_meminfo_available(), "MemAvailable"),
                                 (_cgroup_available(), "the container's limit"),
                                 (_address_space_left(), "the address-space limit, ulimit -v"))
             if v is not None]
    return min(found) if found else None


def format_bytes(n: float) -> str:
    """Bytes for people: ``format_bytes(3 * 2**30)`` is ``'3.0 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check_memory(nbytes: int, what: str, fix: str) -> None:
    """ConfigError before allocating ``nbytes`` for ``what`` when the machine lacks them.

    Example:
        >>> check_memory(2**52, "a batch", "use a smaller batch_size")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        cnnlab.errors.ConfigError: a batch needs 4.0 PiB, more than ...; use a smaller batch_size
    """
    avail = memory_available()
    if avail is not None and nbytes > avail[0]:
        raise ConfigError(f"{what} needs {format_bytes(nbytes)}, more than the "
                          f"{format_bytes(avail[0])} of memory left on this machine "
                          f"({avail[1]}); {fix}")


# ----------------------------------------------------------------------------- reading
_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words ("a named pipe (FIFO)", "a regular file"...)."""
    return _KINDS.get(stat.S_IFMT(mode), "a regular file" if stat.S_ISREG(mode) else
                      "not a regular file")


_ERROR_OF = {"checkpoint": CheckpointError, "image": DataError, "data": DataError}


def open_regular(path: str | os.PathLike, what: str = "data", fix: str = "") -> BinaryIO:
    """Open ``path`` for reading in binary mode if it is a regular file (symlinks followed).

    A FIFO, device or socket would block or never end: they are refused before any
    read (the open itself does not block: O_NONBLOCK, then fstat). ``what``
    (``"checkpoint"``, ``"image"``, ``"data"``) picks the error class and the words.
    A missing file is a :class:`DataNotFoundError` (a FileNotFoundError) for images
    and data, a :class:`CheckpointError` for checkpoints; a file we may not read says
    so (it is not damaged).
    """
    kind = _ERROR_OF.get(what, DataError)
    path = Path(path)
    fix = f"; {fix}" if fix else ""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        cls = CheckpointError if what == "checkpoint" else DataNotFoundError
        raise cls(f"{what} file {path} does not exist{fix}") from None
    except PermissionError:
        raise kind(f"cannot read {path}: permission denied (the file itself may be fine); "
                   f"make it readable (chmod u+r {path}) or run as its owner") from None
    except OSError as e:
        try:
            mode = os.stat(path).st_mode
            why = f"is {file_kind(mode)}, not a {what} file"
        except OSError:
            why = f"cannot be opened ({e.strerror})"
        raise kind(f"{path} {why}; pass the path of a regular file{fix}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise kind(f"{path} is {file_kind(mode)}, not a {what} file; pass the path of a "
                       f"regular file{fix}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ----------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` at once.

    A failure (full disk, Ctrl-C, a plotting error) removes the temporary file and
    leaves the old ``path`` as it was: a reader never sees half a file. The temporary
    name ends in ``.tmp`` (a run directory sweeps such leftovers of a kill), so writers
    that go by the suffix (matplotlib's ``savefig``) need ``format=``.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_output(p) as tmp:
        ...     _ = tmp.write_text("new")
        >>> p.read_text()
        'new'
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: atomic_temp_files finds a killed writer's file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:  # a write() that failed says no file name: name the file written
        if e.filename is None or str(e.filename) == str(tmp):
            raise OSError(e.errno, f"cannot write {path} ({e.strerror or e}); the file "
                          "there was left as it was") from e
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_temp_files(path: str | os.PathLike, pid: int) -> list[Path]:
    """The temporary files that process ``pid`` has open for ``path`` in atomic_output."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.{pid}.*.tmp"))


# ----------------------------------------------------------------------------- printing
# control characters (ESC starts every terminal escape sequence) and bidirectional
# overrides; once escaped, what followed ESC is harmless text
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any, limit: int = 100) -> str:
    """``text`` safe to print to a terminal: control and escape characters shown escaped.

    Names from a file (a checkpoint's class names) could otherwise move the cursor,
    clear the screen or change the terminal's title.

    Example:
        >>> printable("T-shirt/top"), printable("a\\nb")
        ('T-shirt/top', 'a\\\\nb')
    """
    text = str(text)
    text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"
