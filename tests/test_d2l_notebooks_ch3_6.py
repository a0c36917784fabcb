"""Notebook cells of d2l 1.0.3's chapters 3-5 and d2l 0.17's chapters 3 and 6-7
(tests/notebooks/ch3_*.py ... v017_*.py) through cnnlab.d2l / cnnlab.d2l017.

The training cells run shortened (CNNLAB_D2L_MAX_EPOCHS=1, CNNLAB_D2L_LIMIT_BATCHES=2);
the regression ones are small and run in full, with the values the real d2l prints
for the same seeds (compared outside the suite, benchmarks/README-d2l.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cnnlab.data import is_available
from test_d2l_notebooks import _isolate, run_notebook  # noqa: F401 - the autouse fixture

HAVE_FMNIST = is_available("fashion-mnist")


def needs_fmnist(test):
    skip = pytest.mark.skipif(not HAVE_FMNIST, reason="real Fashion-MNIST files absent")
    return pytest.mark.realdata(skip(test))


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")


def _tensors(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", line.split(":", 1)[1])]


@pytest.mark.slow  # two full trainings, 18 board PNGs
def test_3_linear_regression_scratch_and_concise():
    outs = run_notebook("ch3_linear_regression.py")
    assert outs[2].value == (torch.Size([32, 2]), torch.Size([32, 1]), 32)
    # the real d2l 1.0.3 prints these for seed 1 (same generator calls, same loop)
    scratch = outs[3].stdout.splitlines()
    assert _tensors(scratch[-2]) == pytest.approx([0.0846, -0.1164], abs=2e-4)
    assert _tensors(scratch[-1]) == pytest.approx([0.2098], abs=2e-4)
    concise = outs[4].stdout.splitlines()
    assert _tensors(concise[-2]) == pytest.approx([0.0016, -0.0028], abs=2e-4)
    assert _tensors(concise[-1]) == pytest.approx([0.0109], abs=2e-4)
    assert "d2l board:" in outs[3].stdout and Path("d2l-board.png").stat().st_size > 0


@needs_fmnist
def test_4_softmax_scratch_and_concise(capped):
    ns: dict = {}
    outs = run_notebook("ch4_softmax.py", run_training=True, ns=ns)
    assert outs[1].value == (60000, 10000, torch.Size([1, 32, 32]))
    assert outs[2].value[:4] == (torch.Size([64, 1, 32, 32]), torch.float32,
                                 torch.Size([64]), torch.int64)
    assert outs[2].value[4] == ["ankle boot", "pullover", "trouser"]
    trainer, model = ns["trainer"], ns["model"]
    assert len(trainer.history) == 1 and trainer.model is model
    X, _ = next(iter(ns["data"].val_dataloader()))
    assert model(X).argmax(dim=1).shape == (256,)
    assert list(model.board.data) == ["train_loss", "val_loss", "val_acc"]


@needs_fmnist
def test_5_mlp_and_dropout(capped):
    ns: dict = {}
    outs = run_notebook("ch5_mlp.py", run_training=True, ns=ns)
    assert outs[1].value == torch.Size([2, 10]) and outs[2].value == torch.Size([3, 10])
    assert len(ns["trainer"].history) == 1


def test_017_3_linear_regression_with_the_functions():
    outs = run_notebook("v017_ch3_linear.py")
    assert outs[1].value == (torch.Size([1000, 2]), torch.Size([1000, 1]))
    losses = [float(v) for v in re.findall(r"loss ([\d.]+)", outs[2].stdout)]
    assert len(losses) == 3 and losses[-1] < 1e-3 < losses[0] * 100  # ~5e-5 in d2l
    assert len(re.findall(r"loss ([\d.]+)", outs[3].stdout)) == 3


@needs_fmnist
def test_017_3_softmax_with_train_ch3(capped):
    outs = run_notebook("v017_ch3_softmax.py", run_training=True)
    assert outs[1].value == (torch.Size([256, 1, 28, 28]), torch.float32, torch.int64, 235, 40)
    assert len(outs[2].value) == 4 and all(isinstance(s, str) for s in outs[2].value)
    assert outs[3].value is True
    assert "d2l animator:" in outs[4].stdout and Path("d2l-animator.png").stat().st_size > 0


def test_017_6_lenet_shapes_and_residual():
    outs = run_notebook("v017_ch6_lenet.py")
    shapes = re.findall(r"(\w+) output shape: \t torch\.Size\(\[([\d, ]+)\]\)", outs[1].stdout)
    assert [n for n, _ in shapes][:3] == ["Conv2d", "Sigmoid", "AvgPool2d"]
    assert shapes[5] == ("AvgPool2d", "1, 16, 5, 5") and shapes[-1] == ("Linear", "1, 10")
    assert outs[2].value[0] == torch.Size([4, 6, 3, 3])
    assert outs[2].value[1][-1].type in ("cpu", "cuda")


@needs_fmnist
def test_017_6_lenet_train_ch6_prints_the_books_lines(capped):
    outs = run_notebook("v017_ch6_lenet.py", run_training=True)
    lines = outs[3].stdout.splitlines()
    assert lines[0] == "training on cpu" or lines[0].startswith("training on cuda")
    assert re.fullmatch(r"loss \d\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}", lines[-2])
    assert re.fullmatch(r"\d+\.\d examples/sec on \w+(:\d+)?", lines[-1])
