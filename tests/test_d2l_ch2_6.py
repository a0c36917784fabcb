"""cnnlab.d2l for d2l 1.0.3's chapters 2-6: regression data and models, the book's SGD,
the data hub, the caps on the book's own loop, signatures of every 1.0.3 name.

Values are those the real d2l 1.0.3 gives for the same calls (compared by hand, see
benchmarks/README-d2l.md).
"""

from __future__ import annotations

import inspect
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab import d2l
from cnnlab._d2l import core
from cnnlab._d2l import trainer as d2l_trainer

# the parameter lists of d2l 1.0.3's d2l/torch.py (constructors: __init__ without self)
SIGNATURES_103 = {
    "use_svg_display": [], "set_figsize": ["figsize"],
    "set_axes": ["axes", "xlabel", "ylabel", "xlim", "ylim", "xscale", "yscale", "legend"],
    "plot": ["X", "Y", "xlabel", "ylabel", "legend", "xlim", "ylim", "xscale", "yscale",
             "fmts", "figsize", "axes"],
    "add_to_class": ["Class"],
    "ProgressBoard": ["xlabel", "ylabel", "xlim", "ylim", "xscale", "yscale", "ls", "colors",
                      "fig", "axes", "figsize", "display"],
    "Module": ["plot_train_per_epoch", "plot_valid_per_epoch"],
    "DataModule": ["root", "num_workers"],
    "Trainer": ["max_epochs", "num_gpus", "gradient_clip_val"],
    "SyntheticRegressionData": ["w", "b", "noise", "num_train", "num_val", "batch_size"],
    "LinearRegressionScratch": ["num_inputs", "lr", "sigma"],
    "SGD": ["params", "lr"],
    "LinearRegression": ["lr"],
    "FashionMNIST": ["batch_size", "resize"],
    "show_images": ["imgs", "num_rows", "num_cols", "titles", "scale"],
    "SoftmaxRegression": ["num_outputs", "lr"],
    "cpu": [], "gpu": ["i"], "num_gpus": [], "try_gpu": ["i"], "try_all_gpus": [],
    "corr2d": ["X", "K"], "init_cnn": ["module"], "LeNet": ["lr", "num_classes"],
    "Residual": ["num_channels", "use_1x1conv", "strides"],
    "ResNeXtBlock": ["num_channels", "groups", "bot_mul", "use_1x1conv", "strides"],
    "Timer": [], "Accumulator": ["n"],
    "load_array": ["data_arrays", "batch_size", "is_train"],
    "synthetic_data": ["w", "b", "num_examples"], "sgd": ["params", "lr", "batch_size"],
    "get_dataloader_workers": [], "load_data_fashion_mnist": ["batch_size", "resize"],
    "evaluate_accuracy_gpu": ["net", "data_iter", "device"],
    "train_ch6": ["net", "train_iter", "test_iter", "num_epochs", "lr", "device"],
    "linreg": ["X", "w", "b"], "squared_loss": ["y_hat", "y"],
    "get_fashion_mnist_labels": ["labels"],
    "Animator": ["xlabel", "ylabel", "legend", "xlim", "ylim", "xscale", "yscale", "fmts",
                 "nrows", "ncols", "figsize"],
    "accuracy": ["y_hat", "y"], "download": ["url", "folder", "sha1_hash"],
    "extract": ["filename", "folder"], "download_extract": ["name", "folder"],
    "evaluate_loss": ["net", "data_iter", "loss"], "grad_clipping": ["net", "theta"],
}
METHODS_103 = {
    "HyperParameters": ["save_hyperparameters"],
    "ProgressBoard": ["draw"],
    "Module": ["loss", "forward", "plot", "training_step", "validation_step",
               "configure_optimizers", "apply_init"],
    "DataModule": ["get_dataloader", "train_dataloader", "val_dataloader", "get_tensorloader"],
    "Trainer": ["prepare_data", "prepare_model", "fit", "fit_epoch", "prepare_batch",
                "clip_gradients"],
    "SyntheticRegressionData": ["get_dataloader"],
    "LinearRegressionScratch": ["forward", "loss", "configure_optimizers"],
    "SGD": ["step", "zero_grad"],
    "LinearRegression": ["forward", "loss", "configure_optimizers", "get_w_b"],
    "FashionMNIST": ["text_labels", "get_dataloader", "visualize"],
    "Classifier": ["validation_step", "accuracy", "loss", "layer_summary"],
    "Animator": ["add"], "Accumulator": ["add", "reset", "__getitem__"],
    "Timer": ["start", "stop", "avg", "sum", "cumsum"],
}
ALIASES = ["ones_like", "ones", "zeros_like", "zeros", "tensor", "arange", "meshgrid", "sin",
           "sinh", "cos", "cosh", "tanh", "linspace", "exp", "log", "normal", "rand", "randn",
           "matmul", "int32", "int64", "float32", "concat", "stack", "abs", "eye", "sigmoid",
           "batch_matmul", "numpy", "size", "reshape", "to", "reduce_sum", "argmax", "astype",
           "transpose", "reduce_mean", "expand_dims", "swapaxes", "repeat", "nn_Module", "plt",
           "DATA_HUB", "DATA_URL"]


