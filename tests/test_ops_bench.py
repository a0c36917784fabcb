"""Smoke test: benchmarks/ops.py --quick runs and reports every layer (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "ops.py"


def test_ops_benchmark_quick(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_ops", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--breakdown", "--out", str(tmp_path / "ops.md")]) == 0
    text = capsys.readouterr().out
    for name, *_ in module.CONVS + module.POOLS:
        assert f"| {name} |" in text
    assert "corr2d loop" in text
    assert not (tmp_path / "ops.md").exists()  # --quick writes no file
