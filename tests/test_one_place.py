"""One source of truth per idea: size formula, dataset and augmentation names, error names."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.cli import build_parser, main
from cnnlab.cli._common import cli_flags
from cnnlab.data import DATASET_NAMES, DataModule, parse_augment
from cnnlab.errors import ConfigError
from cnnlab.models._common import conv_out
from cnnlab.ops.shape import output_shape, output_side
from cnnlab.shapes import explain
from cnnlab.train.config import DATASETS, TrainConfig


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 7), p=st.integers(0, 3), s=st.integers(1, 4),
       d=st.integers(1, 3))
def test_every_size_helper_is_the_ops_formula_and_matches_torch(n, k, p, s, d):
    side = output_side(n, k, p, s, d)
    if d == 1:
        assert conv_out(n, k, stride=s, padding=p) == side
    if side < 1:
        with pytest.raises(ConfigError):
            output_shape(n, k, p, s, d)
        with pytest.raises(ConfigError):
            explain(n, k, padding=p, stride=s, dilation=d)
        return
    conv = torch.nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    torch_side = conv(torch.zeros(1, 1, n, n)).shape[-1]
    assert output_shape(n, k, p, s, d) == (side, side) == (torch_side, torch_side)
    assert explain(n, k, padding=p, stride=s, dilation=d).output_size == (side, side)
    if 2 * p <= k:  # PyTorch's pooling limit; ceil_mode as in nn.MaxPool2d
        pool = torch.nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=True)
        assert output_side(n, k, p, s, d, ceil_mode=True) == pool(torch.zeros(1, 1, n, n)).shape[-1]


def test_dataset_names_live_in_one_tuple():
    assert DATASETS is DATASET_NAMES
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    (choices,) = [a.choices for a in train._actions if a.dest == "dataset"]
    assert tuple(choices) == DATASET_NAMES


@pytest.mark.parametrize("text", ["crop,flip", "crop+flip", " Crop + flip ", "flip,crop,crop"])
def test_augment_is_parsed_once_the_same_way_for_config_and_data(text):
    assert sorted(parse_augment(text)) == ["crop", "flip"]
    TrainConfig(augment=text).validate()
    dm = DataModule("synthetic", batch_size=8, num_train=16, num_val=8, augment=text)
    assert sorted(dm.augment) == ["crop", "flip"]


def test_unknown_augment_is_the_same_error_for_config_and_data():
    with pytest.raises(ConfigError, match=r"unknown augmentation 'rotate'.*augment='crop\+flip'"):
        TrainConfig(augment="crop+rotate").validate()
    with pytest.raises(ConfigError, match=r"unknown augmentation 'rotate'"):
        DataModule("synthetic", num_train=16, num_val=8, augment="crop,rotate")


def test_cli_rewrites_parameter_names_into_its_flags():
    parser = build_parser()
    msg = "pass resize=224 and batch_size=64 or less, augment='crop+flip', out_dir=; keep x=1"
    assert cli_flags(msg, parser, ["train", "lenet"]) == (
        "pass --resize 224 and --batch-size 64 or less, --augment crop+flip, --out; keep x=1")
    assert cli_flags("pass a larger input_size=", parser, ["shape"]) == "pass a larger --input"


def test_library_error_names_the_parameter_and_cli_the_flag(capsys):
    from cnnlab.train.resolve import resolve_config

    with pytest.raises(ConfigError, match=r"got resize=28; pass resize=65 ") as info:
        resolve_config(TrainConfig(model="alexnet", resize=28))
    assert "--" not in str(info.value)
    assert main(["train", "alexnet", "--dataset", "synthetic", "--resize", "28"]) == 2
    err = capsys.readouterr().err
    assert "got --resize 28; pass --resize 65" in err and "resize=" not in err
