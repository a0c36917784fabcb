"""cnnlab.viz and `cnnlab viz`: the numbers behind the pictures, and valid PNG files."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab import viz
from cnnlab.cli import main
from cnnlab.errors import DataError


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """One short lenet-modern run on the synthetic shapes, shared by this module."""
    from cnnlab.train import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("vizrun")
    cfg = TrainConfig(model="lenet-modern", dataset="synthetic", epochs=1, out_dir=str(out),
                      num_train=512, batch_size=64, limit_val_batches=2, optimizer="momentum",
                      lr=0.05, num_threads=1)
    Trainer(cfg).fit()
    return out / "best.pt"


def _is_png(path) -> bool:
    with Image.open(path) as im:
        im.load()  # decodes the whole file: a truncated write fails here
        return im.format == "PNG"


CASES = [
    ("kernels", []),
    ("features", ["--index", "3"]),
    ("activations", ["--num-images", "64", "--ood", "inverted"]),
    ("errors", ["--num-images", "200", "--top", "8"]),
    ("confusion", ["--num-images", "200"]),
]


@pytest.mark.parametrize("kind,extra", CASES)
def test_cli_writes_png(checkpoint, tmp_path, capsys, kind, extra):
    out = tmp_path / f"{kind}.png"
    assert main(["viz", kind, str(checkpoint), "--out", str(out), *extra]) == 0
    assert _is_png(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_prints_the_numbers_the_python_api_returns(checkpoint, tmp_path, capsys):
    from cnnlab.train import model_from_checkpoint

    model, _, _ = model_from_checkpoint(checkpoint)
    k = viz.kernels(model)
    assert main(["viz", "kernels", str(checkpoint), "--out", str(tmp_path / "k.png")]) == 0
    out = capsys.readouterr().out
    assert f"{k.layer}: {tuple(k.weights.shape)}" in out
    assert f"max {float(k.norms.max()):.3f}" in out


def test_cli_features_from_image_file(checkpoint, tmp_path, capsys):
    img = tmp_path / "photo.jpg"
    Image.new("RGB", (120, 90), "white").save(img)
    out = tmp_path / "f.png"
    assert main(["viz", "features", str(checkpoint), str(img), "--invert", "--out", str(out)]) == 0
    assert _is_png(out)
    assert "act1: 6x28x28" in capsys.readouterr().out


def test_features_figure_keeps_every_label_inside_the_picture():
    # the prediction label once overhung the figure's left edge and was cut off
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 3))
    classes = [f"a very long class name, number {i}" for i in range(3)]
    f = viz.features(net, torch.rand(1, 8, 8), channels=2, classes=classes)
    probs = torch.softmax(net.eval()(f.image.unsqueeze(0))[0].detach(), dim=0)
    assert f.prediction == int(probs.argmax())
    assert torch.allclose(f.probabilities, probs, atol=1e-6)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = f.figure
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays out the figure (constrained layout), no file written
    renderer = canvas.get_renderer()
    box = fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]
    label = f"prediction: {classes[f.prediction]} ({float(probs[f.prediction]):.0%})"
    assert label in [t.get_text() for t in texts]
    for t in texts:
        ext = t.get_window_extent(renderer)
        assert ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1, (t.get_text(), ext, box)
        assert ext.y0 >= box.y0 - 1 and ext.y1 <= box.y1 + 1, (t.get_text(), ext, box)


def test_cli_bad_input(checkpoint, tmp_path, capsys):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    assert main(["viz", "features", str(checkpoint), str(not_image)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["viz", "kernels", str(checkpoint), "--out", str(tmp_path / "k.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
    assert main(["viz", "kernels", str(tmp_path / "missing.pt")]) == 2
    assert main(["viz", "features", str(checkpoint), "--index", "100000"]) == 2


def test_load_image_limits(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("L", (64, 48), 200).save(p)
    X = viz.load_image(p, 1, (28, 28))
    assert X.shape == (1, 28, 28) and X.dtype == torch.uint8 and int(X.max()) == 200
    assert int(viz.load_image(p, 1, (28, 28), invert=True).max()) == 55
    assert viz.load_image(p, 3, (32, 32)).shape == (3, 32, 32)
    monkeypatch.setattr("cnnlab.data.images.MAX_PIXELS", 1000)  # the one image loader's
    with pytest.raises(DataError, match="too large"):
        viz.load_image(p, 1, (28, 28))
    with pytest.raises(FileNotFoundError, match="no such image"):
        viz.load_image(tmp_path / "nope.png")


def test_to_model_input_normalizes():
    X = torch.full((1, 2, 2), 255, dtype=torch.uint8)
    Y = viz.to_model_input(X, {"mean": [0.5], "std": [0.25]})
    assert Y.shape == (1, 1, 2, 2) and torch.allclose(Y, torch.full_like(Y, 2.0))


def _one_hot_model(k: int = 3, scale: float = 1.0) -> nn.Module:
    lin = nn.Linear(k, k, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(k) * scale)
    return nn.Sequential(nn.Flatten(), lin)


def test_errors_and_confusion_numbers():
    # logits = X: image i predicts argmax(X[i]); confidences follow from the softmax
    X = torch.tensor([[3.0, 0, 0], [0, 5.0, 0], [0, 0, 1.0], [2.0, 0, 0], [0, 4.0, 0]])
    y = torch.tensor([0, 0, 2, 1, 1])  # wrong: image 1 (pred 1, true 0) and 3 (pred 0, true 1)
    data = (X.reshape(5, 1, 1, 3), y, ["a", "b", "c"])
    r = viz.errors(_one_hot_model(), data, top=5)
    assert (r.num_wrong, r.num_images) == (2, 5)
    assert [(m.index, m.true, m.pred) for m in r.mistakes] == [(1, 0, 1), (3, 1, 0)]
    p1 = math.exp(5) / (math.exp(5) + 2)
    assert r.mistakes[0].confidence == pytest.approx(p1, rel=1e-5)
    assert r.mistakes[0].true_prob == pytest.approx(1 / (math.exp(5) + 2), rel=1e-5)
    c = viz.confusion(_one_hot_model(), data)
    assert c.matrix.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert c.accuracy == pytest.approx(3 / 5)
    assert c.per_class_accuracy == pytest.approx([0.5, 0.5, 1.0])
    assert "accuracy 60.00%" in c.table()


def test_activation_statistics():
    # ReLU of a batch where exactly a quarter of the inputs are negative
    X = torch.tensor([-1.0, 1.0, 2.0, 3.0]).repeat(8, 1).reshape(8, 1, 2, 2)
    net = nn.Sequential(nn.ReLU(), nn.Sigmoid(), nn.Flatten(), nn.Linear(4, 4))
    nn.init.zeros_(net[3].weight)
    nn.init.zeros_(net[3].bias)
    r = viz.activations(net, (X, torch.zeros(8, dtype=torch.long)),
                        inputs={"x": X, "big": X * 100})
    relu, sig = r.inputs[0].layers
    assert (relu.type, sig.type) == ("ReLU", "Sigmoid")
    assert relu.dead == pytest.approx(0.25) and math.isnan(relu.saturated)
    assert relu.mean == pytest.approx(1.5) and relu.std == pytest.approx(math.sqrt(1.25))
    assert sig.saturated == 0.0
    big_sig = r.inputs[1].layers[1]
    assert big_sig.saturated == pytest.approx(0.75)  # sigmoid(100..300) > 0.99; sigmoid(0) not
    assert r.inputs[0].entropy == pytest.approx(math.log(4), rel=1e-5)  # all-zero logits
    assert "x" in r.table() and "big" in r.table()


def test_activations_default_inputs_and_functional_blocks():
    class Block(nn.Module):  # applies its ReLU functionally, as d2l's Residual does
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, X):
            return torch.relu(self.conv(X))

    net = nn.Sequential(Block(), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    X = torch.rand(16, 1, 8, 8)
    r = viz.activations(net, (X, torch.zeros(16, dtype=torch.long)))
    assert [s.name for s in r.inputs] == ["test", "noise", "inverted"]
    assert [lay.layer for lay in r.inputs[0].layers] == ["0"]  # the block is recorded
    assert 0.0 <= r.inputs[0].layers[0].dead <= 1.0


def test_kernels_and_features_numbers():
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 4 * 4, 2))
    k = viz.kernels(net)
    assert k.layer == "0" and torch.equal(k.weights, net[0].weight.detach())
    assert torch.allclose(k.norms, net[0].weight.detach().flatten(1).norm(dim=1))
    f = viz.features(net, torch.rand(1, 8, 8), channels=2, classes=["a", "b"])
    # one stage per resolution: conv 0 after its BN and ReLU at 8x8, the last ReLU at 4x4
    # (not the max-pool, whose 4x4 output starts the second run)
    assert [(s.layer, s.shape) for s in f.stages] == [("2", (3, 8, 8)), ("7", (5, 4, 4))]
    assert all(len(s.channels) == 2 for s in f.stages)
    assert f.probabilities.sum() == pytest.approx(1.0)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(f.stages[1].maps, net[:8](f.image.unsqueeze(0))[0])
    assert float(f.stages[0].maps.min()) >= 0  # taken after the ReLU
