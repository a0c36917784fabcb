"""Shared by the benchmark scripts: append one run's markdown section to its results file."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def append_results(path: Path, text: str) -> None:
    """Append ``text`` as a new section of ``path`` (benchmarks/results/<name>.md) and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("\n" + text)
    print(f"appended to {path.relative_to(ROOT)}")
