"""`make gpu-check`'s script in its CPU smoke mode, so that it cannot rot between GPU visits.

``benchmarks/gpu_check.py --smoke`` runs every stage of the GPU check on the CPU with
tiny sizes (LeNet instead of ResNet-18, synthetic data where the real set is not
needed) and writes its table to a file of the test's own.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_check import peak_of  # noqa: E402


def test_peaks_are_found_by_device_name():
    assert peak_of("NVIDIA H200")[1:] == (989.0, 494.0)
    assert peak_of("NVIDIA H100 PCIe")[0] == "H100 PCIe"
    assert peak_of("NVIDIA A100-SXM4-80GB")[0] == "A100"
    assert peak_of("Tesla T4")[0] == "T4" and peak_of("NVIDIA L4")[0] == "L4"
    assert peak_of("NVIDIA L40S") == ("NVIDIA L40S", None, None)  # not an L4


@pytest.mark.slow
@pytest.mark.bench
def test_the_smoke_run_goes_through_every_stage_and_writes_one_table(tmp_path):
    out = tmp_path / "gpu.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke",
                        "--out", str(out)], capture_output=True, text=True, timeout=400,
                       cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = out.read_text()
    assert text.count("| check | result | figure | note |") == 1
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")][2:]
    by_check = {row[0].lstrip("| "): row for row in rows}
    # stage 1: every test of tests/test_gpu.py has its row, skipped on the CPU with a reason
    n_tests = len(re.findall(r"^def test_", (ROOT / "tests" / "test_gpu.py").read_text(),
                             flags=re.M))
    tests = [row for check, row in by_check.items() if check.startswith("test ")]
    assert len({check.split("[")[0] for check in by_check if check.startswith("test ")}) \
        == n_tests
    assert all(row[1] == "skipped" and row[3].strip(" |") for row in tests)
    # stage 2: one epoch with images/s and the FLOP rate
    train = next(row for check, row in by_check.items() if "cnnlab train" in check)
    assert train[1] == "ok" and float(re.search(r"([0-9.]+) img/s", train[2]).group(1)) > 0
    assert "TFLOP/s" in train[3]
    cells = [row for check, row in by_check.items() if "training cell" in check]
    assert cells and all(row[1] in ("ok", "skipped") for row in cells)
    # stage 3: the recipe's two targets, reached or not, each with a figure
    targets = [row for check, row in by_check.items() if "time to" in check]
    assert len(targets) == 2 and all(row[1] in ("ok", "not reached") for row in targets)
