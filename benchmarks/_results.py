"""Shared by the benchmark scripts: write one run's markdown section into its results file.

A results file (benchmarks/results/<name>.md) holds the LATEST run of each script on
each machine, not a log: a new run replaces the section of the same script and machine
and leaves the others. Each section starts with a marker line
``<!-- run: SCRIPT | MACHINE -->``; text before the first marker is the file's header.
Earlier runs are in the git history of the file.

Example:
    >>> text = "# header\\n\\n<!-- run: a | m1 -->\\nold a\\n\\n<!-- run: b | m1 -->\\nb\\n"
    >>> print(replace_section(text, "a", "m1", "new a\\n"), end="")
    # header
    <BLANKLINE>
    <!-- run: a | m1 -->
    new a
    <BLANKLINE>
    <!-- run: b | m1 -->
    b
    >>> replace_section("", "a", "m2", "x\\n")
    '<!-- run: a | m2 -->\\nx\\n'
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MARKER = re.compile(r"^<!-- run: (?P<script>[^|]+?) \| (?P<machine>.+?) -->$", re.M)


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def machine() -> str:
    """``"2 cores, AMD EPYC"``: the core count, the CPU's make, and the GPU if one is in use.

    Coarse on purpose (no model number): a run on the same kind of machine replaces
    the previous one.
    """
    model = " ".join(cpu_model().split()[:2])
    text = f"{os.cpu_count()} cores, {model}"
    torch = sys.modules.get("torch")  # only if the script imported it
    if torch is not None and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def replace_section(text: str, script: str, where: str, section: str) -> str:
    """``text`` with the section of (``script``, ``where``) replaced by ``section``, or added."""
    marks = list(_MARKER.finditer(text))
    head = f"<!-- run: {script} | {where} -->\n"
    for i, m in enumerate(marks):
        if (m.group("script"), m.group("machine")) == (script, where):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            tail = "\n" if i + 1 < len(marks) else ""
            return text[:m.start()] + head + section.rstrip("\n") + "\n" + tail + text[end:]
    sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
    return text + sep + head + section.rstrip("\n") + "\n"


def write_results(path: Path, text: str) -> None:
    """Put one run's section into ``path``, replacing this script's run on this machine."""
    script = Path(sys.argv[0]).name or "benchmark"
    where = machine()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    new = replace_section(old, script, where, text)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)  # a failed run never leaves half a file
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"wrote the {script} run on {where} into {shown}")


def finish(path: Path, text: str, quick: bool) -> int:
    """The end of every script: print the section; unless ``quick``, write it. Returns 0."""
    print(text)
    if not quick:
        write_results(path, text)
    return 0


def machine_info() -> dict:
    """nproc, CPU model, torch version and the load average now (the machine is shared)."""
    import torch

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
            "load": load}


def cnnlab_env(extra: dict | None = None) -> dict:
    """The environment of a timed cnnlab process: this checkout's src first on
    PYTHONPATH, matplotlib's Agg backend, and Python's default bytecode cache.

    ``PYTHONDONTWRITEBYTECODE`` (set in some sandboxes and CI images) would make every
    run compile cnnlab's modules from source, while torch and d2l, installed by pip,
    load theirs compiled; a user's second run loads cnnlab's compiled too.
    """
    env = dict(os.environ, MPLBACKEND="Agg", **(extra or {}))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
