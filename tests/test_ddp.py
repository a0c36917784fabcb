"""Two CPU processes under torch.distributed.run (gloo) train like one process.

--batch-size is the global batch: two processes take half of it each, so the torchrun run
takes the same steps on the same examples as the one-process run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from cnnlab.cli import main
from cnnlab.train import load_checkpoint

pytestmark = pytest.mark.slow

# global batch 32 in both runs: 2 ranks x 16 vs 1 x 32, the same steps per epoch
COMMON = ["lenet-modern", "--dataset", "synthetic", "--num-train", "1024", "--epochs", "2",
          "--optimizer", "momentum", "--lr", "0.05", "--num-threads", "1", "--batch-size", "32"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_run_completes_and_matches_one_process(tmp_path, capsys):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "cnnlab",
           "train", *COMMON, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 2/2") == 1  # only rank 0 prints
    assert "batch 32 (16 x 2 processes)" in proc.stdout
    ddp = load_checkpoint(out / "last.pt")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows == ddp["history"]
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "curves.png",
                                               "confusion.png", "config.json"}

    # each rank has its own random stream (dropout), and the checkpoint keeps both
    ranks = ddp["rng_ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])

    single = tmp_path / "single"
    assert main(["train", *COMMON, "--out", str(single)]) == 0
    one = load_checkpoint(single / "last.pt")
    a, b = ddp["history"][-1]["val_acc"], one["history"][-1]["val_acc"]
    assert a > 0.5 and b > 0.5  # both learned (chance: 0.1)
    # the same examples per step and the mean gradient over them: the same run, up to
    # the order of float additions
    assert abs(a - b) < 0.02, (a, b)
    first = (ddp["history"][0]["train_loss"], one["history"][0]["train_loss"])
    assert first[0] == pytest.approx(first[1], rel=1e-3), first
    for k, v in one["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, atol=2e-3, rtol=1e-2)

    # resumed by one process: the change of process count is said in one line
    capsys.readouterr()
    assert main(["train", *COMMON[:-4], "--epochs", "3", "--resume", str(out / "last.pt")]) == 0
    said = capsys.readouterr().out
    assert "random state of 2 processes, this run has 1" in said
