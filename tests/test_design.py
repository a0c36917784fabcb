"""docs/DESIGN.md and the tree agree: every import in src/ flows down the tiers it lists.

The rule is per top-level module or package, so new files inside a package need no
change here; a new top-level package must get a tier in DESIGN.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cnnlab"
DESIGN = ROOT / "docs" / "DESIGN.md"


def tiers() -> dict[str, int]:
    """``top-level name -> tier`` (0 = bottom) from the ```tiers block of DESIGN.md."""
    match = re.search(r"```tiers\n(.*?)```", DESIGN.read_text(), re.S)
    assert match, "docs/DESIGN.md has no ```tiers block"
    lines = [line.split("#")[0].split() for line in match.group(1).splitlines()]
    lines = [names for names in lines if names]
    rank: dict[str, int] = {}
    for level, names in enumerate(reversed(lines)):
        for name in names:
            assert name not in rank, f"{name} is in two tiers of DESIGN.md"
            rank[name] = level
    return rank


def top_level(path: Path) -> str:
    """``train`` for src/cnnlab/train/trainer.py, ``shapes`` for src/cnnlab/shapes.py."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, top-level cnnlab name)`` of every import in the file, nested ones too."""
    rel = path.relative_to(SRC)
    package = ["cnnlab", *rel.parts[:-1]]
    found = []
    source = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(source, str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package[:len(package) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            if names == ["cnnlab"]:  # from cnnlab import d2l, native, __version__
                names = [f"cnnlab.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cnnlab" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


SOURCES = sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def test_every_top_level_module_has_a_tier():
    rank = tiers()
    names = {top_level(p) for p in SOURCES} | {
        p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = sorted(names - set(rank))
    assert not missing, f"add these to the tiers block of docs/DESIGN.md: {missing}"
    stale = sorted(set(rank) - names)
    assert not stale, f"docs/DESIGN.md lists modules that do not exist: {stale}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_down_the_tiers(path):
    rank = tiers()
    me = top_level(path)
    bad = [f"line {line}: imports cnnlab.{name} (tier {rank.get(name)}) from {me} "
           f"(tier {rank[me]})"
           for line, name in imported(path)
           if name != me and name != "__version__" and rank.get(name, -1) >= rank[me]]
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def test_the_checker_catches_an_upward_import():
    # a models file that imports train, even inside a function, is found (the test can fail)
    source = ("import importlib\n"
              "def f():\n    from cnnlab.train import Trainer\n    from . import registry\n"
              "    from .. import viz\n    importlib.import_module('cnnlab.cli')\n")
    found = sorted(imported(SRC / "models" / "probe.py", source))
    assert found == [(3, "train"), (4, "models"), (5, "viz"), (6, "cli")]
    rank = tiers()
    assert rank["train"] > rank["models"] and rank["cli"] == max(rank.values()) - 1


def test_layout_names_every_package():
    text = DESIGN.read_text()
    layout = re.search(r"## Layout\n+```\n(.*?)```", text, re.S).group(1)
    for p in sorted(SRC.iterdir()):
        if p.name.startswith("__") or p.name == "py.typed":
            continue
        if p.is_dir() and (p / "__init__.py").exists():
            assert f"  {p.name}/" in layout, f"docs/DESIGN.md's layout misses {p.name}/"
        elif p.suffix == ".py":
            assert f"  {p.name}" in layout, f"docs/DESIGN.md's layout misses {p.name}"
