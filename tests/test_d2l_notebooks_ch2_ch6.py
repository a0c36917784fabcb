"""Notebook cells of d2l 1.0.3's chapters 2 and 6 (``from cnnlab import d2l``) and of
d2l 0.17's chapters 4 and 5 (``from cnnlab import d2l017 as d2l``), run top to bottom.

tests/notebooks/ch2_*.py, ch6_*.py, v017_ch4_*.py and v017_ch5_*.py are cells written
for cnnlab that make those chapters' calls. Run under the real d2l with only the
import line changed, their non-training cells print the same text (checked outside
the suite, see docs/d2l.md); the values asserted here are the ones both print. The
training cells run shortened (CNNLAB_D2L_MAX_EPOCHS=1, CNNLAB_D2L_LIMIT_BATCHES=2).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cnnlab._d2l import core
from cnnlab._d2l import trainer as d2l_trainer
from cnnlab.data import is_available
from test_d2l_notebooks import _isolate, run_notebook  # noqa: F401 - the autouse fixture

HAVE_FMNIST = is_available("fashion-mnist")


@pytest.fixture(autouse=True)
def _restore_classes():
    """Chapter 6's cells put methods on d2l.Module and d2l.Trainer: take them off again."""
    classes = (core.Module, d2l_trainer.Trainer)
    saved = [dict(vars(c)) for c in classes]
    yield
    for c, before in zip(classes, saved):
        for k in set(vars(c)) - set(before):
            delattr(c, k)
        for k, v in before.items():
            if k not in ("__dict__", "__weakref__") and vars(c).get(k) is not v:
                setattr(c, k, v)


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def test_2_preliminaries_top_to_bottom():
    outs = run_notebook("ch2_preliminaries.py")
    assert outs[1].value == (10, torch.Size([10]), torch.Size([2, 5]), torch.Size([2, 3, 1]),
                             T(4.0))
    grid, _, _, same_id, a, kind, item = outs[3].value
    assert torch.equal(grid, torch.arange(4).reshape(4, 1) + torch.arange(3))
    assert same_id and kind == "ndarray" and item == 2.5
    assert torch.equal(a, T([[20, 5, -1], [10, 40, 10]]))
    assert torch.equal(outs[4].value[1], torch.arange(6).reshape(3, 2)) and outs[4].value[3] == 10
    assert torch.equal(outs[6].value[2], T([[8, 8, 14], [26, 26, 50]]))
    slopes = [float(s) for s in re.findall(r"slope ([\d.]+)", outs[7].stdout)]
    assert slopes == [1.31, 1.0301, 1.003, 1.0003]
    # d2l.plot / set_axes: labels, legend, curves and scales as the real d2l leaves them
    assert outs[8].value == ("x", "g(x)", ["g(x)", "tangent at x=1"], 2)
    assert outs[9].value == ("log", (0.0, 5.0), (1.0, 30.0), "i squared", 1)
    first, grad, ok = outs[10].value
    assert torch.equal(first, T([0, 6, 12, 18])) and torch.equal(grad, T([0, 3, 12, 27])) and ok
    assert outs[11].value[1:] == (True, True, False)
    assert torch.equal(outs[12].value[1], T([0.0625] * 3))
    # Multinomial draws for seed 0: the real d2l's run prints the same counts
    assert torch.equal(outs[13].value[0], T([159, 176, 165, 175, 168, 157]))
    assert outs[14].value[1] == 7  # six estimate curves and the 1/6 line
    assert outs[15].value == (True, ["Bernoulli"])
    assert outs[16].stdout.startswith("Help on built-in function ones")


def test_2_2_preprocessing_with_pandas():
    pytest.importorskip("pandas", reason="section 2.2 reads its CSV file with pandas")
    outs = run_notebook("ch2_2_preprocessing.py")
    assert outs[1].stdout.splitlines()[0].split() == ["Gears", "Frame", "Price"]
    assert "Frame_nan" in outs[2].stdout
    X, y, dtype, size = outs[3].value
    assert torch.equal(X, torch.tensor([[21.0, 0, 1, 0], [14, 1, 0, 0], [7, 0, 0, 1],
                                        [14, 0, 0, 1]], dtype=torch.float64))
    assert y.tolist() == [310, 455, 120, 199] and dtype == torch.float64 and size == 16


