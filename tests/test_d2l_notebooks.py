"""The users' notebook cells (tests/notebooks/*.py) run through ``from cnnlab import d2l``
and print the values and shapes of ../shared/spec/SEEDS.md.

The cells run in this process, one namespace per notebook, the last expression of a
cell captured as Jupyter would display it. ``# %% [training]`` cells are skipped here
except LeNet's, which runs shortened through CNNLAB_D2L_MAX_EPOCHS/LIMIT_BATCHES.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab._d2l import core
from cnnlab.data import is_available

NOTEBOOKS = Path(__file__).parent / "notebooks"
HAVE_FMNIST = is_available("fashion-mnist")


@dataclass
class Out:
    tag: str
    source: str
    stdout: str
    value: Any


def split_cells(text: str) -> list[tuple[str, str]]:
    """(tag, source) per ``# %%`` cell; text before the first marker is the header."""
    parts = re.split(r"^# %%(.*)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def run_notebook(name: str, run_training: bool = False,
                 ns: dict[str, Any] | None = None) -> list[Out]:
    """Run every cell of ``name`` in ``ns`` (a fresh namespace by default)."""
    path = NOTEBOOKS / name
    ns = {"__name__": "__notebook__"} if ns is None else ns
    outs = []
    for tag, source in split_cells(path.read_text()):
        if tag == "[training]" and not run_training:
            outs.append(Out(tag, source, "", None))
            continue
        tree = ast.parse(source)
        value, buf = None, io.StringIO()
        with contextlib.redirect_stdout(buf):
            body = tree.body
            if body and isinstance(body[-1], ast.Expr):
                exec(compile(ast.Module(body[:-1], []), str(path), "exec"), ns)
                value = eval(compile(ast.Expression(body[-1].value), str(path), "eval"), ns)
            else:
                exec(compile(tree, str(path), "exec"), ns)
        outs.append(Out(tag, source, buf.getvalue(), value))
    return outs


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    """Seed, work in a temp dir, and undo the cells' add_to_class(d2l.Classifier) edits."""
    torch.manual_seed(0)
    monkeypatch.chdir(tmp_path)
    saved = dict(vars(core.Classifier))
    yield
    for k in set(vars(core.Classifier)) - set(saved):
        delattr(core.Classifier, k)
    for k, v in saved.items():
        if k not in ("__dict__", "__weakref__") and vars(core.Classifier).get(k) is not v:
            setattr(core.Classifier, k, v)


def shapes(stdout: str) -> list[tuple[str, list[int]]]:
    """(layer name, shape) from layer_summary lines ``Name output shape:\\t torch.Size([..])``."""
    rows = []
    for line in stdout.splitlines():
        m = re.fullmatch(r"(\w+) output shape:\t torch\.Size\(\[([\d, ]*)\]\)", line)
        assert m, f"not d2l's layer_summary format: {line!r}"
        rows.append((m.group(1), [int(s) for s in m.group(2).split(",")]))
    return rows


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def test_7_2_cross_correlation_edges_and_learned_kernel():
    outs = run_notebook("ch7_2_conv_layer.py")
    assert torch.equal(outs[2].value, T([[19, 25], [37, 43]]))
    assert torch.equal(outs[3].value, T([[19, 25], [37, 43]]))  # d2l.corr2d itself
    Y = outs[7].value
    expected = torch.zeros(6, 7)
    expected[:, 1], expected[:, 5] = 1, -1
    assert torch.equal(Y, expected)
    assert torch.equal(outs[8].value, torch.zeros(8, 5))
    losses = [float(v) for v in re.findall(r"epoch (?:2|4|6|8|10), loss ([\d.]+)", outs[9].stdout)]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True)
    assert losses[-1] < losses[0] / 100  # ~3 orders of magnitude in the users' runs
    assert torch.allclose(outs[10].value, T([[1, -1]]), atol=0.1)


def test_7_3_padding_and_stride_shapes():
    outs = run_notebook("ch7_3_padding.py")
    assert [tuple(o.value) for o in outs[1:]] == [(8, 8), (8, 8), (4, 4), (2, 2)]


