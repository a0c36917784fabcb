"""`cnnlab train --config run.yaml`: flags override the file, every run directory's
config.yaml trains the same run again, bad files are one line naming the key."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.train import TrainConfig, load_checkpoint

TINY = ["--dataset", "synthetic", "--num-train", "128", "--batch-size", "32",
        "--limit-val-batches", "1", "--num-threads", "1", "--deterministic"]


def _config_json(run) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    cfg.pop("out_dir")
    return cfg


@pytest.mark.slow
def test_run_config_yaml_reproduces_the_run_exactly(tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["train", "lenet-modern", *TINY, "--epochs", "1", "--optimizer", "momentum",
                 "--lr", "0.03", "--augment", "crop", "--out", str(first)]) == 0
    text = (first / "config.yaml").read_text()
    assert "lr: 0.03" in text and "out_dir" not in text
    assert main(["train", "--config", str(first / "config.yaml"), "--out", str(again)]) == 0
    assert _config_json(again) == _config_json(first)
    a, b = load_checkpoint(first / "last.pt"), load_checkpoint(again / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_flags_override_the_file_and_the_file_overrides_book_values(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("model: lenet\ndataset: synthetic\nepochs: 3\nlr: 1e-3\n"
                        "batch_size: 16\nnum_train: 64\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_file), "--lr", "0.2", "--dry-run",
                 "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["model"], saved["epochs"], saved["batch_size"], saved["lr"]) == \
        ("lenet", 3, 16, 0.2)
    assert TrainConfig.from_yaml(cfg_file).lr == 0.001  # YAML 1.1 reads 1e-3 as a string


@pytest.mark.parametrize("text, words", [
    ("btach_size: 64\n", "unknown key 'btach_size' (did you mean batch_size?)"),
    ("lr: fast\n", "lr must be a number or null, got 'fast'"),
    ("epochs: 1.5\n", "epochs must be an integer or null, got 1.5"),
    ("normalize: maybe\n", "normalize must be true or false, got 'maybe'"),
    ("extra: [1, 2]\n", "extra must be a mapping"),
    ("- lr\n- 0.1\n", "must be a mapping of 'key: value' lines"),
    ("lr: [0.1\n", "is not valid YAML"),
    ("optimizer: lion\n", "optimizer must be one of sgd, momentum, adamw"),
])
def test_bad_config_files_are_one_line_naming_the_key(tmp_path, capsys, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", "lenet", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnlab: error:"), err
    assert words in err[0]
    assert not list(tmp_path.glob("runs*"))


def test_missing_config_file(tmp_path, capsys):
    assert main(["train", "lenet", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_yaml_round_trip_of_every_field():
    cfg = TrainConfig(model="resnet18", epochs=7, lr=2.5e-4, augment="crop,flip",
                      normalize=True, logger="tensorboard", extra={"arch": [[1, 64]]},
                      warmup_epochs=0.5, seed=-3)
    from cnnlab.train.configfile import parse_config

    assert TrainConfig(**parse_config(cfg.to_yaml())) == cfg
    with pytest.raises(ConfigError, match="seed must be an integer"):
        parse_config("seed: '0'\n")


def _yaml_values():
    from hypothesis import strategies as st

    words = st.sampled_from(["sgd", "fashion-mnist", "yes", "No", "null", "NULL", "on", "y",
                             "a.b", "run_1", "x/y", "nan", "Inf", "1e3", "e5", "-a", "a:b",
                             "a b", "ü", "", "~", "0x1f", "True", "1_000"])
    text = st.text(alphabet="ab1e._-/: ~#'\"yYnNoOtT", max_size=6)
    floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
        [0.1, 1e-05, 1e16, 100.0, -0.5, 0.0, -0.0, 3e-4, 1.5])
    return (st.none() | st.booleans() | st.integers(-10**20, 10**20) | floats | words | text
            | st.just({}) | st.just([]) | st.just({"a": 1}) | st.just([1, 2]))


def test_config_yaml_without_pyyaml_writes_what_pyyaml_writes():
    """config_yaml writes the values it knows itself (PyYAML's import is ~35 ms of every
    `cnnlab train`): each such line is PyYAML's own, and reads back to the value."""
    import yaml
    from hypothesis import given, settings

    from cnnlab.train.configfile import _scalar

    taken = []

    @settings(max_examples=400, deadline=None)
    @given(_yaml_values())
    def check(value):
        text = _scalar(value)
        if text is not None:
            taken.append(value)
            assert f"k: {text}\n" == yaml.safe_dump({"k": value}, sort_keys=False,
                                                    default_flow_style=False)
            assert yaml.safe_load(f"k: {text}\n") == {"k": value}

    check()
    assert taken  # the fast path was exercised
    for cfg in (TrainConfig(model="lenet"), TrainConfig(model="resnet18", lr=0.05, epochs=3,
                                                       extra={"a": [1, 2]}, data_dir="/d")):
        from cnnlab.train.configfile import HEADER, config_yaml

        data = cfg.to_dict()
        data.pop("out_dir")
        assert config_yaml(cfg) == HEADER + yaml.safe_dump(data, sort_keys=False,
                                                           default_flow_style=False)