def test_6_builders_guide_top_to_bottom(capped):
    ns: dict = {}
    outs = run_notebook("ch6_builders_guide.py", run_training=True, ns=ns)
    assert outs[1].value == torch.Size([3, 4])
    assert outs[2].value == (torch.Size([3, 4]), torch.Size([3, 2]))
    assert outs[3].value == (torch.Size([]), True)
    keys, bias_type, bias_shape, no_grad, named = outs[4].value
    assert keys == ["weight", "bias"] and bias_type == "Parameter" and no_grad
    assert named[0] == ("0.weight", torch.Size([8, 12])) and len(named) == 4
    assert outs[5].value == (torch.tensor(True), 6)  # 3 layers: the shared one counted once
    assert torch.equal(outs[6].value[1], torch.full((12,), 3.0)) and outs[6].value[2]
    before, after, w_shape, total = outs[7].value
    assert before == "UninitializedParameter" and after[0] == torch.Size([8, 5])
    assert w_shape == torch.Size([4, 6]) and total == 36.0  # d2l.Module.apply_init + init
    assert torch.equal(outs[8].value[0], T([-2, -1, 0, 3])) and outs[8].value[1]
    assert torch.equal(outs[9].value[2]["v"], torch.arange(5)) and outs[10].value is True
    cpu, cuda0, cuda1 = torch.device("cpu"), torch.device("cuda", 0), torch.device("cuda", 1)
    if not torch.cuda.is_available():
        assert outs[11].value == (cpu, cuda0, cuda1, 0, cpu, cpu, [])
        assert outs[12].value == (cpu, cpu, cpu)
        assert outs[13].value == ([], 2)  # the chapter's own Trainer.__init__
    # the chapter's Trainer methods drive d2l.Trainer.fit (the book's loop, capped)
    trainer, model = ns["trainer"], ns["model"]
    assert trainer.max_epochs == 2 and trainer.model is model
    assert outs[14].value[0] == torch.Size([1, 2])
    assert "train_loss" in model.board.data and Path("d2l-board.png").stat().st_size > 0


def test_017_5_computation_top_to_bottom():
    outs = run_notebook("v017_ch5_computation.py")
    assert outs[1].value == torch.Size([2, 3])
    assert outs[2].value == (torch.Size([2, 3]), torch.Size([2, 5]), torch.Size([]))
    assert outs[3].value[0] == ["weight", "bias"] and len(outs[3].value[2]) == 4
    w, b, small, tied = outs[4].value
    assert torch.equal(w, torch.full((8,), 0.5)) and torch.equal(b, T([0])) and small and tied
    assert torch.equal(outs[5].value[0], T([-3, -1, 4]))
    assert outs[6].value[2] is True
    if not torch.cuda.is_available():
        cpu = torch.device("cpu")
        assert outs[7].value == (cpu, cpu, cpu, [cpu], 0)  # 0.17: [cpu()] without a GPU
        assert outs[8].value == (cpu, cpu, cpu)


def _kaggle_cell_ok(out, ns) -> None:
    # without a network: cnnlab's DataNotFoundError (the real d2l: requests' ConnectionError)
    assert ns["outcome"] in ("DataNotFoundError", "downloaded")
    if ns["outcome"] == "DataNotFoundError":
        assert out.stdout.startswith("Downloading ") and "could not download" in out.stdout
    assert out.value == (True, True)


@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_FMNIST, reason="real Fashion-MNIST files absent")
def test_017_4_mlp_cells_without_training():
    ns: dict = {}
    outs = run_notebook("v017_ch4_mlp.py", ns=ns)
    assert outs[1].value[1] == pytest.approx(0.25)
    assert outs[2].value[0] == torch.Size([256, 10])
    assert torch.allclose(outs[5].value[1][0], T([1, -1.4544, 1.0576, -0.5127]), atol=1e-4)
    # evaluate_loss sums each batch in float32 and adds the sums in float64, as d2l does
    assert outs[6].value[0] == pytest.approx(5.71490779876709, rel=1e-12)
    assert outs[10].value == (torch.Size([20, 200]), T(12.5))
    assert outs[13].value[2] is True and torch.equal(outs[13].value[1], torch.zeros(2, 6))
    assert outs[14].value == torch.Size([3, 10])
    assert outs[17].value == (True, True)
    _kaggle_cell_ok(outs[18], ns)


@pytest.mark.slow  # five shortened trainings and three polynomial fits (~15 s on 2 cores)
@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_FMNIST, reason="real Fashion-MNIST files absent")
def test_017_4_mlp_top_to_bottom_with_training(capped):
    ns: dict = {}
    outs = run_notebook("v017_ch4_mlp.py", run_training=True, ns=ns)
    assert "d2l animator:" in outs[3].stdout + outs[4].stdout
    weights = re.findall(r"weight: \[\[([^\]]+)\]\]", outs[8].stdout)
    assert len(weights) == 1 and len(weights[0].split()) == 4
    assert outs[8].value[0] == 21 and outs[8].value[1]  # points at epochs 1, 20, ..., 400
    assert len(re.findall(r"weight: ", outs[9].stdout)) == 2
    norms = re.findall(r"L2 norm of w: ([\d.]+)", outs[11].stdout)
    assert len(norms) == 2 and outs[11].value is True  # weight decay shrinks w
    assert len(re.findall(r"L2 norm of w: [\d.]+ test loss [\d.]+", outs[12].stdout)) == 2
    assert Path("d2l-animator.png").stat().st_size > 0
    _kaggle_cell_ok(outs[18], ns)
