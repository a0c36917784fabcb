"""Assemble BENCHMARKS.md: a hand-written summary followed by every results file.

Usage: ``python benchmarks/assemble.py`` (reads benchmarks/summary.md and
benchmarks/results/*.md, writes BENCHMARKS.md at the repository root).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("ops", "data", "compare_d2l", "lenet", "tta", "d2l", "gpu")


def main() -> int:
    results = ROOT / "benchmarks" / "results"
    names = [n for n in ORDER if (results / f"{n}.md").exists()]
    names += sorted(p.stem for p in results.glob("*.md") if p.stem not in ORDER)
    parts = [(ROOT / "benchmarks" / "summary.md").read_text().rstrip()]
    for name in names:
        text = (results / f"{name}.md").read_text().strip()
        # every results file becomes a level-2 section, its own headings one level down
        text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
        parts.append(f"## results/{name}.md\n\n{text}")
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")
    print(f"wrote BENCHMARKS.md from {len(names)} results files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
