"""cnnlab.summary: the book's layer_summary shapes (SEEDS 7.6, 8.2, 8.6), MACs, totals, CLI."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.model_summary import summary
from cnnlab.models import create_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # small convolutions on a shared 2-core machine: one intra-op thread is faster
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def conv_macs(c_in, c_out, k, out_side, groups=1):
    """Multiply-accumulates of a conv layer: each output value sums (c_in / groups) * k * k."""
    return c_out * out_side * out_side * (c_in // groups) * k * k


def test_lenet_layer_shapes_match_seeds_7_6():
    s = cnnlab.summary(create_model("lenet"), (1, 1, 28, 28))
    assert s.layer_shapes() == [
        ("Conv2d", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2d", (1, 6, 14, 14)),
        ("Conv2d", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)), ("AvgPool2d", (1, 16, 5, 5)),
        ("Flatten", (1, 400)), ("Linear", (1, 120)), ("Sigmoid", (1, 120)),
        ("Linear", (1, 84)), ("Sigmoid", (1, 84)), ("Linear", (1, 10)),
    ]


def test_lenet_macs_params_and_memory_by_hand():
    s = summary(create_model("lenet"), (1, 1, 28, 28))
    macs = [conv_macs(1, 6, 5, 28), conv_macs(6, 16, 5, 10), 400 * 120, 120 * 84, 84 * 10]
    assert [r.macs for r in s.rows if r.type in ("Conv2d", "Linear")] == macs
    assert all(r.macs == 0 for r in s.rows if r.type not in ("Conv2d", "Linear"))
    assert s.total_macs == sum(macs)
    assert s.total_params == s.trainable_params == 61_706
    assert sum(r.params for r in s.rows) == 61_706
    # every leaf output, float32: conv+sigmoid, pool, conv+sigmoid, pool, flatten, 5 dense
    values = (2 * 6 * 28 * 28 + 6 * 14 * 14 + 2 * 16 * 10 * 10 + 16 * 5 * 5 + 400
              + 2 * 120 + 2 * 84 + 10)
    assert s.activation_bytes == 4 * values
    assert s.param_bytes == 4 * 61_706
    # MACs count the whole batch
    assert summary(create_model("lenet"), (3, 1, 28, 28)).total_macs == 3 * sum(macs)


def test_vgg11_block_shapes_match_seeds_8_2():
    with torch.device("meta"):  # 129 M parameters and 7.5 GMACs: shapes only
        net = create_model("vgg11")
    s = summary(net, (1, 1, 224, 224))
    shapes = s.layer_shapes()
    assert shapes[:7] == [
        ("VGGBlock", (1, 64, 112, 112)), ("VGGBlock", (1, 128, 56, 56)),
        ("VGGBlock", (1, 256, 28, 28)), ("VGGBlock", (1, 512, 14, 14)),
        ("VGGBlock", (1, 512, 7, 7)), ("Flatten", (1, 25088)), ("Linear", (1, 4096)),
    ]
    assert shapes[-1] == ("Linear", (1, 10))
    assert s.total_params == 128_806_154
    convs = [(1, 64, 112 * 2), (64, 128, 56 * 2), (128, 256, 28 * 2), (256, 256, 28 * 2),
             (256, 512, 14 * 2), (512, 512, 14 * 2), (512, 512, 7 * 2), (512, 512, 7 * 2)]
    want = (sum(conv_macs(i, o, 3, side) for i, o, side in convs)
            + 25088 * 4096 + 4096 * 4096 + 4096 * 10)
    assert s.total_macs == want


def test_resnet18_stage_shapes_match_seeds_8_6():
    s = summary(create_model("resnet18"), (1, 1, 96, 96))
    assert [shape for _, shape in s.layer_shapes()] == [
        (1, 64, 24, 24), (1, 64, 24, 24), (1, 128, 12, 12), (1, 256, 6, 6), (1, 512, 3, 3),
        (1, 10)]
    assert [r.name for r in s.rows] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert s.total_params == 11_178_378


def test_depth_expands_nested_modules_and_sums_them():
    s = summary(create_model("resnet18"), (1, 1, 96, 96), depth=3)
    names = [r.name for r in s.rows]
    assert names[:2] == ["stem", "stem.conv"]
    assert "stage2.0" in names and "stage2.0.conv3" in names
    rows = {r.name: r for r in s.rows}
    assert rows["stage2.0.conv3"].output_shape == (1, 128, 12, 12)  # the 1x1 shortcut
    block = [r for r in s.rows if r.name.startswith("stage2.0.")]
    assert rows["stage2.0"].macs == sum(r.macs for r in block) > 0
    assert rows["stage2"].macs == rows["stage2.0"].macs + rows["stage2.1"].macs
    assert s.total_macs == summary(create_model("resnet18"), (1, 1, 96, 96)).total_macs
    assert [r.name for r in s.expand(1).rows] == ["stem", "stage1", "stage2", "stage3",
                                                  "stage4", "head"]
    text = str(s)
    assert "  stage2.0.conv1 (Conv2d)" in text and "Total params: 11,178,378" in text


def test_grouped_conv_macs_and_plain_sequential():
    # the book's LeNet is a plain Sequential: its rows are the children "0", "1", ...
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.ReLU(),
                        nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 25, 3))
    s = summary(net, (2, 8, 5, 5))
    assert [r.name for r in s.rows] == ["0", "1", "2", "3", "4"]
    assert [r.macs for r in s.rows] == [2 * conv_macs(8, 8, 3, 5, groups=4), 0,
                                        2 * conv_macs(8, 4, 1, 5), 0, 2 * 100 * 3]
    assert s.rows[0].params == 8 * 2 * 9 + 8


def test_trainable_counts_bn_batch_of_one_and_mode_restored():
    net = create_model("lenet-bn")
    net.conv1.weight.requires_grad_(False)
    s = summary(net, (1, 1, 28, 28))  # BatchNorm1d on one example works in eval mode
    assert s.total_params - s.trainable_params == net.conv1.weight.numel()
    assert net.training
    assert s.layer_shapes()[1] == ("BatchNorm2d", (1, 6, 24, 24))  # book 8.5: no padding


def test_bare_layer_and_bad_arguments():
    s = summary(nn.Conv2d(1, 2, 3), (1, 1, 5, 5))
    assert len(s.rows) == 1 and s.rows[0].output_shape == (1, 2, 3, 3)
    assert s.total_macs == conv_macs(1, 2, 3, 3)
    with pytest.raises(ConfigError, match="depth"):
        summary(nn.ReLU(), (1, 1), depth=0)
    with pytest.raises(ConfigError, match="input_shape"):
        summary(nn.ReLU(), (1, 0))


def test_cli_summary(capsys):
    assert main(["summary", "resnet18", "--input", "1,1,96,96"]) == 0
    out = capsys.readouterr().out
    assert "stage4 (Sequential)" in out and "[1, 512, 3, 3]" in out
    assert "Total params: 11,178,378" in out
    assert main(["summary", "lenet", "--depth", "2", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    assert "fc3 (Linear)" in out and "[1, 5]" in out and "[1, 6, 28, 28]" in out
    assert main(["summary", "vgg11-narrow", "--input", "1,3,64,64"]) == 0
    assert "[1, 128, 2, 2]" in capsys.readouterr().out
    assert main(["summary", "alexnet", "--input", "1,1,28,28"]) == 2
    err = capsys.readouterr().err
    assert "at least 65x65, got 28x28; use the book's 224x224" in err
    assert main(["summary", "lenet", "--input", "1,28,28"]) == 2
    assert "B,C,H,W" in capsys.readouterr().err
