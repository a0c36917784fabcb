"""`cnnlab export`: ONNX checked with onnxruntime on real Fashion-MNIST test images, and a
safetensors folder that create_model, eval and predict read back. The core install pulls
none of the optional extras."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import DataModule, is_available
from cnnlab.models import create_model
from cnnlab.train import model_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
needs_data = pytest.mark.skipif(not is_available("fashion-mnist"),
                                reason="Fashion-MNIST files absent "
                                       "(apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "lenet-modern", "--epochs", "1", "--num-train", "2048",
                 "--batch-size", "64", "--limit-val-batches", "2", "--normalize",
                 "--num-threads", "1", "--out", str(out)]) == 0
    return out / "best.pt"


def _test_images(n: int) -> torch.Tensor:
    dm = DataModule("fashion-mnist", batch_size=n, normalize=True, num_train=1)
    return next(iter(dm.val_dataloader()))[0]


@pytest.mark.slow
@pytest.mark.realdata
@needs_data
def test_onnx_matches_pytorch_on_real_images_at_any_batch(checkpoint, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="needs the export extra: "
                                                    "pip install 'cnnlab[export]'")
    pytest.importorskip("onnxscript", reason="needs the export extra")
    path = tmp_path / "lenet.onnx"
    assert main(["export", str(checkpoint), "--to", "onnx", "--out", str(path)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "dynamo exporter" in line and "onnxruntime matches PyTorch on 64 test images" in line
    net, _, _ = model_from_checkpoint(checkpoint)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch_dim = session.get_inputs()[0].shape[0]
    assert not isinstance(batch_dim, int)  # symbolic: any batch size
    X = _test_images(37)
    for n in (1, 37):
        got = torch.from_numpy(session.run(None, {"images": X[:n].numpy()})[0])
        with torch.no_grad():
            want = net(X[:n])
        assert got.shape == (n, 10)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        assert torch.equal(got.argmax(1), want.argmax(1))


@pytest.mark.slow
@pytest.mark.realdata
@needs_data
def test_safetensors_folder_loads_in_create_model_eval_and_predict(checkpoint, tmp_path,
                                                                    capsys):
    pytest.importorskip("safetensors", reason="pip install safetensors")
    folder = tmp_path / "lenet-export"
    assert main(["export", str(checkpoint), "--to", "safetensors", "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    net, _, _ = model_from_checkpoint(checkpoint)
    for loaded in (create_model(folder), create_model(str(folder))):
        assert not loaded.training
        X = _test_images(16)
        with torch.no_grad():
            assert torch.equal(loaded(X), net(X))
    capsys.readouterr()
    assert main(["eval", str(checkpoint), "--limit-batches", "3"]) == 0
    from_ckpt = capsys.readouterr().out.splitlines()[1:]
    assert main(["eval", str(folder), "--limit-batches", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == from_ckpt
    png = tmp_path / "shirt.png"
    from PIL import Image

    Image.fromarray(DataModule("fashion-mnist", num_train=1)._val_X[0, 0].numpy()).save(png)
    assert main(["predict", str(checkpoint), str(png)]) == 0
    want = capsys.readouterr().out
    assert main(["predict", str(folder), str(png)]) == 0
    assert capsys.readouterr().out == want


def test_bad_export_requests_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.pt")]) == 2
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("cnnlab: error:") for e in err)
    with pytest.raises(ValueError, match="unknown model 'lenet-export'"):
        create_model("lenet-export")  # a bare name is never read as a folder


def test_core_install_pulls_none_of_the_extras():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    assert {"tensorboard", "export"} <= set(extras)

    def name(req: str) -> str:
        return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")

    core = {name(r) for r in meta["dependencies"]}
    for extra, reqs in extras.items():
        if extra == "dev":
            continue
        leaked = core & {name(r) for r in reqs}
        assert not leaked, f"core dependencies include the {extra} extra's {leaked}"
    assert {"tensorboard", "onnx", "onnxruntime", "onnxscript"} <= {
        name(r) for r in extras["tensorboard"] + extras["export"]}
