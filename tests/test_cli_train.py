"""`cnnlab train | eval | predict | reproduce` through the CLI entry point (in process)."""

from __future__ import annotations

import pytest

from cnnlab.cli import main

TINY = ["--dataset", "synthetic", "--num-train", "256", "--batch-size", "32",
        "--limit-val-batches", "2", "--num-threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "lenet-modern", "--epochs", "1", "--optimizer", "momentum",
                 "--lr", "0.05", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_the_run_directory_and_says_where(trained, capsys):
    assert (trained / "best.pt").exists() and (trained / "curves.png").exists()
    # run again with --resume auto and more epochs: continues the same directory
    assert main(["train", "lenet-modern", "--epochs", "2", "--optimizer", "momentum",
                 "--lr", "0.05", "--out", str(trained), "--resume", "auto", *TINY]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "epoch 2/2" in out and f"run directory: {trained}" in out
    assert (trained / "metrics.csv").read_text().count("\n") == 3


def test_eval_prints_accuracy_per_class_and_confusion(trained, tmp_path, capsys):
    png = tmp_path / "cm.png"
    assert main(["eval", str(trained / "best.pt"), "--limit-batches", "2",
                 "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "confusion" in out and "square" in out  # a synthetic class
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_any_image_mode_and_size(trained, tmp_path, capsys):
    from PIL import Image, ImageDraw

    rgba = Image.new("RGBA", (90, 40), (255, 255, 255, 0))
    ImageDraw.Draw(rgba).rectangle((30, 5, 60, 35), fill=(0, 0, 0, 255))
    rgba.save(tmp_path / "a.png")
    grey = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(grey).ellipse((6, 6, 22, 22), fill=230)
    grey.convert("RGB").save(tmp_path / "b.jpg")
    assert main(["predict", str(trained / "best.pt"), str(tmp_path / "a.png"),
                 str(tmp_path / "b.jpg"), "--topk", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "inverted" in lines[0] and "inverted" not in lines[3]
    assert sum("%" in line for line in lines) == 4


def test_reproduce_writes_a_markdown_report(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "lenet", "--epochs", "1", "--dataset", "synthetic",
                 "--num-train", "256", "--limit-val-batches", "2", "--num-threads", "1",
                 "--out", str(out)]) == 0
    report = (out / "reproduce.md").read_text()
    assert "| lenet | 1 | 0.1 | 128 | 28x28 |" in report
    assert (out / "lenet" / "curves.png").exists()


@pytest.mark.parametrize("argv", [
    ["train", "lenet", "--epochs", "ten"],
    ["train", "lenet", "--epochs", "0"],
    ["train", "lenet", "--optimizer", "lbfgs"],
    ["train", "lenett", "--dataset", "synthetic"],
    ["train", "lenet", "--resume", "auto"],
    ["eval", "/nonexistent/best.pt"],
    ["predict", "/nonexistent/best.pt", "x.png"],
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_predict_refuses_files_that_are_not_images(trained, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["predict", str(trained / "best.pt"), str(bad)]) == 2
    assert "not an image" in capsys.readouterr().err


def test_ctrl_c_keeps_last_pt_and_exits_130(tmp_path, monkeypatch, capsys):
    from cnnlab.train.trainer import Trainer

    end_epoch = Trainer._end_epoch

    def end_then_interrupt(self, row):  # Ctrl-C right after epoch 1 was saved
        end_epoch(self, row)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_end_epoch", end_then_interrupt)
    out = tmp_path / "run"
    assert main(["train", "lenet-modern", "--epochs", "3", "--out", str(out), *TINY]) == 130
    err = capsys.readouterr().err
    assert f"--resume {out / 'last.pt'}" in err
    from cnnlab.train import load_checkpoint

    assert load_checkpoint(out / "last.pt")["epoch"] == 1


@pytest.mark.realdata
def test_dry_run_on_the_real_fashion_mnist(capsys):
    from cnnlab.data import is_available

    if not is_available("fashion-mnist"):
        pytest.skip("Fashion-MNIST files not found")
    assert main(["train", "lenet", "--dry-run", "--num-threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "training lenet on fashion-mnist" in out and "nothing written" in out


def test_predict_refuses_images_over_the_pixel_limit(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image

    import cnnlab.data.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 30 * 30)  # the guard, without a huge file
    Image.new("L", (40, 40)).save(tmp_path / "big.png")
    assert main(["predict", str(trained / "best.pt"), str(tmp_path / "big.png")]) == 2
    assert "megapixels" in capsys.readouterr().err


def test_a_recipe_names_the_model_so_none_is_needed(capsys):
    code = main(["train", "--recipe", "fast-cpu", "--dataset", "synthetic", "--dry-run",
                 "--num-threads", "1"])
    assert code == 0
    assert "training fastnet" in capsys.readouterr().out


def test_no_model_and_no_recipe_is_one_line_exit_2(capsys):
    assert main(["train", "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name the model" in err[0]
