"""`cnnlab train MODEL --seeds 0,1`: one run per seed in <out>/seed-N, and a mean +- std
table of the final val_acc and wall time."""

from __future__ import annotations

import statistics

import pytest

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.train import TrainConfig, load_checkpoint, run_seeds
from cnnlab.train.seeds import format_table

TINY = ["--dataset", "synthetic", "--num-train", "128", "--batch-size", "32", "--epochs", "1",
        "--limit-val-batches", "2", "--num-threads", "1"]


@pytest.mark.slow
def test_cli_seeds_runs_each_seed_and_prints_mean_and_std(tmp_path, capsys):
    out = tmp_path / "seeds"
    assert main(["train", "lenet-modern", *TINY, "--seeds", "0,1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    accs = []
    for seed in (0, 1):
        state = load_checkpoint(out / f"seed-{seed}" / "last.pt")
        assert state["config"]["seed"] == seed
        accs.append(state["history"][-1]["val_acc"])
    lines = text.strip().splitlines()
    mean_line = next(line for line in lines if line.strip().startswith("mean"))
    assert f"{statistics.fmean(accs):.4f} +- {statistics.stdev(accs):.4f}" in mean_line
    assert "(2 seeds)" in mean_line
    assert (out / "seeds.csv").read_text().count("\n") == 3
    # different seeds, different runs (init, shuffle)
    a, b = (load_checkpoint(out / f"seed-{s}" / "last.pt")["model"] for s in (0, 1))
    assert any(not a[k].equal(b[k]) for k in a)


@pytest.mark.slow
def test_python_run_seeds(tmp_path, capsys):
    cfg = TrainConfig(model="lenet", dataset="synthetic", num_train=64, batch_size=32,
                      epochs=1, limit_val_batches=1, num_threads=1, out_dir=str(tmp_path))
    result = run_seeds(cfg, [3])
    assert [r["seed"] for r in result["runs"]] == [3]
    assert result["val_acc"][1] == 0.0 and result["seconds"][0] > 0
    assert (tmp_path / "seed-3" / "curves.png").exists()


def test_table_format():
    rows = [{"seed": 0, "val_acc": 0.5, "seconds": 2.0},
            {"seed": 1, "val_acc": 0.7, "seconds": 4.0}]
    assert format_table(rows).splitlines()[-1].split() == [
        "mean", "0.6000", "+-", "0.1414", "3.0", "+-", "1.4", "s", "(2", "seeds)"]


@pytest.mark.parametrize("text", ["0,0", "a", "", "1,,x"])
def test_bad_seed_lists(text, capsys):
    assert main(["train", "lenet", "--seeds", text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0]


def test_bad_seeds_in_python():
    with pytest.raises(ConfigError, match="distinct"):
        run_seeds(TrainConfig(model="lenet"), [1, 1])
    with pytest.raises(ConfigError, match="list of integers"):
        run_seeds(TrainConfig(model="lenet"), ["0"])
