"""The Trainer's core promises: the user's model is left as built, fit() restores the torch
settings, resume fits the device it runs on, GPU corner cases (mocked), the run directory
is the run's alone, and the thread count follows the free CPUs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from cnnlab.cli import main
from cnnlab.data import DataModule
from cnnlab.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.train import (
    TrainConfig,
    Trainer,
    load_checkpoint,
    resolve_config,
    save_checkpoint,
    steps,
    threads,
)
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import trainer as trainer_mod


def small(**kw):
    base = dict(model="lenet", dataset="synthetic", num_train=256, batch_size=64,
                limit_val_batches=1, num_threads=1, epochs=1)
    base.update(kw)
    return resolve_config(TrainConfig(**base))


def _types(net: nn.Module) -> list[type]:
    return [type(m) for m in net.modules()]


class _Spy:
    """Records the model's layer types while fit() runs."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, row):
        self.seen.append(_types(trainer.model))


# ------------------------------------------------------------------ the user's model
def test_fit_trains_with_fast_layers_and_gives_the_model_back_as_built():
    spy = _Spy()
    trainer = Trainer(small(), callbacks=[spy], save=False)
    trainer.fit()
    built = _types(create_model("lenet"))
    assert spy.seen and spy.seen[0] != built  # the kernels were in while it trained
    assert _types(trainer.model) == built  # and the model's own layers are back

    # a hook on the first sigmoid sees sigmoid outputs, as on an untouched copy
    copy = create_model("lenet")
    copy.load_state_dict(trainer.model.state_dict())
    X = next(iter(trainer.data.val_dataloader()))[0][:8]
    got = {}

    def hook(name):
        return lambda mod, inp, out: got.__setitem__(name, out.detach().clone())

    for name, net in (("trained", trainer.model), ("copy", copy)):
        first = next(m for m in net.modules() if isinstance(m, nn.Sigmoid))
        handle = first.register_forward_hook(hook(name))
        net.eval()
        with torch.no_grad():
            net(X)
        handle.remove()
    assert got["trained"].min() >= 0 and got["trained"].max() <= 1
    torch.testing.assert_close(got["trained"], got["copy"])


def test_no_accel_trains_the_layers_as_built_and_evaluate_alone_swaps_nothing():
    spy = _Spy()
    trainer = Trainer(small(accel=False), callbacks=[spy], save=False)
    trainer.fit()
    built = _types(create_model("lenet"))
    assert spy.seen == [built] and _types(trainer.model) == built
    fresh = Trainer(small(), save=False)
    fresh.evaluate(limit=1)  # outside fit(): the model as built
    assert _types(fresh.model) == built


def test_no_accel_flag_and_d2l_switch(monkeypatch, tmp_path, capsys):
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import config_from_args

    args = build_parser().parse_args(["train", "lenet", "--no-accel"])
    assert config_from_args(args)[0].accel is False
    assert "--no-accel" in build_parser()._subparsers._group_actions[0].choices[
        "train"].format_help()
    from cnnlab._d2l.trainer import Trainer as D2LTrainer

    monkeypatch.setenv("CNNLAB_ACCEL", "0")
    assert D2LTrainer(max_epochs=1)._accel() is False
    assert D2LTrainer(max_epochs=1, accel=True)._accel() is True
    monkeypatch.delenv("CNNLAB_ACCEL")
    assert D2LTrainer(max_epochs=1)._accel() is True


# ------------------------------------------------------------------ torch settings
def test_torch_settings_are_restored_and_cudnn_autotunes_unless_deterministic():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.backends.cudnn.benchmark)
    with steps.torch_settings(torch.device("cuda"), deterministic=False):
        assert torch.backends.cudnn.benchmark is True
    with steps.torch_settings(torch.device("cuda"), deterministic=True):
        assert torch.backends.cudnn.benchmark is False
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    with pytest.raises(RuntimeError):
        with steps.torch_settings(torch.device("cpu"), num_threads=1, deterministic=True):
            raise RuntimeError("boom")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark) == before


def test_fit_restores_threads_even_when_it_fails():
    before = torch.get_num_threads()
    with pytest.raises(ConfigError):
        Trainer(small(num_threads=1, num_train=100, batch_size=200), save=False).fit()
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------ devices (mocked GPU)
def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(steps, "_mps_available", lambda: True)
    assert steps.pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(steps, "_mps_available", lambda: False)
    assert steps.pick_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="MPS backend is not available"):
        steps.pick_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert steps.pick_device("auto", local_rank=3) == torch.device("cuda", 1)
    TrainConfig(device="mps").validate()