def _params(obj):
    fn = obj.__init__ if inspect.isclass(obj) else obj
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]


@pytest.mark.parametrize("name", sorted(SIGNATURES_103))
def test_every_103_name_has_the_books_signature(name):
    assert _params(getattr(d2l, name)) == SIGNATURES_103[name]


@pytest.mark.parametrize("cls", sorted(METHODS_103))
def test_every_103_class_has_the_books_methods(cls):
    assert all(callable(getattr(getattr(d2l, cls), m, None)) for m in METHODS_103[cls])


def test_the_books_aliases_and_constants_exist():
    assert all(hasattr(d2l, name) for name in ALIASES)
    assert d2l.nn_Module is nn.Module and d2l.DATA_URL.endswith("/")
    assert set(d2l.__all__) <= set(dir(d2l))


def test_synthetic_regression_data_is_y_equals_xw_plus_b_plus_noise():
    torch.manual_seed(0)
    w = torch.tensor([2, -3.4])
    data = d2l.SyntheticRegressionData(w=w, b=4.2)
    assert data.X.shape == (2000, 2) and data.y.shape == (2000, 1)
    noise = data.y - (data.X @ w.reshape(-1, 1) + 4.2)
    assert 0.008 < float(noise.std()) < 0.012
    X, y = next(iter(data.train_dataloader()))
    assert X.shape == (32, 2) and y.shape == (32, 1)
    assert len(data.train_dataloader()) == 32 and len(data.val_dataloader()) == 32
    first_val = next(iter(data.val_dataloader()))[0]
    assert torch.equal(first_val, data.X[1000:1032])  # validation: the second half, in order


def test_the_books_sgd_steps_plain_tensors():
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    (3 * w).sum().backward()
    opt = d2l.SGD([w], lr=0.1)
    assert opt.hparams == {"params": [w], "lr": 0.1}
    with torch.no_grad():
        opt.step()
    assert torch.allclose(w, torch.tensor([0.7, -1.3]))
    opt.zero_grad()
    assert w.grad.tolist() == [0.0, 0.0]


