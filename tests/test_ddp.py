"""Two CPU processes under torch.distributed.run (gloo) train like one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cnnlab.cli import main
from cnnlab.train import load_checkpoint

pytestmark = pytest.mark.slow

# global batch 32 in both runs: 2 ranks x 16 vs 1 x 32, the same steps per epoch
COMMON = ["lenet-modern", "--dataset", "synthetic", "--num-train", "1024", "--epochs", "2",
          "--optimizer", "momentum", "--lr", "0.05", "--num-threads", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_run_completes_and_matches_one_process(tmp_path, capsys):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "cnnlab",
           "train", *COMMON, "--batch-size", "16", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 2/2") == 1  # only rank 0 prints
    assert "x 2 processes" in proc.stdout
    ddp = load_checkpoint(out / "last.pt")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows == ddp["history"]
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "curves.png",
                                               "confusion.png", "config.json"}

    single = tmp_path / "single"
    assert main(["train", *COMMON, "--batch-size", "32", "--out", str(single)]) == 0
    one = load_checkpoint(single / "last.pt")
    a, b = ddp["history"][-1]["val_acc"], one["history"][-1]["val_acc"]
    assert a > 0.5 and b > 0.5  # both learned (chance: 0.1)
    assert abs(a - b) < 0.05, (a, b)
