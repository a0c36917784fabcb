"""cnnlab.d2l: the d2l 1.0.3 surface (hyperparameters, Module/Classifier, board,
devices, Trainer fast path and the book's loop, no warnings)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from cnnlab import d2l, native
from cnnlab._d2l import data as d2l_data
from cnnlab._d2l.models import quiet_lazy
from cnnlab.errors import ConfigError


def test_save_hyperparameters_reads_the_callers_arguments():
    class B(d2l.HyperParameters):
        def __init__(self, a, b, c=3, _hidden=4):
            self.save_hyperparameters(ignore=["c"])
            self.total = a + b

    obj = B(1, 2)
    assert obj.hparams == {"a": 1, "b": 2}
    assert (obj.a, obj.b, obj.total) == (1, 2, 3)
    assert not hasattr(obj, "c") and not hasattr(obj, "_hidden")


def test_add_to_class_attaches_a_method():
    class A:
        def __init__(self):
            self.b = 1

    @d2l.add_to_class(A)
    def do(self):
        return self.b + 1

    assert A().do() == 2


def test_classifier_loss_and_accuracy_follow_the_book():
    model = d2l.Classifier()
    Y_hat = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    Y = torch.tensor([0, 2, 0, 1])
    assert model.accuracy(Y_hat, Y).item() == pytest.approx(0.5)
    assert model.accuracy(Y_hat, Y, averaged=False).tolist() == [1.0, 1.0, 0.0, 0.0]
    manual = -torch.log_softmax(Y_hat, dim=1)[torch.arange(4), Y].mean()
    assert model.loss(Y_hat, Y).item() == pytest.approx(manual.item(), rel=1e-6)
    assert model.loss(Y_hat, Y, averaged=False).shape == (4,)


def test_module_without_net_says_what_to_do():
    with pytest.raises(ConfigError, match="self.net"):
        d2l.Module()(torch.zeros(1))


def test_lenet_is_the_books_and_init_cnn_works_after_apply_init(capsys):
    model = d2l.LeNet()
    assert model.hparams == {"lr": 0.1, "num_classes": 10}
    d2l.init_cnn(model.net[0])  # still Lazy: skipped, as the book's exact type test does
    model.apply_init([torch.zeros(2, 1, 28, 28)], d2l.init_cnn)
    convs = [m for m in model.net if type(m) in (nn.Conv2d, nn.Linear)]
    assert len(convs) == 5
    w = convs[0].weight  # xavier-uniform bound sqrt(6 / (fan_in + fan_out)) = sqrt(6/(25+150))
    assert w.abs().max() <= (6 / (25 + 150)) ** 0.5
    assert isinstance(model.configure_optimizers(), torch.optim.SGD)
    assert model.configure_optimizers().param_groups[0]["lr"] == 0.1


def test_extra_models_have_the_chapter_shapes():
    X = torch.randn(2, 1, 64, 64)
    assert d2l.VGG(((1, 8), (1, 8)), lr=0.05)(X).shape == (2, 10)
    assert d2l.ResNet18(num_classes=5)(X).shape == (2, 5)
    assert d2l.vgg_block(2, 4)(X).shape == (2, 4, 32, 32)


def test_devices_fall_back_to_cpu_silently():
    if torch.cuda.is_available():
        pytest.skip("a GPU machine")
    assert d2l.try_gpu() == d2l.cpu() == torch.device("cpu")
    assert d2l.try_all_gpus() == [] and d2l.num_gpus() == 0
    assert d2l.gpu(1) == torch.device("cuda:1")
    assert d2l.Trainer(max_epochs=1, num_gpus=1).gpus == []


def test_progress_board_averages_every_n_and_writes_a_png(tmp_path, capsys):
    board = d2l.ProgressBoard(xlabel="epoch")
    board.png_path = str(tmp_path / "b.png")
    for x in range(6):
        board.draw(x, torch.tensor(float(x)), "loss", every_n=3)
    assert [(p.x, p.y) for p in board.data["loss"]] == [(1.0, 1.0), (4.0, 4.0)]
    assert (tmp_path / "b.png").stat().st_size > 0
    assert capsys.readouterr().out.count("d2l board:") == 1  # the path, printed once


def test_quiet_lazy_silences_only_that_warning_and_only_inside():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with quiet_lazy():
            warnings.warn("Lazy modules are a new feature under heavy development", UserWarning,
                          stacklevel=1)
        with pytest.raises(UserWarning):
            warnings.warn("Lazy modules are a new feature under heavy development", UserWarning,
                          stacklevel=1)


def test_import_and_book_models_emit_no_warnings():
    code = ("import torch\nfrom cnnlab import d2l\n"
            "m = d2l.LeNet(); m.apply_init([torch.zeros(1, 1, 28, 28)], d2l.init_cnn)\n"
            "d2l.Residual(3, use_1x1conv=True)(torch.zeros(1, 3, 6, 6))\n"
            "d2l.ResNeXtBlock(8, 4, 1, True, 2)(torch.zeros(1, 8, 6, 6))\n")
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


class _Tiny(d2l.Classifier):
    def __init__(self, lr=0.5):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


class _Tensors(d2l.DataModule):
    def __init__(self, batch_size=8):
        super().__init__()
        self.save_hyperparameters()
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(64, 1, 4, 4, generator=g)
        self.y = (self.X.flatten(1).sum(1) > 0).long()

    def get_dataloader(self, train):
        return self.get_tensorloader((self.X, self.y), train)


def test_books_loop_runs_a_user_data_module_and_custom_training_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    class Counting(_Tiny):
        def training_step(self, batch):
            calls.append(len(batch[0]))
            return super().training_step(batch)

    model, trainer = Counting(), d2l.Trainer(max_epochs=2)
    before = model.net[1].weight.detach().clone()
    trainer.fit(model, _Tensors())
    assert calls == [8] * 16  # 8 batches per epoch, 2 epochs, each through the override
    assert not torch.equal(before, model.net[1].weight)
    # the book's per-batch plotting: 2 train points and 1 val point per epoch
    assert {k: len(v) for k, v in model.board.data.items()} == {
        "train_loss": 4, "val_loss": 2, "val_acc": 2}
    assert (tmp_path / "d2l-board.png").exists()


def test_fast_path_on_fashion_mnist_feeds_the_board(tmp_path, monkeypatch):
    from cnnlab.data import load_dataset

    monkeypatch.chdir(tmp_path)
    # the synthetic set stands in for Fashion-MNIST: same shapes and 10 classes
    monkeypatch.setattr(d2l_data, "load_dataset", lambda name: load_dataset("synthetic"))
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")
    data = d2l.FashionMNIST(batch_size=32)
    X, y = next(iter(data.get_dataloader(True)))
    assert X.shape == (32, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    model = d2l.LeNet(lr=0.1)
    model.apply_init([X], d2l.init_cnn)
    trainer = d2l.Trainer(max_epochs=2)
    assert trainer._fast_path_ok(model, data)
    trainer.fit(model, data)
    assert [row["epoch"] for row in trainer.history] == [1, 2]
    assert list(model.board.data) == ["train_loss", "val_loss", "val_acc"]
    assert [p.x for p in model.board.data["val_acc"]] == [1.0, 2.0]
    assert [p.x for p in model.board.data["train_loss"]] == [0.25, 1.25]  # mean x of 2 batches
    assert model.trainer is trainer and trainer.epoch == 1 and trainer.train_batch_idx == 4
    assert model.board.xlim == [0, 2]


def test_fast_path_trains_with_cnnlab_accel_and_gives_the_notebook_its_layers_back(
        tmp_path, monkeypatch):
    from cnnlab import accel
    from cnnlab.data import load_dataset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(d2l_data, "load_dataset", lambda name: load_dataset("synthetic"))
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "2")
    data = d2l.FashionMNIST(batch_size=32)
    model = d2l.LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    layers = list(model.net)
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    seen = []
    real = accel.accelerated

    def spy(m, device):
        with real(m, device) as fast:
            seen.extend(type(layer).__name__ for layer in fast.net)
            yield fast

    monkeypatch.setattr(accel, "accelerated", contextlib.contextmanager(spy))
    d2l.Trainer(max_epochs=1).fit(model, data)
    if native.available():  # trained with the fused and native layers
        assert "SigmoidAvgPool2d" in seen and "NativeConv2d" in seen
    assert list(model.net) == layers  # the very objects the notebook built
    assert list(model.parameters()) == params and not all(
        torch.equal(a, b) for a, b in zip(params, before))  # and they were trained


def test_training_env_caps_must_be_positive(monkeypatch):
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "zero")
    with pytest.raises(ConfigError, match="CNNLAB_D2L_MAX_EPOCHS"):
        d2l.Trainer(max_epochs=3).fit(_Tiny(), _Tensors())


def test_fashion_mnist_text_labels_are_the_books():
    assert d2l.get_fashion_mnist_labels([0, 9]) == ["t-shirt", "ankle boot"]
    assert d2l.FashionMNIST.text_labels(None, torch.tensor([5, 8])) == ["sandal", "bag"]


def test_fast_path_only_when_the_books_steps_would_run():
    data = object.__new__(d2l.FashionMNIST)  # isinstance checks only: no data loaded
    ok = d2l.Trainer._fast_path_ok

    class OwnAccuracy(_Tiny):
        def accuracy(self, Y_hat, Y, averaged=True):
            return super().accuracy(Y_hat, Y, averaged)

    class OwnValidation(_Tiny):
        def validation_step(self, batch):
            pass

    class OwnLoader(d2l.FashionMNIST):
        def get_dataloader(self, train):
            return []

    assert ok(_Tiny(), data)
    assert not ok(OwnAccuracy(), data)
    assert not ok(OwnValidation(), data)
    assert not ok(_Tiny(), object.__new__(OwnLoader))
    assert not ok(_Tiny(), object.__new__(_Tensors))
