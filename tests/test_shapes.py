"""Output sizes and receptive fields (cnnlab.shapes, `cnnlab shape`) against hand computation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.shapes import explain, explain_model

# SEEDS 7.3: 8x8 input, (kernel, padding, stride) -> output
SEEDS_7_3 = [
    (3, 1, 1, (8, 8)),
    ((5, 3), (2, 1), 1, (8, 8)),
    (3, 1, 2, (4, 4)),
    ((3, 5), (0, 1), (3, 4), (2, 2)),
]


@pytest.mark.parametrize("kernel,padding,stride,expected", SEEDS_7_3)
def test_seeds_7_3_table(kernel, padding, stride, expected):
    assert explain((8, 8), kernel, padding=padding, stride=stride).output_size == expected


@pytest.mark.parametrize("kernel,padding,stride,expected", SEEDS_7_3)
def test_seeds_7_3_table_matches_torch(kernel, padding, stride, expected):
    conv = nn.Conv2d(1, 1, kernel_size=kernel, padding=padding, stride=stride)
    assert tuple(conv(torch.zeros(1, 1, 8, 8)).shape[-2:]) == expected


def test_formula_filled_in_for_last_row():
    # by hand: h: floor((8 + 0 - 2 - 1)/3) + 1 = floor(5/3) + 1 = 2;
    #          w: floor((8 + 2 - 4 - 1)/4) + 1 = floor(5/4) + 1 = 2
    e = explain((8, 8), (3, 5), padding=(0, 1), stride=(3, 4))
    h, w = e.dims
    assert (h.n, h.k, h.p, h.s, h.d, h.numerator, h.out) == (8, 3, 0, 3, 1, 5, 2)
    assert (w.n, w.k, w.p, w.s, w.d, w.numerator, w.out) == (8, 5, 1, 4, 1, 5, 2)
    assert "floor(5/3) + 1 = 2" in h.formula
    assert "floor(5/4) + 1 = 2" in w.formula
    assert str(e).splitlines()[-1].startswith("output: 2x2")


def test_dilation():
    # k=3, d=2 spans 5 pixels: floor((10 + 0 - 4 - 1)/1) + 1 = 6
    assert explain(10, 3, dilation=2).output_size == (6, 6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20), k=st.integers(1, 7), p=st.integers(0, 3), s=st.integers(1, 4),
       d=st.integers(1, 3))
def test_matches_torch_conv(n, k, p, s, d):
    if d * (k - 1) + 1 > n + 2 * p:
        with pytest.raises(ConfigError, match="smaller kernel or more padding"):
            explain(n, k, padding=p, stride=s, dilation=d)
        return
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    out = conv(torch.zeros(1, 1, n, n)).shape[-2:]
    assert explain(n, k, padding=p, stride=s, dilation=d).output_size == tuple(out)


def test_matches_ops_output_shape():
    ops = pytest.importorskip("cnnlab.ops")
    for kernel, padding, stride, _ in SEEDS_7_3:
        assert ops.output_shape((8, 8), kernel, padding, stride) == \
            explain((8, 8), kernel, padding, stride).output_size


@pytest.mark.parametrize("bad", [dict(kernel_size=0), dict(kernel_size=(1, 2, 3)),
                                 dict(kernel_size=3, padding=-1), dict(kernel_size=3, stride=0)])
def test_bad_arguments(bad):
    with pytest.raises(ConfigError):
        explain(8, **bad)


def _rows(model, size):
    """(type, output HxW, rf, jump, start) of the conv/pool rows, h dimension."""
    return [(r.type, r.output_shape[-1], r.rf[0], r.jump[0], r.start[0])
            for r in explain_model(model, size).rows if r.spatial]


# LeNet at 28x28, by hand (rf_0 = 1, jump_0 = 1, start_0 = 0):
#  conv 5x5 p2: n = 28+4-4-1+1 = 28; rf = 1+4*1 = 5; jump 1; start = 0 + (2-2)*1 = 0
#  pool 2 s2:   n = 14;  rf = 5+1*1 = 6;  jump 2; start = 0 + 0.5*1 = 0.5
#  conv 5x5:    n = 10;  rf = 6+4*2 = 14; jump 2; start = 0.5 + 2*2 = 4.5
#  pool 2 s2:   n = 5;   rf = 14+1*2 = 16; jump 4; start = 4.5 + 0.5*2 = 5.5
LENET_28 = [(6, 28, 5, 1, 0.0), (6, 14, 6, 2, 0.5), (16, 10, 14, 2, 4.5), (16, 5, 16, 4, 5.5)]


def _lenet_like():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                         nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
                         nn.Linear(400, 10))


def test_lenet_by_hand_on_module():
    got = [(t, n, rf, j, s) for t, n, rf, j, s in _rows(_lenet_like(), (28, 28))]
    assert [g[1:] for g in got] == [e[1:] for e in LENET_28]
    result = explain_model(_lenet_like(), (28, 28))
    assert not result.branching
    assert result.rows[-1].rf is None  # the Linear sees the whole input


def test_lenet_registry_name():
    pytest.importorskip("cnnlab.models")
    result = explain_model("lenet", (28, 28))
    spatial = [r for r in result.rows if r.spatial]
    assert [(r.output_shape[0], r.output_shape[-1], r.rf[0], r.jump[0], r.start[0])
            for r in spatial] == LENET_28
    assert [r.type for r in spatial] == ["Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d"]
    # every layer is listed, in forward order, with the book's layer_summary shapes
    assert [r.output_shape for r in result.rows][:6] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]


# ResNet-18 (d2l 8.6) at 96x96, by hand along the main path:
#  stem conv 7x7 s2 p3: n = floor((96+6-6-1)/2)+1 = 48; rf 7; jump 2
#  maxpool 3 s2 p1:     n = floor((48+2-2-1)/2)+1 = 24; rf 7+2*2 = 11; jump 4
#  stage 1, four 3x3 convs: each adds 2*4 = 8: rf 43 at 24x24, jump 4
#  stage 2: conv s2 -> 12, rf 43+2*4 = 51, jump 8; then +16 each: 67, 83, 99
#  stage 3: conv s2 -> 6,  rf 99+2*8 = 115, jump 16; then +32 each: 147, 179, 211
#  stage 4: conv s2 -> 3,  rf 211+2*16 = 243, jump 32; then +64 each: 307, 371, 435
#  global average pool over 3x3 units 32 apart: 435 + 2*32 = 499
#  the 1x1 stride-2 shortcut of stage 2 sees the block input: rf 43, jump 8
RESNET18_MAIN = [(48, 7, 2), (24, 11, 4), (24, 19, 4), (24, 27, 4), (24, 35, 4), (24, 43, 4),
                 (12, 51, 8), (12, 67, 8), (12, 83, 8), (12, 99, 8),
                 (6, 115, 16), (6, 147, 16), (6, 179, 16), (6, 211, 16),
                 (3, 243, 32), (3, 307, 32), (3, 371, 32), (3, 435, 32), (1, 499, 96)]


def test_resnet18_at_96_by_hand():
    pytest.importorskip("cnnlab.models")
    result = explain_model("resnet18", (96, 96))
    spatial = [r for r in result.rows if r.spatial]
    main_path = [(r.output_shape[-1], r.rf[0], r.jump[0]) for r in spatial if not r.branch]
    shortcuts = [(r.output_shape[-1], r.rf[0], r.jump[0]) for r in spatial if r.branch]
    assert main_path == RESNET18_MAIN
    assert shortcuts == [(12, 43, 8), (6, 99, 16), (3, 211, 32)]
    assert result.branching and result.notes
    assert result.final.rf == (499, 499)


def test_too_small_input_is_config_error():
    with pytest.raises(ConfigError):
        explain_model(_lenet_like(), (4, 4))


def test_cli_single_layer(capsys):
    assert main(["shape", "--input", "8,8", "--kernel", "3,5", "--padding", "0,1",
                 "--stride", "3,4"]) == 0
    out = capsys.readouterr().out
    assert "floor(5/3) + 1 = 2" in out and "floor(5/4) + 1 = 2" in out
    assert "output: 2x2" in out


@pytest.mark.parametrize("kernel,padding,stride,expected", SEEDS_7_3)
def test_cli_seeds_table(capsys, kernel, padding, stride, expected):
    def arg(v):
        return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
    assert main(["shape", "--input", "8,8", "--kernel", arg(kernel), "--padding", arg(padding),
                 "--stride", arg(stride)]) == 0
    assert f"output: {expected[0]}x{expected[1]}" in capsys.readouterr().out


def test_cli_model(capsys):
    pytest.importorskip("cnnlab.models")
    assert main(["shape", "--model", "lenet", "--input", "28,28"]) == 0
    out = capsys.readouterr().out
    assert "r_out = r_in + (k-1)*d*jump_in" in out
    assert "receptive field of one unit of pool2 (AvgPool2d): 16 input pixels, jump 4" in out
    # the recurrence filled in for the second conv (by hand above: rf 6 + 4*2 = 14)
    assert ("conv2: n = floor((14 + 2*0 - 1*(5-1) - 1)/1) + 1 = 10; rf = 6 + (5-1)*1*2 = 14; "
            "jump = 2*1 = 2; start = 0.5 + ((5-1)/2*1 - 0)*2 = 4.5") in out


def test_cli_model_spatial_only(capsys):
    pytest.importorskip("cnnlab.models")
    assert main(["shape", "--model", "resnet18", "--input", "96", "--spatial-only"]) == 0
    out = capsys.readouterr().out
    assert "BatchNorm2d" not in out and "(branch) stage2.0" in out
    assert "499 input pixels, jump 96" in out and "note: the network branches" in out


def test_cli_errors(capsys):
    assert main(["shape", "--input", "4", "--kernel", "5"]) == 2
    assert "smaller kernel" in capsys.readouterr().err
    assert main(["shape", "--kernel", "5"]) == 2
    assert main(["shape", "--input", "4,4,4", "--kernel", "3"]) == 2


def test_scratch_layers_give_the_same_fields():
    pytest.importorskip("cnnlab.models")
    from cnnlab.models import create_model

    rows = _rows(create_model("lenet", scratch=True), (28, 28))
    assert [r[0] for r in rows] == ["ScratchConv2d", "ScratchAvgPool2d"] * 2
    assert [r[1:] for r in rows] == [e[1:] for e in LENET_28]
