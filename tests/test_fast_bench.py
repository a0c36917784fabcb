"""The benchmark scripts: their --quick smoke runs, and how they write results files.

The smoke runs (marker ``bench``) check only that each script runs to exit 0 and
writes nothing under --quick; the figures themselves live in BENCHMARKS.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:  # as when run as `python benchmarks/NAME.py`: _results
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unchanged(path: Path):
    return path.read_text() if path.exists() else None


@pytest.mark.bench
def test_lenet_step_quick():
    bench = _load("lenet_step")
    before = _unchanged(bench.RESULTS)
    assert bench.main(["--quick", "--threads", "1"]) == 0
    assert _unchanged(bench.RESULTS) == before


@pytest.mark.bench
def test_conv_pieces_quick():
    from cnnlab import native

    if not native.available():
        pytest.skip(f"no native kernels here: {native.status()}")
    bench = _load("conv_pieces")
    before = _unchanged(bench.RESULTS)
    assert bench.main(["--quick", "--threads", "1"]) == 0
    assert _unchanged(bench.RESULTS) == before


@pytest.mark.bench
def test_ops_quick(tmp_path):
    bench = _load("ops")
    assert bench.main(["--quick", "--breakdown", "--out", str(tmp_path / "ops.md")]) == 0
    assert not (tmp_path / "ops.md").exists()  # --quick writes no file


@pytest.mark.bench
@pytest.mark.slow
def test_time_to_accuracy_quick():
    assert _load("time_to_accuracy").main(["--quick", "--recipe", "fast-cpu"]) == 0


@pytest.mark.bench
@pytest.mark.slow
def test_compare_d2l_quick():
    assert _load("compare_d2l").main(["--quick"]) == 0


def test_a_new_run_replaces_only_its_own_script_and_machine(tmp_path, monkeypatch, capsys):
    _results = _load("_results")
    path = tmp_path / "r.md"
    path.write_text("# header\n\nintro\n")
    machines = iter(["m1", "m1", "m2", "m1"])
    monkeypatch.setattr(_results, "machine", lambda: next(machines))
    monkeypatch.setattr(sys, "argv", ["benchmarks/step.py"])
    _results.write_results(path, "## step run 1\n")
    monkeypatch.setattr(sys, "argv", ["benchmarks/pieces.py"])
    _results.write_results(path, "## pieces run 1\n")
    monkeypatch.setattr(sys, "argv", ["benchmarks/step.py"])
    _results.write_results(path, "## step run 2 (other machine)\n")
    _results.write_results(path, "## step run 3\n")
    assert path.read_text() == (
        "# header\n\nintro\n\n"
        "<!-- run: step.py | m1 -->\n## step run 3\n\n"
        "<!-- run: pieces.py | m1 -->\n## pieces run 1\n\n"
        "<!-- run: step.py | m2 -->\n## step run 2 (other machine)\n")
    assert "step.py run on m1" in capsys.readouterr().out


def test_every_results_file_holds_one_run_per_script_and_machine():
    import re

    for path in sorted((BENCH / "results").glob("*.md")):
        keys = re.findall(r"^<!-- run: (.+?) -->$", path.read_text(), re.M)
        assert len(keys) == len(set(keys)), f"{path.name} repeats a run: {keys}"


@pytest.mark.bench
@pytest.mark.slow
def test_startup_quick(capsys):
    bench = _load("startup")
    before = _unchanged(bench.RESULTS)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| `import torch` |" in out and "`cnnlab predict CKPT IMAGE`" in out
    assert _unchanged(bench.RESULTS) == before


@pytest.mark.bench
@pytest.mark.slow
def test_speedrun_quick(capsys):
    bench = _load("speedrun")
    before = _unchanged(bench.RESULTS)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| recipe |" in out and "fast-cpu" in out and "CPU:" in out
    assert _unchanged(bench.RESULTS) == before


def test_speedrun_open_row_reports_the_best_within_its_budget():
    bench = _load("speedrun")
    runs = [{"acc": 0.9401, "wall": 600.0}] * 3
    target, met = bench.verdict("fast-cpu-95", runs, D=200.0)
    assert "within 15 D" in target and met == "reported: 94.01%"
    assert bench.verdict("fast-cpu-95", [{"acc": 0.951, "wall": 600.0}] * 3, D=200.0)[1] \
        == "reported: 95.10% (95% reached)"
    # over 15 D, too few seeds, or no D: not a result for the row
    assert bench.verdict("fast-cpu-95", [{"acc": 0.96, "wall": 3001.0}] * 3,
                         D=200.0)[1] == "no: 15.01 D is 1.0x the budget"
    assert "only 1 of the 3 seeds" in bench.verdict("fast-cpu-95", runs[:1], D=200.0)[1]
    assert "no D" in bench.verdict("fast-cpu-95", runs, D=None)[1]
    # the bounded rows still need their accuracy
    assert "short" in bench.verdict("fast-cpu-94", [{"acc": 0.9376, "wall": 260.0}] * 3,
                                    D=200.0)[1]


def test_before_after_refuses_a_folder_without_cnnlab(tmp_path, capsys):
    bench = _load("before_after")
    with pytest.raises(SystemExit) as e:
        bench.main(["--before", str(tmp_path), "--quick"])
    assert e.value.code == 2 and "holds no cnnlab/ package" in capsys.readouterr().err
    assert not bench.RESULTS.exists() or "before_after" in bench.RESULTS.read_text()