@pytest.mark.parametrize("capability, wanted", [((7, 5), "fp16"), ((8, 0), "bf16")])
def test_bf16_below_sm80_trains_in_fp16_and_says_so(monkeypatch, capability, wanted):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    got, note = steps.effective_precision("bf16", torch.device("cuda", 0))
    assert got == wanted and (note is None) == (wanted == "bf16")
    monkeypatch.setattr(trainer_mod, "pick_device", lambda name, rank=0: torch.device("cuda", 0))
    trainer = Trainer(small(precision="bf16"), save=False)
    trainer.steps_per_epoch = 1
    banner = trainer._banner()
    assert trainer.precision == wanted and f"{wanted} on cuda:0" in banner
    assert ("sm_75" in banner and "gradient scaler" in banner) == (wanted == "fp16")


def test_epoch_clock_waits_for_the_gpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    steps.synchronized_clock(torch.device("cuda", 0))
    steps.synchronized_clock(torch.device("cpu"))
    assert calls == [torch.device("cuda", 0)]


# ------------------------------------------------------------------ batches
def test_a_last_batch_of_one_image_is_dropped_so_batchnorm_trains(capsys):
    dm = DataModule("synthetic", batch_size=128, num_train=129)
    assert [len(y) for _, y in dm.train_dataloader()] == [128] == [128] * len(
        dm.train_dataloader())
    assert [len(y) for _, y in DataModule("synthetic", batch_size=128, num_train=130)
            .train_dataloader()] == [128, 2]  # two images: BatchNorm can normalise them
    dm = DataModule("synthetic", batch_size=100, num_train=250, num_val=150, drop_last=True)
    assert [len(y) for _, y in dm.train_dataloader()] == [100, 100]
    assert [len(y) for _, y in dm.val_dataloader()] == [100, 50]  # validation keeps all
    # the issue's case, with a small BatchNorm model: no "Expected more than 1 value"
    assert main(["train", "lenet-bn", "--dataset", "synthetic", "--num-train", "129",
                 "--batch-size", "128", "--epochs", "1", "--limit-val-batches", "1",
                 "--num-threads", "1", "--dry-run"]) == 0


@pytest.mark.slow
def test_the_issue_example_resnet18_trains(capsys, tmp_path):
    assert main(["train", "resnet18", "--dataset", "synthetic", "--resize", "32",
                 "--num-train", "129", "--batch-size", "128", "--epochs", "1",
                 "--limit-val-batches", "1", "--num-threads", "1",
                 "--out", str(tmp_path / "run")]) == 0  # not the repo's runs/: 90 MB each
    assert (tmp_path / "run" / "best.pt").is_file()


def test_compile_drops_a_partial_last_batch(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda net, **kw: net)
    trainer = Trainer(small(compile=True, num_train=200, batch_size=64), save=False)
    trainer.fit()
    assert trainer.steps_per_epoch == 3 and trainer.history[0]["images_per_s"] > 0
    assert [len(y) for _, y in trainer.data.train_dataloader()] == [64, 64, 64]


def test_tta_runs_for_the_final_validation_only(monkeypatch):
    seen = []
    real = trainer_mod.evaluate_batches

    def spy(*args, **kwargs):
        seen.append(kwargs["tta"])
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "evaluate_batches", spy)
    Trainer(small(epochs=3, tta=True, num_train=64), save=False).fit()
    assert seen == [False, False, True]


def test_global_batch_must_split_over_the_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match=r"batch_size=65 is the global batch.*batch_size=64"):
        Trainer(small(batch_size=65), save=False)


# ------------------------------------------------------------------ checkpoints and resume
def test_an_improving_epoch_writes_one_file_and_links_the_other(tmp_path):
    out = tmp_path / "run"
    state = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "x": torch.ones(3)}
    ckpt.save_checkpoints(state, [out / "best.pt", out / "last.pt"])
    assert (out / "best.pt").stat().st_ino == (out / "last.pt").stat().st_ino
    ckpt.save_checkpoints({**state, "x": torch.zeros(3)}, [out / "last.pt"])
    assert torch.equal(torch.load(out / "best.pt")["x"], torch.ones(3))  # untouched
    assert torch.equal(torch.load(out / "last.pt")["x"], torch.zeros(3))
    assert not list(out.glob(".*.tmp"))