def test_linear_regression_scratch_trains_on_the_books_loop(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = d2l.LinearRegressionScratch(2, lr=0.03)
    assert model.w.shape == (2, 1) and model.b.tolist() == [0.0] and model.w.requires_grad
    assert isinstance(model.configure_optimizers(), d2l.SGD)
    data = d2l.SyntheticRegressionData(w=torch.tensor([2, -3.4]), b=4.2)
    trainer = d2l.Trainer(max_epochs=3)
    assert not trainer._fast_path_ok(model, data)
    trainer.fit(model, data)
    with torch.no_grad():
        err_w = data.w - model.w.reshape(data.w.shape)
        err_b = data.b - model.b
    # the book prints errors of about 0.1 and 0.2 after 3 epochs at lr 0.03
    assert float(err_w.abs().max()) < 0.5 and float(err_b.abs()) < 0.5
    assert list(model.board.data) == ["train_loss", "val_loss"]
    assert len(model.board.data["train_loss"]) == 6  # two points per epoch
    assert "d2l board:" in capsys.readouterr().out


def test_linear_regression_concise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = d2l.LinearRegression(lr=0.03)
    data = d2l.SyntheticRegressionData(w=torch.tensor([2, -3.4]), b=4.2)
    d2l.Trainer(max_epochs=3).fit(model, data)
    w, b = model.get_w_b()
    assert w.shape == (1, 2) and b.shape == (1,)
    # the real d2l: errors of about 0.01 or less after 3 epochs
    assert float((data.w - w.reshape(data.w.shape)).abs().max()) < 0.05
    assert float((data.b - b).abs()) < 0.05


def test_softmax_regression_is_flatten_then_lazy_linear():
    model = d2l.SoftmaxRegression(num_outputs=10, lr=0.1)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert [type(m) for m in model.net] == [nn.Flatten, nn.Linear]
    assert model.net[1].in_features == 784


class _Tensors(d2l.DataModule):
    def __init__(self, n=96, batch_size=8):
        super().__init__()
        self.save_hyperparameters()
        self.X, self.y = torch.randn(n, 3), torch.randn(n, 1)

    def get_dataloader(self, train):
        return self.get_tensorloader((self.X, self.y), train)


def test_caps_reach_a_fit_epoch_the_notebook_adds(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "2")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "3")
    seen = []

    def fit_epoch(self):  # a notebook's own loop, as chapter 3 adds it
        for batch in self.train_dataloader:
            seen.append(len(batch[0]))
            loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()

    monkeypatch.setattr(d2l_trainer.Trainer, "fit_epoch", fit_epoch)
    d2l.Trainer(max_epochs=50).fit(d2l.LinearRegression(lr=0.01), _Tensors())
    assert seen == [8] * 6  # 2 epochs x 3 batches


def test_weight_decay_style_subclass_with_its_own_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class WithPenalty(d2l.LinearRegressionScratch):
        def loss(self, y_hat, y):
            return super().loss(y_hat, y) + 3.0 * (self.w ** 2).sum() / 2

    model = WithPenalty(3, lr=0.01)
    d2l.Trainer(max_epochs=2).fit(model, _Tensors())
    assert model.trainer.epoch == 1 and model.trainer.train_batch_idx == 24


def test_module_plot_needs_a_trainer():
    with pytest.raises(Exception, match="trainer"):
        d2l.LinearRegression(lr=0.1).plot("loss", 1.0, train=True)


def test_hub_keeps_a_file_with_the_right_hash_and_extracts(tmp_path):
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    import hashlib

    sha1 = hashlib.sha1(f.read_bytes()).hexdigest()
    url = "http://127.0.0.1:9/data.csv"  # never reached: the file is there
    assert d2l.download(url, str(tmp_path), sha1_hash=sha1) == str(f)
    z = tmp_path / "pack.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("pack/inner.txt", "hello")
    d2l.extract(str(z))
    assert (tmp_path / "pack" / "inner.txt").read_text() == "hello"
    with pytest.raises(ValueError, match="zip, .tar or .gz"):
        d2l.extract(str(f))


def test_classifier_edits_by_notebooks_stay_isolated():
    # the chapter-4 cells add accuracy/loss to d2l.Classifier; same functions as ours
    assert core.Classifier.accuracy is d2l.Classifier.accuracy
    assert Path(inspect.getsourcefile(d2l.SoftmaxRegression)).name == "regression.py"


def test_plot_draws_each_curve_with_its_format():
    import matplotlib.pyplot as plt

    x = torch.arange(0, 3, 0.5)
    d2l.plot(x, [x ** 2, 2 * x - 3], "x", "f(x)", legend=["f(x)", "Tangent line (x=1)"])
    ax = plt.gca()
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "--"]
    assert ax.get_lines()[1].get_color() == "m" and ax.get_xlabel() == "x"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f(x)", "Tangent line (x=1)"]
    d2l.plot(x ** 3)  # one curve against its index
    assert len(plt.gca().get_lines()) == 1
    plt.close("all")


def test_a_notebook_may_put_the_books_init_on_trainer(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):  # as 6.7 adds it
        self.save_hyperparameters()
        self.gpus = [d2l.gpu(i) for i in range(min(num_gpus, d2l.num_gpus()))]

    monkeypatch.setattr(d2l_trainer.Trainer, "__init__", __init__)
    trainer = d2l.Trainer(max_epochs=1)
    trainer.fit(d2l.LinearRegression(lr=0.01), _Tensors())
    assert trainer.train_batch_idx == 12