def test_7_4_multiple_channels():
    outs = run_notebook("ch7_4_channels.py")
    assert torch.equal(outs[2].value, T([[56, 72], [104, 120]]))
    assert tuple(outs[4].value) == (3, 2, 2, 2)
    assert torch.equal(outs[5].value, T([[[56, 72], [104, 120]], [[76, 100], [148, 172]],
                                         [[96, 128], [192, 224]]]))
    assert outs[7].value < 1e-6


def test_7_5_pooling():
    outs = run_notebook("ch7_5_pooling.py")
    assert torch.equal(outs[2].value, T([[4, 5], [7, 8]]))
    assert torch.equal(outs[3].value, T([[2, 3], [5, 6]]))
    assert torch.equal(outs[5].value, T([[[[10]]]]))
    assert torch.equal(outs[6].value, T([[[[5, 7], [13, 15]]]]))
    assert torch.equal(outs[7].value, T([[[[5, 7], [13, 15]]]]))
    assert outs[8].value.shape == (1, 2, 4, 4)
    assert torch.equal(outs[9].value, T([[[[5, 7], [13, 15]], [[6, 8], [14, 16]]]]))


LENET_SUMMARY = [
    ("Conv2d", [1, 6, 28, 28]), ("Sigmoid", [1, 6, 28, 28]), ("AvgPool2d", [1, 6, 14, 14]),
    ("Conv2d", [1, 16, 10, 10]), ("Sigmoid", [1, 16, 10, 10]), ("AvgPool2d", [1, 16, 5, 5]),
    ("Flatten", [1, 400]), ("Linear", [1, 120]), ("Sigmoid", [1, 120]), ("Linear", [1, 84]),
    ("Sigmoid", [1, 84]), ("Linear", [1, 10])]


def test_7_6_lenet_layer_summary():
    outs = run_notebook("ch7_6_lenet.py")
    assert shapes(outs[2].stdout) == LENET_SUMMARY


@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_FMNIST, reason="real Fashion-MNIST files absent")
def test_7_6_lenet_training_cell_shortened(monkeypatch):
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "3")
    ns: dict[str, Any] = {}
    outs = run_notebook("ch7_6_lenet.py", run_training=True, ns=ns)
    assert "d2l board:" in outs[3].stdout and Path("d2l-board.png").stat().st_size > 0
    trainer, model = ns["trainer"], ns["model"]
    assert model.trainer is trainer and len(trainer.history) == 1
    board = model.board
    assert list(board.data) == ["train_loss", "val_loss", "val_acc"]
    assert all(len(points) == 1 for points in board.data.values())
    assert 0.0 <= board.data["val_acc"][0].y <= 1.0
    assert board.data["train_loss"][0].y > 0


def test_8_2_vgg11_layer_summary():
    outs = run_notebook("ch8_2_vgg.py")
    rows = shapes(outs[3].stdout)
    assert rows[:5] == [("Sequential", [1, 64, 112, 112]), ("Sequential", [1, 128, 56, 56]),
                        ("Sequential", [1, 256, 28, 28]), ("Sequential", [1, 512, 14, 14]),
                        ("Sequential", [1, 512, 7, 7])]
    assert rows[5] == ("Flatten", [1, 25088])
    assert rows[6] == ("Linear", [1, 4096]) and rows[-1] == ("Linear", [1, 10])
    assert [name for name, _ in rows[6:]] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]


def test_8_6_resnet_and_resnext_shapes():
    outs = run_notebook("ch8_6_resnet.py")
    assert tuple(outs[2].value) == (4, 3, 6, 6)
    assert tuple(outs[3].value) == (4, 6, 3, 3)
    assert shapes(outs[7].stdout) == [
        ("Sequential", [1, 64, 24, 24]), ("Sequential", [1, 64, 24, 24]),
        ("Sequential", [1, 128, 12, 12]), ("Sequential", [1, 256, 6, 6]),
        ("Sequential", [1, 512, 3, 3]), ("Sequential", [1, 10])]
    assert tuple(outs[10].value) == (4, 32, 96, 96)
    assert tuple(outs[11].value) == (4, 32, 96, 96)  # d2l.ResNeXtBlock itself