def test_resume_keeps_this_devices_optimizer_options(tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(small(optimizer="momentum", lr=0.05, out_dir=str(out))).fit()
    state = load_checkpoint(out / "last.pt")
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True  # as written on a GPU
    save_checkpoint(state, out / "last.pt")
    trainer = Trainer(small(optimizer="momentum", lr=0.05, epochs=2, out_dir=str(out)),
                      resume=out / "last.pt")
    trainer.fit()
    assert all(not g["fused"] for g in trainer.optimizer.param_groups)
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_a_changed_process_count_is_said_in_one_line():
    rng = ckpt.rng_state()
    two = {"rng": rng, "rng_ranks": [rng, rng]}
    state, note = ckpt._rng_of_rank(two, rank=1, world_size=2)
    assert state is rng and note is None
    state, note = ckpt._rng_of_rank(two, rank=0, world_size=1)
    assert state is rng and "2 processes, this run has 1" in note and "\n" not in note
    state, note = ckpt._rng_of_rank({"rng": rng}, rank=2, world_size=3)
    assert "1 process, this run has 3" in note and "own seeds" in note
    with pytest.raises(ckpt.CheckpointError, match="rng_ranks"):
        ckpt._rng_of_rank({"rng": rng, "rng_ranks": ["x"]}, rank=0, world_size=1)


# ------------------------------------------------------------------ the run directory
def test_a_locked_run_directory_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="in use by another training"):
            Trainer(small(out_dir=str(out))).fit()
        assert list(out.iterdir()) == []  # nothing written
    finally:
        os.close(fd)
    Trainer(small(out_dir=str(out))).fit()  # free again


@pytest.mark.slow
def test_two_real_trainings_into_one_folder(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "cnnlab", "train", "lenet-modern", "--dataset", "synthetic",
            "--num-train", "2048", "--batch-size", "32", "--epochs", "100", "--num-threads",
            "1", "--limit-val-batches", "1", "--out", str(out)]
    env = {**os.environ, "CNNLAB_NO_DOWNLOAD": "1"}
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert first.poll() is None, first.communicate()  # still training (100 epochs)
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert "in use by another training" in lines[0] or "already holds" in lines[0]
        first.send_signal(signal.SIGINT)  # Ctrl-C: the first run stops cleanly
        _, err = first.communicate(timeout=120)
        assert first.returncode == 130 and "Traceback" not in err, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.kill()


def test_a_symlinked_last_pt_resumes_into_the_named_folder(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    base = ["train", "lenet-modern", "--dataset", "synthetic", "--num-train", "64",
            "--batch-size", "32", "--limit-val-batches", "1", "--num-threads", "1"]
    assert main([*base, "--epochs", "1", "--out", str(a)]) == 0
    before = {p.name: p.read_bytes() for p in a.iterdir() if p.is_file()}
    b.mkdir()
    (b / "last.pt").symlink_to(a / "last.pt")
    assert main([*base, "--epochs", "2", "--out", str(b), "--resume", "auto"]) == 0
    assert {p.name: p.read_bytes() for p in a.iterdir() if p.is_file()} == before
    assert not (b / "last.pt").is_symlink()
    assert load_checkpoint(b / "last.pt")["epoch"] == 2


def test_a_dry_run_resume_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "lenet-modern", "--dataset", "synthetic", "--num-train", "64",
            "--batch-size", "32", "--limit-val-batches", "1", "--num-threads", "1"]
    assert main([*base, "--epochs", "1", "--out", str(out)]) == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--resume", "auto", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and "unchanged" in printed
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


# ------------------------------------------------------------------ threads
def test_thread_governor_counts_what_other_programs_use(monkeypatch):
    gov = threads.ThreadGovernor(max_threads=2, cpus=[0, 1])
    clock = {"wall": 0.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda cpus: clock["busy"])
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(threads.time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(threads.time, "sleep", lambda s: clock.update(
        wall=clock["wall"] + s, busy=clock["busy"] + s * 0.02))  # an idle machine
    before = torch.get_num_threads()
    try:
        assert gov.start() == 2
        # an epoch of 2 s: we used 2.6 CPU-s (spinning included), the machine 4 s: another
        # program kept 0.7 of a CPU busy -> one thread
        clock.update(wall=clock["wall"] + 2, busy=clock["busy"] + 4.0, own=2.6)
        assert gov.update() == 1 and torch.get_num_threads() == 1
        # the other program stopped: both CPUs are ours again
        clock.update(wall=clock["wall"] + 2, busy=clock["busy"] + 2.0, own=2.0 + 2.6)
        assert gov.update() == 2
        # a window of a few clock ticks decides nothing
        clock.update(wall=clock["wall"] + 0.01, busy=clock["busy"] + 0.02, own=4.6)
        assert gov.update() == 2
    finally:
        torch.set_num_threads(before)


def test_thread_governor_stays_out_of_the_users_choice(monkeypatch):
    assert threads.ThreadGovernor.for_run(2, False, env={}) is None
    assert threads.ThreadGovernor.for_run(None, True, env={}) is None
    assert threads.ThreadGovernor.for_run(None, False, env={"OMP_NUM_THREADS": "1"}) is None
    assert threads.ThreadGovernor.for_run(None, False, env={threads.ENV: "0"}) is None
    if os.path.exists("/proc/stat"):
        assert threads.ThreadGovernor.for_run(None, False, env={}) is not None
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.ENV, raising=False)
    Trainer(small(num_threads=None), save=False).fit()
    assert torch.get_num_threads() == before
