"""The LR range test (Smith 2017): an exponential sweep, a suggestion, a plot, and a model
and optimizer left exactly as they were."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.train import TrainConfig, Trainer
from cnnlab.train.lr_find import suggest


def _state_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_lr_find_sweeps_suggests_and_leaves_model_and_optimizer_as_they_were(tmp_path):
    cfg = TrainConfig(model="lenet-modern", dataset="synthetic", num_train=1024, batch_size=32,
                      optimizer="momentum", num_threads=1)
    trainer = Trainer(cfg, save=False)
    trainer.dist.start(trainer.device)
    trainer._build()
    # a used optimizer (momentum buffers) must come back too
    X, y = next(iter(trainer.data.train_dataloader()))
    trainer.loss_fn(trainer.net(X), y).backward()
    trainer.optimizer.step()
    model_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    import copy

    opt_before = copy.deepcopy(trainer.optimizer.state_dict())
    rng_before = torch.get_rng_state()
    result = trainer.lr_find(start_lr=1e-5, end_lr=1e4, num_steps=60, plot=tmp_path / "lr.png")
    assert _state_equal(trainer.model.state_dict(), model_before)
    assert _state_equal(trainer.optimizer.state_dict(), opt_before)
    assert torch.equal(torch.get_rng_state(), rng_before)
    lrs = result.lrs
    assert lrs[0] == pytest.approx(1e-5)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # exponential
    assert result.diverged and len(lrs) < 60  # lr 1e4: the loss blows up, the sweep stops
    assert 1e-5 < result.suggestion < lrs[-1]
    assert (tmp_path / "lr.png").stat().st_size > 5000
    assert "suggested lr" in result.line()


def test_suggestion_is_the_steepest_descent_of_the_smoothed_loss():
    lrs = [10 ** (-6 + i / 10) for i in range(60)]
    # flat, then falling fastest at index 30, then rising
    losses = [2.3 - 1.0 / (1 + math.exp(-(i - 30) / 3)) + (0.02 * (i - 45) ** 2 if i > 45
                                                            else 0) for i in range(60)]
    steep, at_min = suggest(lrs, losses)
    assert steep == lrs[30]
    assert at_min == lrs[min(range(60), key=losses.__getitem__)]
    assert suggest(lrs[:5], losses[:5])[0] is None  # too short to tell


@pytest.mark.slow
def test_cli_lr_find_one_line_and_plot(tmp_path, capsys):
    plot = tmp_path / "lr.png"
    assert main(["lr-find", "lenet-modern", "--dataset", "synthetic", "--num-train", "256",
                 "--batch-size", "32", "--num-steps", "20", "--num-threads", "1",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(("suggested lr", "no suggestion"))
    assert plot.exists()


@pytest.mark.parametrize("kwargs, words", [
    ({"start_lr": 0}, "start_lr must be a positive number"),
    ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr must be larger"),
    ({"num_steps": 1}, "num_steps must be an integer >= 2"),
    ({"plot": "lr.jpg"}, "must name a .png"),
])
def test_bad_arguments(kwargs, words):
    trainer = Trainer(TrainConfig(model="lenet", dataset="synthetic", num_train=64), save=False)
    with pytest.raises(ConfigError, match=words):
        trainer.lr_find(**kwargs)
