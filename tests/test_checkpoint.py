"""Checkpoints: atomic writes, weights_only loads, refusal of unsafe or foreign files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from cnnlab.errors import CheckpointError
from cnnlab.models import create_model
from cnnlab.train import TrainConfig, load_checkpoint, model_from_checkpoint, save_checkpoint
from cnnlab.train.checkpoint import FORMAT, VERSION, rng_state, set_rng_state


def _state(net=None, num_classes=10):
    net = net or create_model("lenet", num_classes=num_classes)
    return {"format": FORMAT, "version": VERSION, "model": net.state_dict(), "epoch": 1,
            "step": 10, "config": TrainConfig(model="lenet", epochs=1, resize=28).to_dict(),
            "num_classes": num_classes, "in_channels": 1, "image_size": [28, 28],
            "classes": [str(i) for i in range(num_classes)], "rng": rng_state(),
            "best": 0.5, "history": [{"epoch": 1, "val_acc": 0.5}]}


def test_save_is_atomic_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(_state(), path)
    save_checkpoint(_state(), path)  # overwriting goes through a rename as well
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left
    state = torch.load(path, weights_only=True)
    assert state["format"] == FORMAT and state["epoch"] == 1
    assert oct(path.stat().st_mode & 0o644) == oct(0o644 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_save_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(_state(), path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - torch.save's own error for a lambda
        save_checkpoint({**_state(), "bad": lambda: 0}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_model_from_checkpoint_rebuilds_the_same_function(tmp_path):
    torch.manual_seed(1)
    net = create_model("lenet")
    save_checkpoint(_state(net), tmp_path / "best.pt")
    rebuilt, cfg, state = model_from_checkpoint(tmp_path / "best.pt")
    X = torch.rand(2, 1, 28, 28)
    net.eval()
    assert torch.equal(rebuilt(X), net(X)) and not rebuilt.training
    assert cfg.model == "lenet" and cfg.out_dir is None and state["best"] == 0.5


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**_state(), "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="not a safe cnnlab checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()


@pytest.mark.parametrize("what", ["truncated", "garbage", "not-ours", "empty-dict"])
def test_files_that_are_not_checkpoints_raise_checkpoint_error(tmp_path, what):
    path = tmp_path / "x.pt"
    save_checkpoint(_state(), path)
    if what == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif what == "garbage":
        path.write_bytes(b"hello" * 100)
    elif what == "not-ours":
        torch.save(create_model("lenet").state_dict(), path)
    else:
        torch.save({}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_other_model_shapes(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    state = _state()
    state["model"] = create_model("lenet", num_classes=5).state_dict()  # wrong head
    save_checkpoint(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        model_from_checkpoint(tmp_path / "odd.pt")


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    import random

    import numpy as np

    save_checkpoint({"format": FORMAT, "version": VERSION, "rng": rng_state()},
                    tmp_path / "r.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]
