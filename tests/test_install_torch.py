"""scripts/install-torch.sh: which torch `make install` asks pip for, on which machine.

The script runs for real against a stand-in PYTHON (a shell script) that records every
pip command and answers as the machine would: torch importable or not, a wheel on local
disk or not. Installing torch itself is not repeated here (it is what `make install`
does, once per machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-torch.sh"
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")

FAKE_PY = """#!/bin/sh
echo "$*" >> "$LOG"
case "$*" in
  "-c import torch") [ "$HAS_TORCH" = 1 ] && exit 0 || exit 1 ;;
  "-c import torch; print(torch.__version__)") echo 2.4.0+cu121; exit 0 ;;
  *--no-index*) [ "$LOCAL_WHEEL" = 1 ] && exit 0 || exit 1 ;;
  *) exit 0 ;;
esac
"""


def run(tmp_path, *, has_torch=False, local_wheel=False, build="cpu"):
    py = tmp_path / "python"
    py.write_text(FAKE_PY)
    py.chmod(0o755)
    log = tmp_path / "log"
    env = {**os.environ, "LOG": str(log), "HAS_TORCH": str(int(has_torch)),
           "LOCAL_WHEEL": str(int(local_wheel)), "TORCH_BUILD": build,
           "TORCH_CPU_INDEX": "https://example.invalid/whl/cpu"}
    r = subprocess.run(["sh", str(SCRIPT), str(py), "torch==2.13.0"], env=env,
                       capture_output=True, text=True, timeout=60)
    pips = [line for line in log.read_text().splitlines() if line.startswith("-m pip")]
    return r, pips


def test_a_torch_that_imports_is_kept(tmp_path):
    r, pips = run(tmp_path, has_torch=True, build="auto")
    assert r.returncode == 0 and pips == []
    assert "2.4.0+cu121" in r.stdout and "keeping" in r.stdout


def test_no_gpu_takes_the_wheel_on_local_disk_first(tmp_path):
    r, pips = run(tmp_path, local_wheel=True)
    assert r.returncode == 0
    assert pips == ["-m pip install -q --no-index --no-deps torch==2.13.0",
                    "-m pip install -q torch==2.13.0"]


def test_no_gpu_and_no_local_wheel_takes_the_cpu_index(tmp_path):
    r, pips = run(tmp_path, local_wheel=False)
    assert r.returncode == 0
    assert pips[-1] == ("-m pip install -q torch==2.13.0 "
                        "--index-url https://example.invalid/whl/cpu")
    assert "CPU build" in r.stdout


def test_a_gpu_machine_takes_the_index_default_cuda_build(tmp_path):
    r, pips = run(tmp_path, build="cuda")
    assert r.returncode == 0 and pips == ["-m pip install -q torch==2.13.0"]


def test_a_wrong_build_name_is_one_clear_line(tmp_path):
    r, _ = run(tmp_path, build="rocm")
    assert r.returncode == 2 and "TORCH_BUILD must be auto, cpu or cuda" in r.stderr
