"""--logger tensorboard: event files in the run directory, read back with TensorBoard's own
reader (EventAccumulator): step losses, epoch metrics, images and hparams."""

from __future__ import annotations

import sys

import pytest

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.train import TrainConfig, Trainer
from cnnlab.train.trainer import SYNC_EVERY

pytest.importorskip("tensorboard", reason="needs the tensorboard extra: "
                                          "pip install 'cnnlab[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _read(run_dir) -> EventAccumulator:
    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


@pytest.mark.slow
def test_events_hold_step_loss_epoch_metrics_images_and_hparams(tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(model="lenet-modern", dataset="synthetic", num_train=640, batch_size=16,
                      epochs=2, limit_val_batches=2, num_threads=1, logger="tensorboard",
                      out_dir=str(out))
    trainer = Trainer(cfg)
    history = trainer.fit()
    ea = _read(out)
    scalars = set(ea.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "train/loss_steps",
            "hparam/val_acc"} <= scalars
    steps = 640 // 16
    assert [e.step for e in ea.Scalars("val/acc")] == [steps, 2 * steps]
    assert [e.value for e in ea.Scalars("val/acc")] == pytest.approx(
        [r["val_acc"] for r in history])
    assert [e.value for e in ea.Scalars("train/loss")] == pytest.approx(
        [r["train_loss"] for r in history], rel=1e-6)
    # one point per SYNC_EVERY steps, each the mean loss of its window
    windows = [e.step for e in ea.Scalars("train/loss_steps")]
    assert windows == list(range(SYNC_EVERY, 2 * steps + 1, SYNC_EVERY))
    assert all(0 < e.value < 10 for e in ea.Scalars("train/loss_steps"))
    assert set(ea.Tags()["images"]) == {"confusion", "curves"}
    image = ea.Images("confusion")[-1]
    assert image.width > 100 and image.height > 100
    hparams = ea.PluginTagToContent("hparams")
    assert hparams  # the HPARAMS tab's experiment, session start and end
    assert b"val_acc" in b"".join(hparams.values())
    assert b"lenet-modern" in b"".join(hparams.values())
    assert ea.Scalars("hparam/val_acc")[-1].value == pytest.approx(history[-1]["val_acc"])
    # the CSV and JSONL are there as always
    assert (out / "metrics.csv").exists() and (out / "metrics.jsonl").exists()


def test_missing_tensorboard_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"pip install 'cnnlab\[tensorboard\]'"):
        Trainer(TrainConfig(model="lenet", dataset="synthetic", logger="tensorboard"))
    assert main(["train", "lenet", "--dataset", "synthetic", "--dry-run",
                 "--logger", "tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cnnlab[tensorboard]" in err[0]


def test_logger_is_checked():
    with pytest.raises(ConfigError, match="logger must be one of tensorboard"):
        TrainConfig(logger="wandb").validate()
