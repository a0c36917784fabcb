"""SIGTERM/SIGUSR1 save a mid-epoch checkpoint that resumes bit-identically; SIGHUP and
Ctrl-C stop with one line and keep last.pt and the curves of the finished epochs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnlab.data import DataModule
from cnnlab.train import TrainConfig, Trainer, load_checkpoint
from cnnlab.train.signals import Interrupted, Preempted, StopSignals

ARGS = ["lenet-modern", "--dataset", "synthetic", "--num-train", "256", "--batch-size", "32",
        "--limit-val-batches", "2", "--num-threads", "1", "--deterministic",
        "--optimizer", "momentum", "--lr", "0.05", "--schedule", "cosine",
        "--augment", "crop,flip", "--epochs", "3"]


def _config(out) -> TrainConfig:
    return TrainConfig(model="lenet-modern", dataset="synthetic", num_train=256, batch_size=32,
                       limit_val_batches=2, num_threads=1, deterministic=True,
                       optimizer="momentum", lr=0.05, schedule="cosine", augment="crop,flip",
                       epochs=3, out_dir=str(out))


class _Data(DataModule):
    """The synthetic DataModule; its training loader sends ``sig`` to this process as it
    yields batch ``index`` of epoch ``epoch``, so the stop lands at a known step."""

    def __init__(self, sig: int, epoch: int, index: int):
        super().__init__("synthetic", batch_size=32, num_train=256, augment="crop,flip",
                         resize=28)
        self.signal_at = (sig, epoch, index)

    def train_dataloader(self):
        data, loader = self, super().train_dataloader()

        class Loader:
            batch_size, num_examples = loader.batch_size, loader.num_examples

            def __len__(self) -> int:
                return len(loader)

            def __iter__(self):
                sig, epoch, index = data.signal_at
                at = data.epoch
                for i, batch in enumerate(loader):
                    if (at, i) == (epoch, index):
                        os.kill(os.getpid(), sig)
                    yield batch

        return Loader()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    Trainer(_config(out)).fit()
    return load_checkpoint(out / "last.pt")


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_mid_epoch_and_resume_is_bit_identical(reference, tmp_path, sig):
    out = tmp_path / "run"
    with pytest.raises(Preempted) as info:
        Trainer(_config(out), data=_Data(sig, epoch=1, index=3)).fit()
    assert info.value.signum == sig
    assert f"epoch 2 after step 3/8: saved {out / 'last.pt'}" in str(info.value)
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["step"], state["batch"]) == (1, 8 + 3, 3)
    assert state["partial"]["count"] == 3 * 32
    assert len(state["history"]) == 1
    assert (out / "curves.png").exists()  # the finished epoch is drawn
    history = Trainer(_config(out), resume=out / "last.pt").fit()
    final = load_checkpoint(out / "last.pt")
    _same_weights(final["model"], reference["model"])
    assert final["step"] == reference["step"] and "batch" not in final
    # the interrupted epoch's row is whole: its loss sums went through the checkpoint
    for got, want in zip(history, reference["history"]):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert got[key] == want[key], (key, got, want)


def test_stop_signals_restores_the_previous_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP)}
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGTERM) != before[signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
        with pytest.raises(Interrupted):  # a second SIGTERM does not wait for the step
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Interrupted) as info:
            os.kill(os.getpid(), signal.SIGHUP)
        assert info.value.signum == signal.SIGHUP and isinstance(info.value, KeyboardInterrupt)
    assert {s: signal.getsignal(s) for s in before} == before


def _start(out, extra=()):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cnnlab", "train", *ARGS, "--num-train", "1024",
           "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _after_first_epoch(proc) -> None:
    while True:  # the epoch line is printed before its checkpoint: wait for last.pt too
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("epoch 1/"):
            return


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, words", [
    (signal.SIGTERM, 143, "stopped by SIGTERM in epoch"),
    (signal.SIGHUP, 129, "stopped by SIGHUP in epoch"),
    (signal.SIGINT, 130, "interrupted in epoch"),
])
def test_cli_stops_with_one_line_and_keeps_last_pt(tmp_path, sig, code, words):
    out = tmp_path / "run"
    proc = _start(out)
    _after_first_epoch(proc)
    deadline = time.monotonic() + 30
    while not (out / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "--resume" in lines[0], stderr
    assert "Traceback" not in stderr + stdout
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] >= 1
    assert (out / "curves.png").exists()
