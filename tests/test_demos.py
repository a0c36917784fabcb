"""The chapter-7 demos (cnnlab.demos, `cnnlab demo`): their numbers against SEEDS 7.2-7.5."""

from __future__ import annotations

import pytest

from cnnlab.cli import main
from cnnlab.demos import DEMOS, list_demos, run_demo
from cnnlab.errors import ConfigError


def test_edge_matches_seeds_7_2():
    v = run_demo("edge").values
    # SEEDS 7.2: 1 in column 1, -1 in column 5 of every row (6x7), zeros elsewhere
    assert v["Y"] == [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6
    assert v["transposed_shape"] == (8, 5)
    assert v["transposed_abs_sum"] == 0.0


def test_learn_kernel_falls_and_finds_kernel():
    v = run_demo("learn-kernel").values
    losses = v["losses"]
    assert len(losses) == 5  # printed every 2 of 10 iterations
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] / 30
    (w1, w2), = v["kernel"]
    assert w1 == pytest.approx(1.0, abs=0.15) and w2 == pytest.approx(-1.0, abs=0.15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_learn_kernel_other_seeds(seed):
    r = run_demo("learn-kernel", seed=seed)
    assert r.lines[0].startswith("epoch 2, loss ")


def test_learn_kernel_claim_can_fail():
    with pytest.raises(AssertionError, match="demo claim failed"):
        run_demo("learn-kernel", lr=0.0)


def test_diagonal():
    v = run_demo("diagonal", size=5).values
    assert v["Y"] == [[1.0 if i == j else 0.0 for j in range(4)] for i in range(5)]


def test_stacked_kernel_sizes():
    for k1, k2 in [(2, 2), (3, 5), (1, 4)]:
        v = run_demo("stacked", k1=k1, k2=k2).values
        assert v["kernel_shape"] == (k1 + k2 - 1, k1 + k2 - 1)
        assert v["max_abs_diff"] < 1e-10


def test_maxpool_counterexample():
    v = run_demo("maxpool-not-linear").values
    assert (v["pool_sum"], v["sum_pools"]) == (1.0, 2.0)
    assert (v["pool_neg"], v["neg_pool"]) == (0.0, -1.0)
    assert str(v["pool_neg"]) == "0.0"  # +0, not IEEE -0.0
    assert v["avgpool_vs_conv"] < 1e-6


def test_no_report_prints_negative_zero():
    import re

    for name, _ in list_demos():
        report = str(run_demo(name))
        assert not re.search(r"(?<![\w.])-0(?:\.0*)?(?![\d.e])", report), (name, report)


def test_conv1x1_matmul():
    assert run_demo("conv1x1-matmul").values["sum_abs_diff"] < 1e-6


def test_equivariance_numbers():
    v = run_demo("equivariance").values
    assert v["equivariance_error"] < 1e-5
    c = v["relative_change"]
    assert c["conv + maxpool 4x4"] < c["conv"]
    assert c["conv + global max"] < 1e-6 < c["conv"]


def test_second_derivative_and_blur():
    v = run_demo("second-derivative").values
    assert v["d2_parabola"] == [2.0] * 6 and v["laplacian_bowl"] == 4.0
    b = run_demo("blur").values
    assert b["box_noise_std_ratio"] == pytest.approx(1 / 3, rel=0.1)
    assert b["blurred_edge_row"] == pytest.approx([2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3])


def test_list_and_unknown():
    names = [n for n, _ in list_demos()]
    assert {"edge", "learn-kernel", "diagonal", "stacked", "maxpool-not-linear",
            "conv1x1-matmul", "equivariance"} <= set(names)
    with pytest.raises(ConfigError, match="unknown demo"):
        run_demo("nope")


def test_cli(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in DEMOS)
    assert main(["demo", "learn-kernel", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch ") == 5 and "learned kernel" in out
    assert main(["demo", "all"]) == 0
    headers = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("== ")]
    assert len(headers) == len(DEMOS)
    assert main(["demo", "nope"]) == 2
    assert "unknown demo" in capsys.readouterr().err
