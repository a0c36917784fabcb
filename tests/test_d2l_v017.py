"""cnnlab.d2l's d2l 0.17 API (chapters 3-7 of 0.17.6) and cnnlab.d2l017.

Values are what the real d2l computes for the same calls (checked by hand against
d2l 0.17.6 and 1.0.3, see benchmarks/README-d2l.md); the training functions run on
the synthetic set (same shapes as Fashion-MNIST) with the CNNLAB_D2L_* caps set tiny.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab import d2l, d2l017
from cnnlab.data import DataModule, Dataset, is_available
from cnnlab.errors import DataNotFoundError

HAVE_FMNIST = is_available("fashion-mnist")

# the parameter lists of d2l 0.17.6's d2l/torch.py
SIGNATURES_017 = {
    "synthetic_data": ["w", "b", "num_examples"],
    "linreg": ["X", "w", "b"],
    "squared_loss": ["y_hat", "y"],
    "sgd": ["params", "lr", "batch_size"],
    "load_array": ["data_arrays", "batch_size", "is_train"],
    "get_fashion_mnist_labels": ["labels"],
    "show_images": ["imgs", "num_rows", "num_cols", "titles", "scale"],
    "get_dataloader_workers": [],
    "load_data_fashion_mnist": ["batch_size", "resize"],
    "accuracy": ["y_hat", "y"],
    "evaluate_accuracy": ["net", "data_iter"],
    "train_epoch_ch3": ["net", "train_iter", "loss", "updater"],
    "train_ch3": ["net", "train_iter", "test_iter", "loss", "num_epochs", "updater"],
    "predict_ch3": ["net", "test_iter", "n"],
    "evaluate_loss": ["net", "data_iter", "loss"],
    "download_extract": ["name", "folder"],
    "download_all": [],
    "try_gpu": ["i"],
    "try_all_gpus": [],
    "corr2d": ["X", "K"],
    "evaluate_accuracy_gpu": ["net", "data_iter", "device"],
    "train_ch6": ["net", "train_iter", "test_iter", "num_epochs", "lr", "device"],
    "grad_clipping": ["net", "theta"],
    "use_svg_display": [],
    "set_figsize": ["figsize"],
    "set_axes": ["axes", "xlabel", "ylabel", "xlim", "ylim", "xscale", "yscale", "legend"],
    "plot": ["X", "Y", "xlabel", "ylabel", "legend", "xlim", "ylim", "xscale", "yscale",
             "fmts", "figsize", "axes"],
    "download": ["name", "cache_dir"],
}


def _params(fn):
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@pytest.mark.parametrize("name", sorted(SIGNATURES_017))
def test_every_017_function_has_the_books_signature(name):
    assert _params(getattr(d2l017, name)) == SIGNATURES_017[name]
    if name not in ("download", "try_all_gpus"):  # 1.0.3 changed these: cnnlab.d2l has its
        assert getattr(d2l, name) is getattr(d2l017, name)


def test_017_classes_have_the_books_constructors():
    assert _params(d2l017.Animator) == ["xlabel", "ylabel", "legend", "xlim", "ylim", "xscale",
                                        "yscale", "fmts", "nrows", "ncols", "figsize"]
    assert _params(d2l017.Accumulator) == ["n"] and _params(d2l017.Timer) == []
    assert _params(d2l017.Residual) == ["input_channels", "num_channels", "use_1x1conv",
                                        "strides"]
    assert _params(d2l.Residual) == ["num_channels", "use_1x1conv", "strides"]


def test_the_three_clashing_names_have_017_meaning_in_d2l017_only():
    assert d2l017.try_all_gpus() == ([torch.device(f"cuda:{i}")
                                      for i in range(torch.cuda.device_count())]
                                     or [torch.device("cpu")])
    assert d2l.try_all_gpus() == [torch.device(f"cuda:{i}")
                                  for i in range(torch.cuda.device_count())]
    X = torch.rand(4, 3, 6, 6)
    assert d2l017.Residual(3, 3)(X).shape == (4, 3, 6, 6)
    assert d2l017.Residual(3, 6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    assert d2l017.Classifier is d2l.Classifier and d2l017.train_ch6 is d2l.train_ch6
    assert "Residual" in d2l017.__all__ and d2l017.plt is d2l.plt


def test_import_of_d2l017_emits_no_warnings():
    r = subprocess.run([sys.executable, "-W", "error", "-c",
                        "from cnnlab import d2l017 as d2l; d2l.Residual(1, 2); d2l.Animator()"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_synthetic_data_linreg_and_squared_loss():
    torch.manual_seed(0)
    w, b = torch.tensor([2, -3.4]), 4.2
    X, y = d2l.synthetic_data(w, b, 1000)
    assert X.shape == (1000, 2) and y.shape == (1000, 1)
    noise = y - d2l.linreg(X, w.reshape(-1, 1), b)
    assert 0.008 < float(noise.std()) < 0.012  # the book's N(0, 0.01^2) noise
    assert torch.allclose(d2l.linreg(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0], [4.0]]),
                                     1.0), torch.tensor([[12.0]]))
    loss = d2l.squared_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 1.0]))
    assert loss.tolist() == [[0.5], [2.0]]  # per example, y reshaped like y_hat


def test_sgd_divides_by_the_batch_size_and_zeroes_the_gradient():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (w * torch.tensor([3.0, 4.0])).sum().backward()
    d2l.sgd([w], lr=0.5, batch_size=2)
    assert w.tolist() == [1.0 - 0.5 * 3 / 2, 2.0 - 0.5 * 4 / 2]
    assert w.grad.tolist() == [0.0, 0.0]


def test_load_array_batches_in_order_without_shuffle():
    X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
    batches = list(d2l.load_array((X, y), 2, is_train=False))
    assert [b[1].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert isinstance(batches[0], list)  # a torch DataLoader's batch, as the book prints it
    shuffled = torch.cat([b[1] for b in d2l.load_array((X, y), 2)])
    assert sorted(shuffled.tolist()) == [0, 1, 2, 3, 4]


def test_accumulator_timer_and_accuracy():
    acc = d2l.Accumulator(3)
    acc.add(1, 2.5, torch.tensor(3))
    acc.add(1, 0.5, 1)
    assert acc.data == [2.0, 3.0, 4.0] and acc[1] == 3.0
    acc.reset()
    assert acc.data == [0.0, 0.0, 0.0]
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    assert d2l.accuracy(y_hat, torch.tensor([0, 2])) == 1.0  # a count
    timer = d2l.Timer()
    timer.stop()
    timer.start()
    timer.stop()
    assert len(timer.times) == 2 and timer.sum() >= 0 and timer.cumsum()[-1] == timer.sum()


def test_evaluate_accuracy_and_loss_over_batches():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 0, 1])
    batches = [(X[:2], y[:2]), (X[2:], y[2:])]
    assert d2l.evaluate_accuracy(net, batches) == 0.75
    assert d2l.evaluate_accuracy_gpu(net, batches) == 0.75 and not net.training
    ones = [(torch.ones(3, 1), torch.zeros(3)), (torch.ones(1, 1), torch.zeros(1))]
    assert d2l.evaluate_loss(lambda X: X * 2, ones, nn.MSELoss(reduction="none")) == 4.0


def test_animator_keeps_points_and_writes_a_png(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    anim = d2l.Animator(xlabel="epoch", xlim=[1, 3], legend=["a", "b"])
    anim.add(1, (0.5, None))
    anim.add([2, 2], [0.4, 0.9])
    assert anim.X == [[1, 2], [2]] and anim.Y == [[0.5, 0.4], [0.9]]
    out = capsys.readouterr().out
    assert out.count("d2l animator:") == 1 and Path("d2l-animator.png").stat().st_size > 0
    assert anim.axes[0].get_xlabel() == "epoch" and anim.axes[0].get_xlim() == (1.0, 3.0)


def _synthetic_loaders(batch_size=32):
    """The two loaders of a small cnnlab DataModule shaped like Fashion-MNIST."""
    g = torch.Generator().manual_seed(0)
    ds = Dataset("fashion-mnist", torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8,
                                                generator=g),
                 torch.randint(0, 10, (256,), generator=g),
                 torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g),
                 torch.randint(0, 10, (64,), generator=g), [str(i) for i in range(10)])
    dm = DataModule("fashion-mnist", batch_size=batch_size, dataset=ds)
    return dm.train_dataloader(), dm.val_dataloader()


def _lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


TRAIN_CH6_LINES = [r"training on cpu", r"d2l animator: .*",
                   r"loss \d+\.\d{3}, train acc [01]\.\d{3}, test acc [01]\.\d{3}",
                   r"\d+\.\d examples/sec on cpu"]


@pytest.mark.parametrize("loop", ["cnnlab", "book"])
def test_train_ch6_prints_the_books_lines_and_honours_the_caps(loop, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "2")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "3")
    train_iter, test_iter = _synthetic_loaders()
    if loop == "book":  # plain lists: not cnnlab's loaders, so the book's loop runs
        train_iter, test_iter = list(train_iter), list(test_iter)
    net = _lenet()
    layers, before = list(net), net[0].weight.detach().clone()
    d2l.train_ch6(net, train_iter, test_iter, 10, 0.9, d2l.try_gpu())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(re.fullmatch(p, s) for p, s in zip(TRAIN_CH6_LINES, lines)), \
        lines
    assert list(net) == layers and not torch.equal(net[0].weight, before)
    assert not net.training  # the book's last step is an evaluation
    assert Path("d2l-animator.png").stat().st_size > 0


def test_train_ch6_fast_path_plots_each_epoch_with_the_cnnlab_values(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "2")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")
    from cnnlab._d2l import training

    made = []
    real = training.Animator

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(training, "Animator", spy)
    d2l.train_ch6(_lenet(), *_synthetic_loaders(), 5, 0.5, "cpu")
    out = capsys.readouterr().out
    (anim,) = made
    assert anim.X == [[1, 2], [1, 2], [1, 2]]  # one point per curve per epoch
    loss, train_acc, test_acc = (float(v) for v in re.search(
        r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)", out).groups())
    assert [round(v, 3) for v in (anim.Y[0][-1], anim.Y[1][-1], anim.Y[2][-1])] == [
        loss, train_acc, test_acc]


def test_train_ch3_scratch_and_concise_under_the_caps(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")
    train_iter, test_iter = _synthetic_loaders()
    W = torch.normal(0, 0.01, size=(784, 10), requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    W0 = W.detach().clone()

    def net(X):
        return torch.softmax(X.reshape(-1, 784) @ W + b, dim=1)

    def loss(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    d2l.train_ch3(net, train_iter, test_iter, loss, 10, lambda n: d2l.sgd([W, b], 0.1, n))
    assert not torch.equal(W.detach(), W0)  # the scratch updater stepped
    concise = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    d2l.train_ch3(concise, train_iter, test_iter, nn.CrossEntropyLoss(reduction="none"), 10,
                  torch.optim.SGD(concise.parameters(), lr=0.1))
    assert capsys.readouterr().out.count("d2l animator:") == 2  # d2l prints nothing else


def test_train_ch3_checks_the_books_accuracy_when_not_capped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CNNLAB_D2L_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("CNNLAB_D2L_LIMIT_BATCHES", raising=False)
    X, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 10
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(AssertionError, match="not below 0.5|not above 0.7"):
        d2l.train_ch3(net, [(X, y)], [(X, y)], nn.CrossEntropyLoss(reduction="none"), 2,
                      torch.optim.SGD(net.parameters(), lr=1e-6))


def test_train_epoch_ch3_returns_mean_loss_and_accuracy():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    X, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    loss = nn.CrossEntropyLoss(reduction="none")
    expected = float(loss(net(X), y).mean().detach())
    got = d2l.train_epoch_ch3(net, [(X, y)], loss, torch.optim.SGD(net.parameters(), lr=0.0))
    assert got == pytest.approx((expected, 0.5))


def test_predict_ch3_titles_true_and_predicted_labels():
    import matplotlib.pyplot as plt

    X, y = torch.zeros(8, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.arange(10.0))  # always predicts class 9
    assert d2l.predict_ch3(net, [(X, y)], n=3) is None
    titles = [ax.get_title() for ax in plt.gcf().axes]
    assert titles == ["t-shirt\nankle boot", "trouser\nankle boot", "pullover\nankle boot"]
    plt.close("all")


def test_download_names_and_offline_failure(tmp_path):
    f = tmp_path / "kaggle_house_pred_train.csv"
    f.write_text("x\n")
    url, _ = d2l.DATA_HUB["kaggle_house_train"]
    assert d2l.download(url, str(tmp_path)) == str(f)  # kept: no hash to compare
    with pytest.raises(DataNotFoundError, match="put the file at"):
        d2l017.download("kaggle_house_train", str(tmp_path))  # hash differs, no network
    with pytest.raises(DataNotFoundError, match="could not download http://127.0.0.1:9/a.csv"):
        d2l.download("http://127.0.0.1:9/a.csv", str(tmp_path))
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "a.csv.part").exists()


@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_FMNIST, reason="real Fashion-MNIST files absent")
def test_load_data_fashion_mnist_is_the_books_batches():
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    assert len(train_iter) == 235 and len(test_iter) == 40  # ceil(60000/256), ceil(10000/256)
    first = next(iter(test_iter))[1][:4].tolist()
    assert first == next(iter(test_iter))[1][:4].tolist() == [9, 2, 1, 1]  # in file order
    X96, _ = next(iter(d2l.load_data_fashion_mnist(32, resize=96)[0]))
    assert X96.shape == (32, 1, 96, 96)


@pytest.mark.parametrize("accel_env", ["1", "0"])
def test_train_ch6_fast_path_uses_cnnlab_accel_unless_switched_off(accel_env, tmp_path,
                                                                   monkeypatch, capsys):
    from cnnlab import accel

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "1")
    monkeypatch.setenv("CNNLAB_ACCEL", accel_env)
    calls = []
    real = accel.accelerated

    def spy(model, device, *args, **kwargs):
        calls.append(type(model).__name__)
        return real(model, device, *args, **kwargs)

    monkeypatch.setattr(accel, "accelerated", spy)
    d2l.train_ch6(_lenet(), *_synthetic_loaders(), 3, 0.5, "cpu")
    assert calls == (["Sequential"] if accel_env == "1" else [])
    assert "test acc" in capsys.readouterr().out


def test_zero_epochs_train_nothing_and_still_print(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = _lenet()
    d2l.train_ch6(net, *_synthetic_loaders(), 0, 0.5, "cpu")
    assert capsys.readouterr().out.splitlines()[-2] == "loss 0.000, train acc 0.000, test acc 0.000"
