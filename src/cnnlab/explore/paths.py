"""Which files the explore app may offer and open: those under the folders it was given.

Every name the page sends back is checked again here (resolved, symlinks followed)
before it is opened, so a crafted request cannot reach a file outside those folders
(``../../etc/passwd``, an absolute path, a symlink that leads out).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "run").mkdir()
    >>> (d / "run" / "best.pt").write_bytes(b"")
    0
    >>> lib = Library([d])
    >>> lib.checkpoints()
    ['run/best.pt']
    >>> lib.resolve("../etc/passwd")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    cnnlab.errors.ConfigError: ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cnnlab.errors import ConfigError

MAX_DEPTH = 4  # folders below a root that are searched for runs and checkpoints
MAX_ENTRIES = 5000  # stop listing after this many directory entries (a huge home folder)
RUN_FILES = ("metrics.jsonl", "metrics.csv", "config.json")


class Library:
    """The run folders and checkpoint files given on the command line."""

    def __init__(self, paths: Iterable[str | os.PathLike]):
        self.roots: list[Path] = []
        self.files: list[Path] = []
        for p in paths:
            path = Path(p).expanduser()
            if path.is_dir():
                self.roots.append(path.resolve())
            elif path.is_file():
                self.files.append(path.resolve())
            else:
                raise ConfigError(f"{p} does not exist; give run folders (runs/lenet) or "
                                  "checkpoint files (runs/lenet/best.pt)")

    def _label(self, path: Path) -> str:
        for root in self.roots:
            if path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                return rel if len(self.roots) == 1 else f"{root.name}/{rel}"
        return str(path)

    def _walk(self) -> Iterable[tuple[Path, list[str]]]:
        seen = 0
        for root in self.roots:
            for folder, dirs, files in os.walk(root, followlinks=False):
                depth = len(Path(folder).relative_to(root).parts)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")) \
                    if depth < MAX_DEPTH else []
                seen += len(dirs) + len(files)
                if seen > MAX_ENTRIES:
                    return
                yield Path(folder), files

    def _checkpoint_map(self) -> dict[str, Path]:
        found = [Path(folder) / f for folder, files in self._walk() for f in sorted(files)
                 if f.endswith(".pt") and not f.startswith(".")]
        return {self._label(p): p for p in found + self.files}

    def _run_map(self) -> dict[str, Path]:
        found = [folder for folder, files in self._walk() if any(f in files for f in RUN_FILES)]
        found += [f.parent for f in self.files
                  if any((f.parent / n).is_file() for n in RUN_FILES) and f.parent not in found]
        return {(p.name or str(p)) if p in self.roots and len(self.roots) == 1
                else self._label(p): p for p in found}

    def checkpoints(self) -> list[str]:
        """Labels of the ``.pt`` files under the roots, and of the files given."""
        return list(self._checkpoint_map())

    def runs(self) -> list[str]:
        """Labels of the run folders (they hold metrics or a config) under the roots, and
        the folders of the checkpoint files given."""
        return list(self._run_map())

    def resolve(self, label: str, kind: str = "checkpoint") -> Path:
        """The real path behind a label from :meth:`checkpoints` (``kind="run"``:
        :meth:`runs`); anything else, or a symlink that leads outside, is refused."""
        table = self._run_map() if kind == "run" else self._checkpoint_map()
        path = table.get(label) if isinstance(label, str) else None
        if path is None:
            raise ConfigError(f"{str(label)[:80]!r} is not one of the {kind}s under the folders "
                              "given to cnnlab explore; pick an entry from the list")
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise ConfigError(f"{label} is gone; pick another entry") from None
        allowed = (real in self.files or any(real.is_relative_to(r) for r in self.roots)
                   or (kind == "run" and real in [f.parent for f in self.files]))
        if not allowed:
            raise ConfigError(f"{label} leads outside the folders given to cnnlab explore "
                              "(a symbolic link); it is not opened")
        return real
