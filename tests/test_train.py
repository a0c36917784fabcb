"""The Trainer end to end on the synthetic set: run directory, learning, resume, divergence."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cnnlab.errors import TrainingDiverged
from cnnlab.train import TrainConfig, Trainer, load_checkpoint, resolve_config
from cnnlab.train.resolve import config_for_resume

ROW_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
            "images_per_s"}


def small(**kw):
    """A run of a few seconds: 1 thread (no oversubscription on a busy machine)."""
    base = dict(model="lenet-modern", dataset="synthetic", num_train=512, batch_size=32,
                limit_val_batches=4, num_threads=1, optimizer="momentum", lr=0.05)
    base.update(kw)
    return resolve_config(TrainConfig(**base))


def test_fit_leaves_a_full_run_directory_and_learns(tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(small(epochs=3, out_dir=str(out)))
    assert trainer.run_dir == out
    history = trainer.fit()
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert all(set(r) == ROW_KEYS for r in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > max(0.3, history[0]["val_acc"])  # chance is 0.1
    names = {p.name for p in out.iterdir()}
    assert names == {"config.json", "config.yaml", "metrics.csv", "metrics.jsonl",
                     "curves.png", "confusion.png", "best.pt", "last.pt"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] == 3 and cfg["lr"] == 0.05 and cfg["resize"] == 28
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    jsonl = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert jsonl == history
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 3 and last["history"] == history
    assert last["best"] == max(r["val_acc"] for r in history)
    assert load_checkpoint(out / "best.pt")["epoch"] == max(
        history, key=lambda r: r["val_acc"])["epoch"]
    for png in ("curves.png", "confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same directory is not overwritten by a new run
    with pytest.raises(ValueError, match="resume=.*last.pt"):
        Trainer(small(epochs=1, out_dir=str(out))).fit()


def test_val_every_skips_validation_but_always_validates_the_last_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    history = Trainer(small(epochs=3, val_every=2, out_dir=str(out))).fit()
    assert [r["val_acc"] is None for r in history] == [True, False, False]
    assert [r["val_loss"] is None for r in history] == [True, False, False]
    assert "epoch 1/3" in capsys.readouterr().out.split("(not validated)")[0]
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["val_acc"] == "" for r in rows] == [True, False, False]
    assert load_checkpoint(out / "best.pt")["epoch"] in (2, 3)
    assert (out / "curves.png").exists() and (out / "confusion.png").exists()
    from cnnlab.train.plots import curves_figure

    lines = {ln.get_label(): list(ln.get_xdata()) for ln in curves_figure(history).axes[0].lines}
    assert lines["val_acc"] == [2, 3] and lines["train_loss"] == [1, 2, 3]  # joined, no gaps
    with pytest.raises(ValueError, match="val_every must be a positive integer"):
        TrainConfig(val_every=0).validate()


class _Interrupt:
    def on_epoch_end(self, trainer, row):
        raise KeyboardInterrupt


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    kw = dict(deterministic=True, augment="crop,flip", schedule="cosine", warmup_epochs=0.5,
              num_train=192)
    straight = Trainer(small(epochs=2, out_dir=str(tmp_path / "a"), **kw))
    straight.fit()
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C right after epoch 1's checkpoint
        Trainer(small(epochs=2, out_dir=str(tmp_path / "b"), **kw),
                callbacks=[_Interrupt()]).fit()
    saved = load_checkpoint(tmp_path / "b" / "last.pt")["config"]
    cfg = config_for_resume(saved, TrainConfig(), set())
    resumed = Trainer(cfg, resume=tmp_path / "b" / "last.pt")
    assert resumed.run_dir == (tmp_path / "b").resolve()
    resumed.fit()
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert (tmp_path / "b" / "metrics.csv").read_text().count("\n") == 3  # header + 2 rows


class _Explode:
    """Raise the lr a billion-fold after the first epoch."""

    def on_epoch_end(self, trainer, row):
        for group in trainer.optimizer.param_groups:
            group["lr"] = 1e9
        for i, base in enumerate(trainer.scheduler.base_lrs):
            trainer.scheduler.base_lrs[i] = base * 1e10


def test_divergence_stops_with_a_clear_error_and_keeps_the_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(small(epochs=3, out_dir=str(out)), callbacks=[_Explode()])
    with pytest.raises(TrainingDiverged, match=r"epoch 2.*lr=") as info:
        trainer.fit()
    assert "\n" not in str(info.value)
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_bf16_channels_last_and_the_other_options_run_on_cpu():
    cfg = small(precision="bf16", channels_last=True, tta=True, grad_clip=1.0,
                label_smoothing=0.1, schedule="onecycle", dry_run=True, normalize=True)
    trainer = Trainer(cfg)
    assert trainer.run_dir is None  # a dry run writes nothing unless told where
    history = trainer.fit()
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["train_loss"]))
    assert trainer.steps_per_epoch == 2
    state = trainer.checkpoint_state()
    assert state["normalization"]["mean"][0] == pytest.approx(trainer.data.mean)


def test_compile_flag_wraps_the_model(monkeypatch):
    real = torch.compile
    calls = []

    def eager_compile(model, **kw):  # inductor's C++ build takes minutes on a busy CPU
        calls.append(model)
        return real(model, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    trainer = Trainer(small(compile=True, dry_run=True))
    trainer.fit()
    assert len(calls) == 1 and hasattr(trainer.net, "_orig_mod")
    assert not any(k.startswith("_orig_mod") for k in trainer.checkpoint_state()["model"])


def test_prebuilt_model_loss_and_optimizer_are_used():
    from torch import nn

    from cnnlab.data import DataModule

    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    data = DataModule("synthetic", batch_size=64, num_train=256, num_val=64)
    seen = []

    class Record:
        def on_epoch_end(self, trainer, row):
            seen.append(row["epoch"])

        def on_fit_end(self, trainer):
            seen.append("end")

    trainer = Trainer(TrainConfig(model="mine", epochs=2, num_threads=1), model=net, data=data,
                      loss_fn=nn.CrossEntropyLoss(), optimizer=opt, callbacks=[Record()],
                      save=False)
    history = trainer.fit()
    assert trainer.optimizer is opt and seen == [1, 2, "end"]
    assert history[0]["lr"] == 0.3
    result = trainer.evaluate()
    assert sum(map(sum, result["confusion"])) == 64 and 0 <= result["acc"] <= 1


def test_curves_are_redrawn_at_most_every_plot_interval_and_at_the_end(tmp_path, monkeypatch):
    from cnnlab.train import runfiles

    drawn = []
    monkeypatch.setattr(runfiles.RunFiles, "plot",
                        lambda self, h: (drawn.append(len(h)),
                                         setattr(self, "_undrawn", None),
                                         setattr(self, "_drawn_at", clock[0])))
    clock = [0.0]
    monkeypatch.setattr(runfiles.time, "monotonic", lambda: clock[0])
    files = runfiles.RunFiles(tmp_path / "run", TrainConfig(epochs=4))
    files.start([])
    history = []
    for epoch, t in enumerate([5.0, 20.0, 31.0, 40.0], start=1):  # seconds since the start
        clock[0] = t
        history.append({"epoch": epoch, "train_loss": 1.0 / epoch})
        files.add_row(history[-1], history)
    assert drawn == [3]  # 31 s after the start; epoch 4 came 9 s after that drawing
    files.finish(None, [])
    assert drawn == [3, 4]  # the end draws what is left
    files.finish(None, [])
    assert drawn == [3, 4]  # nothing left


def test_an_interrupted_run_still_has_curves_of_its_finished_epochs(tmp_path):
    out = tmp_path / "run"

    class Stop:
        def on_epoch_end(self, trainer, row):
            if row["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(small(epochs=3, out_dir=str(out)), callbacks=[Stop()]).fit()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
