"""Smoke runs of the issue-7 benchmark scripts (tiny sizes, nothing written)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lenet_step_quick(capsys):
    bench = _load("lenet_step")
    results = bench.RESULTS
    before = results.read_text() if results.exists() else None
    assert bench.main(["--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for variant in ("| eager |", "| channels_last |", "| cnnlab kernels |",
                    "| channels_last weights + native |"):
        assert variant in out
    assert (results.read_text() if results.exists() else None) == before


def test_conv_pieces_quick(capsys):
    from cnnlab import native

    if not native.available():
        pytest.skip(f"no native kernels here: {native.status()}")
    bench = _load("conv_pieces")
    before = bench.RESULTS.read_text() if bench.RESULTS.exists() else None
    assert bench.main(["--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| conv1 | forward + weight gradient |" in out and "| conv2 | input gradient |" in out
    assert (bench.RESULTS.read_text() if bench.RESULTS.exists() else None) == before


@pytest.mark.slow
def test_time_to_accuracy_quick(capsys):
    bench = _load("time_to_accuracy")
    assert bench.main(["--quick", "--recipe", "fast-cpu"]) == 0
    out = capsys.readouterr().out
    assert "| fast-cpu |" in out and "--dataset synthetic" in out


@pytest.mark.slow
def test_compare_d2l_quick(capsys):
    bench = _load("compare_d2l")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| cnnlab |" in out and "d2l 1.0.3 |" not in out
