"""The functions behind the explore views (no browser; most need no Gradio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.explore import conv_view as cv
from cnnlab.explore import inputs
from cnnlab.explore import model_view as mv
from cnnlab.explore import runs_view as rv
from cnnlab.explore.paths import Library

# ------------------------------------------------------------------ Convolution view


def test_the_7_3_example_is_2x2():
    r = cv.convolve(torch.rand(8, 8), torch.ones(3, 5), (0, 1), (3, 4))
    assert r.size_text == "2x2" and tuple(r.output.shape) == (2, 2)
    text = cv.formula_text(r)
    assert "2 × 2" in text and "floor(5/4) + 1 = 2" in text


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 14), kh=st.integers(1, 4), kw=st.integers(1, 4), p=st.integers(0, 2),
       sh=st.integers(1, 3), sw=st.integers(1, 3), d=st.integers(1, 2), seed=st.integers(0, 99))
def test_output_and_every_window_agree_with_pytorch(n, kh, kw, p, sh, sw, d, seed):
    g = torch.Generator().manual_seed(seed)
    X, K = torch.rand(n, n, generator=g), torch.randn(kh, kw, generator=g)
    if n + 2 * p < d * (max(kh, kw) - 1) + 1:
        with pytest.raises(ConfigError):
            cv.convolve(X, K, (p, p), (sh, sw), (d, d))
        return
    r = cv.convolve(X, K, (p, p), (sh, sw), (d, d))
    ref = F.conv2d(X[None, None], K[None, None], stride=(sh, sw), padding=p, dilation=d)[0, 0]
    torch.testing.assert_close(r.output, ref)
    for i in range(r.output.numel()):  # the highlighted patch is what the cell is made of
        w = cv.window(r, i)
        assert abs(float((w.patch * K).sum()) - w.value) < 1e-4
        assert w.rows[0] == w.row * sh - p and w.cols[-1] == w.col * sw - p + (kw - 1) * d


def test_pooling_matches_pytorch_and_explains_its_size():
    Y = torch.randn(7, 9)
    out, text = cv.pool(Y, "max", 2, 2)
    torch.testing.assert_close(out, F.max_pool2d(Y[None, None], 2, 2)[0, 0])
    out, text = cv.pool(Y, "avg", 3, 2)
    torch.testing.assert_close(out, F.avg_pool2d(Y[None, None], 3, 2)[0, 0])
    assert "output: 3x4" in text
    with pytest.raises(ConfigError):
        cv.pool(Y, "median", 2, 2)


def test_kernel_grid_parsing_and_resizing():
    assert cv.parse_kernel([[1, None], ["", "2.5"]]).tolist() == [[1.0, 0.0], [0.0, 2.5]]
    with pytest.raises(ConfigError, match=r"cell \(0, 1\)"):
        cv.parse_kernel([[1, "x"]])
    with pytest.raises(ConfigError, match="empty"):
        cv.parse_kernel([["", ""]])
    with pytest.raises(ConfigError):
        cv.parse_kernel([[1] * 12])
    K = cv.resize_kernel(torch.ones(2, 2), 3, 1)
    assert K.tolist() == [[1.0], [1.0], [0.0]]
    for rows in cv.KERNELS.values():  # every preset is a valid grid
        assert cv.parse_kernel(rows).shape == (len(rows), len(rows[0]))


def test_one_by_one_is_a_matrix_product():
    r = cv.one_by_one(torch.rand(5, 5), [[1, 2, 3], [0, -1, 0.5]])
    X, K = r["X"], r["K"]
    expected = (K @ X.reshape(3, -1)).reshape(2, 5, 5)
    torch.testing.assert_close(r["conv"], expected)
    assert r["max_diff"] < 1e-5
    with pytest.raises(ConfigError, match="3 columns"):
        cv.one_by_one(torch.rand(5, 5), [[1, 2]])


def test_step_pictures_mark_the_window_and_the_cell():
    r = cv.convolve(torch.zeros(6, 6), torch.ones(2, 2), padding=(1, 1))
    inp, out = cv.step_pictures(r, cv.window(r, 0))
    assert inp.dtype == np.uint8 and inp.ndim == 3
    orange = (inp[..., 0] > 200) & (inp[..., 1] > 80) & (inp[..., 1] < 200) & (inp[..., 2] < 90)
    crimson = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 40) & (out[..., 2] < 90)
    assert orange.any() and crimson.any()


# ------------------------------------------------------------------ inputs


def test_uploads_are_capped_in_bytes_and_pixels(tmp_path, monkeypatch):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (5000, 4000)).save(big)  # 20 megapixels, a small file
    with pytest.raises(ConfigError, match="megapixels"):
        inputs.upload_image(big)
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(ConfigError, match="MiB"):
        inputs.upload_image(big)
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 10_000)
    with pytest.raises(ValueError):
        inputs.upload_image(bad)


def test_a_drawing_on_white_reads_as_light_on_black():
    arr = np.zeros((50, 50, 4), np.uint8)
    with pytest.raises(ConfigError, match="empty"):
        inputs.drawing_image({"composite": arr})
    arr[20:30, 20:30] = (0, 0, 0, 255)  # a black square drawn on a transparent canvas
    pil, invert, _ = inputs.drawing_image({"composite": arr})
    X = inputs.grey_input(pil, 10, invert)
    assert X[5, 5] > 0.6 and X[0, 0] < 0.1


# ------------------------------------------------------------------ Model view


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def test_prediction_is_the_networks_softmax():
    m = mv.from_module(_net(), input_size=28, classes=[f"c{i}" for i in range(10)])
    X = torch.rand(1, 1, 28, 28)
    a = mv.analyze(m, X, topk=3)
    p = torch.softmax(m.net(X), dim=1)[0].detach()
    best = int(p.argmax())
    assert list(a.top)[0] == f"c{best}" and abs(a.top[f"c{best}"] - float(p[best])) < 1e-5
    assert [s.shape for s in a.stages] == [(3, 28, 28), (4, 6, 6)]
    assert "Conv2d" in m.summary_text and m.kernels.ndim == 3


def test_every_tile_maps_back_to_its_unit():
    m = mv.from_module(_net(), input_size=28, classes=[str(i) for i in range(10)])
    a = mv.analyze(m, torch.rand(1, 1, 28, 28))
    for place in a.layout:
        for t in place.tiles:
            i, j = t.h - 1, t.w // 2
            y = place.top + t.top + i * t.scale + t.scale // 2
            x = place.left + t.left + j * t.scale + t.scale // 2
            assert a.unit_at(x, y) == (place.stage, t.channel, i, j)
    assert a.unit_at(a.picture.shape[1] + 5, 0) is None


@pytest.mark.parametrize("row,col", [(0, 0), (2, 3), (5, 5)])
def test_receptive_field_box_holds_exactly_what_the_unit_depends_on(row, col):
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2),
                        nn.Conv2d(1, 1, 3, stride=2), nn.Flatten(), nn.Linear(36, 10))
    with torch.no_grad():
        for mod in (net[0], net[2]):
            mod.weight.fill_(1.0)
    m = mv.from_module(net, input_size=28, classes=[str(i) for i in range(10)])
    a = mv.analyze(m, torch.rand(1, 1, 28, 28))
    stage = a.stages[-1]
    top, left, bottom, right, text = mv.field_box(m, stage, row, col)
    X = torch.rand(1, 1, 28, 28, requires_grad=True)  # distinct values: max pool picks one
    out = net[:3](X)
    out[0, 0, row, col].backward()
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    assert not (X.grad[0, 0].abs() > 0)[~mask].any()  # nothing outside the box matters
    X2 = torch.ones(1, 1, 28, 28, requires_grad=True)  # with ties avg-like: all of it matters
    net2 = nn.Sequential(net[0], nn.AvgPool2d(2), net[2])
    net2(X2)[0, 0, row, col].backward()
    assert ((X2.grad[0, 0].abs() > 0) == mask).all()
    assert "receptive field of 8x8" in text  # 3, +1 (pool 2), +2*2 (k 3 at jump 2)


def test_model_input_is_prepared_like_predict_with_normalization():
    from PIL import Image

    m = mv.from_module(_net(), input_size=28, classes=[str(i) for i in range(10)])
    m.normalization = {"mean": [0.5], "std": [0.25]}
    X = mv.model_input(m, Image.new("L", (40, 40), 255), invert="no")
    assert X.shape == (1, 1, 28, 28) and torch.allclose(X, torch.full_like(X, 2.0))


# ------------------------------------------------------------------ paths and runs


def _run(d, rows, cfg=None):
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "config.json").write_text(json.dumps(cfg or {"model": "lenet", "lr": 0.1}))
    (d / "best.pt").write_bytes(b"")


def test_library_offers_only_what_lies_under_the_folders(tmp_path):
    _run(tmp_path / "runs" / "a", [{"epoch": 1, "val_acc": 0.5}])
    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"")
    os.symlink(secret, tmp_path / "runs" / "a" / "link.pt")
    lib = Library([tmp_path / "runs"])
    assert lib.checkpoints() == ["a/best.pt", "a/link.pt"]
    assert lib.runs() == ["a"]
    assert lib.resolve("a/best.pt") == (tmp_path / "runs" / "a" / "best.pt").resolve()
    for bad in ("../secret.pt", str(secret), "a/../../secret.pt", "a/link.pt", "", None):
        with pytest.raises(ConfigError):
            lib.resolve(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        Library([tmp_path / "nope"])
    lib2 = Library([tmp_path / "runs" / "a" / "best.pt"])  # one checkpoint given
    assert lib2.checkpoints() == [str((tmp_path / "runs" / "a" / "best.pt").resolve())]


def test_runs_table_and_curves(tmp_path):
    _run(tmp_path / "a", [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_acc": 0.6,
                           "seconds": 2.0},
                          {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "val_acc": 0.8,
                           "seconds": 2.0}])
    _run(tmp_path / "b", [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "val_acc": 0.3}],
         {"model": "lenet", "lr": 0.9})
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # being written by a live run
    runs = {"a": tmp_path / "a", "b": tmp_path / "b"}
    table = rv.table(runs)
    assert [r[0] for r in table] == ["a", "b"]
    assert table[0][3] == 2 and table[0][6] == 0.8 and table[0][-1] == 4.0
    pts = rv.curves(runs)
    assert len(pts) == 9 and {"epoch": 2.0, "value": 0.8, "series": "a: val_acc"} in pts
    assert rv.config_diff(rv.read_config(runs["a"]), rv.read_config(runs["b"])) == [
        ["lr", "0.1", "0.9"]]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "metrics.csv").write_text("epoch,val_acc\n1,0.25\n")
    assert rv.read_history(tmp_path / "c") == [{"epoch": 1.0, "val_acc": 0.25}]


# ------------------------------------------------------------------ package and command


def test_import_cnnlab_does_not_import_gradio():
    code = ("import sys, cnnlab, cnnlab.explore, cnnlab.explore.app; "
            "from cnnlab.cli import build_parser; build_parser(); "
            "assert callable(cnnlab.explore); print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_command_says_how_to_install_gradio_when_missing(tmp_path):
    code = ("import sys; sys.modules['gradio'] = None; from cnnlab.cli import main; "
            "sys.exit(main(['explore', '--no-browser']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "cnnlab: error: cnnlab explore needs Gradio, which is not installed; install it "
        "with: pip install 'cnnlab[explore]'"]


def test_another_host_is_warned_about(tmp_path, monkeypatch, capsys):
    from cnnlab.cli import main
    from cnnlab.explore import app

    pytest.importorskip("gradio", reason="the explore extra is not installed")
    seen = {}
    monkeypatch.setattr(app, "launch", lambda library, **kw: seen.update(kw))
    assert main(["explore", str(tmp_path), "--host", "0.0.0.0", "--no-browser"]) == 0
    assert seen["host"] == "0.0.0.0" and seen["open_browser"] is False
    assert "warning: --host 0.0.0.0" in capsys.readouterr().err
    assert main(["explore", str(tmp_path), "--port", "70000"]) == 2


def test_conv_handler_and_its_error_message():
    pytest.importorskip("gradio", reason="the explore extra is not installed")
    from cnnlab.explore import app

    out = app.conv_update("test image", 0, None, None, 8, [[1] * 5] * 3, 0, 1, 3, 4, 1, 1,
                          "max", 2, 1, 0)
    assert "2 × 2" in out[0] and out[-1] == ""
    bad = app._safe(8)(app.conv_update)("test image", 0, None, None, 8, [[1] * 9] * 9, 0, 0,
                                        1, 1, 1, 1, "none", 2, 2, 0)
    assert bad[-1].startswith("⚠") and "kernel spans 9 pixels" in bad[-1]


def test_activation_statistics_for_test_noise_and_unfamiliar_images():
    m = mv.from_module(_net(), input_size=28, dataset="synthetic")
    r = mv.activation_stats(m, max_images=32)
    assert [s.name for s in r.inputs][:2] == ["test", "noise"] and len(r.inputs) == 3
    assert "prediction entropy" in r.table() and r.figure is not None


def test_a_damaged_checkpoint_is_a_message_not_a_crash(tmp_path):
    pytest.importorskip("gradio", reason="the explore extra is not installed")
    from cnnlab.explore import app

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pt").write_bytes(b"\x80\x02 this is no checkpoint")
    models = app.Models(Library([tmp_path]))
    assert models.choices() == ["run/best.pt"]
    out = app._safe(8)(app.model_update)(models, "run/best.pt", "test image", 0, None, None, 5)
    assert out[-1].startswith("⚠") and "not a cnnlab checkpoint" in out[-1]
    out = app._safe(8)(app.model_update)(models, "../etc/passwd", "test image", 0, None, None,
                                         5)
    assert "not one of the checkpoints" in out[-1]


def test_checkpoints_written_after_the_app_started_appear_after_a_rescan(tmp_path):
    pytest.importorskip("gradio", reason="the explore extra is not installed")
    from cnnlab.explore import app

    _run(tmp_path / "runs" / "a", [{"epoch": 1, "val_acc": 0.5}])
    demo = app.build(Library([tmp_path / "runs"]))
    rescan = [f.fn for f in demo.fns.values() if f.api_name == "rescan_checkpoints"]
    assert len(rescan) == 1  # the button beside the checkpoint picker
    def names(update):  # Gradio keeps choices as (label, value) pairs
        return [c[0] if isinstance(c, tuple) else c for c in update["choices"]]

    update, msg = rescan[0]("a/best.pt")
    assert names(update) == ["a/best.pt"]
    (tmp_path / "runs" / "b").mkdir()  # a run that started later, and files elsewhere
    (tmp_path / "runs" / "b" / "last.pt").write_bytes(b"")
    (tmp_path / "elsewhere.pt").write_bytes(b"")
    os.symlink(tmp_path / "elsewhere.pt", tmp_path / "runs" / "b" / "out.pt")
    update, msg = rescan[0]("a/best.pt")
    assert names(update) == ["a/best.pt", "b/last.pt", "b/out.pt"]
    assert update["value"] == "a/best.pt"
    assert msg == ""
    models = app.Models(Library([tmp_path / "runs"]))
    with pytest.raises(ConfigError, match="leads outside"):  # listed, never opened
        models.get("b/out.pt")
    (tmp_path / "runs" / "a" / "best.pt").unlink()  # the picked one is gone: the first left
    assert rescan[0]("a/best.pt")[0]["value"] == "b/last.pt"
    (tmp_path / "empty").mkdir()
    assert app.Models(Library([tmp_path / "empty"])).refresh(None) == (
        [], None, f"still no checkpoints under the folders given ({tmp_path / 'empty'})")
