"""benchmarks/busy_cpu.py's smoke run: every variant, idle and under load, to the ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "busy_cpu.py"


@pytest.mark.bench
@pytest.mark.slow
def test_busy_cpu_quick_runs_every_variant_and_writes_nothing():
    results = SCRIPT.parent / "results" / "busy_cpu.md"
    before = results.read_text() if results.exists() else None
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "busy: default / best fixed" in proc.stdout and "idle: default / before" in proc.stdout
    assert "| busy | threads=1 |" in proc.stdout
    assert (results.read_text() if results.exists() else None) == before
