"""`kill -9` at a random moment, then `--resume auto`: the same weights as a run never killed.

The killed run is a real subprocess (SIGKILL: no handler, no cleanup); the
uninterrupted reference and the resumed run go through the same CLI entry
point in this process. Deterministic algorithms, one thread: bitwise equality.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnlab.cli import main
from cnnlab.train import load_checkpoint

EPOCHS = 3
ARGS = ["lenet-modern", "--dataset", "synthetic", "--num-train", "256", "--batch-size", "32",
        "--limit-val-batches", "2", "--num-threads", "1", "--deterministic",
        "--optimizer", "momentum", "--lr", "0.05", "--schedule", "cosine",
        "--augment", "crop,flip", "--epochs", str(EPOCHS)]
pytestmark = pytest.mark.slow
TRIALS = int(os.environ.get("CNNLAB_KILL_TRIALS", "2"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *ARGS, "--out", str(out)]) == 0
    return load_checkpoint(out / "last.pt")


def _kill_at_random(out, rng: random.Random) -> str:
    """Start a training subprocess, SIGKILL it at a random point; return when it died."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    after = rng.randrange(EPOCHS)  # epochs to let finish before the kill clock starts
    seen, started = 0, False
    while not started or seen < after:  # the banner line comes when training starts
        line = proc.stdout.readline()
        if not line:
            break
        started = started or line.startswith("training ")
        seen += line.startswith("epoch ")
    time.sleep(rng.uniform(0.0, 1.0))  # somewhere in the next epoch or its checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return f"killed after {seen} epoch lines (+delay), rc={proc.returncode}"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_then_resume_auto_gives_identical_weights(reference, tmp_path, trial):
    rng = random.Random(1000 + trial + int(time.time()))
    out = tmp_path / "run"
    what = _kill_at_random(out, rng)
    print(what, "last.pt" if (out / "last.pt").exists() else "no last.pt")
    assert main(["train", *ARGS, "--out", str(out), "--resume", "auto"]) == 0, what
    resumed = load_checkpoint(out / "last.pt")
    assert resumed["epoch"] == reference["epoch"] == EPOCHS
    for k, v in reference["model"].items():
        assert torch.equal(v, resumed["model"][k]), f"{k} differs ({what})"
    assert resumed["history"] == [
        {**r, "seconds": s["seconds"], "images_per_s": s["images_per_s"]}
        for r, s in zip(reference["history"], resumed["history"])]
    assert (out / "metrics.csv").read_text().count("\n") == EPOCHS + 1
    assert not list(out.glob(".*.tmp"))
