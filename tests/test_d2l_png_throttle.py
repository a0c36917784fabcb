"""Outside Jupyter the d2l board and animator write their PNG at most once per
CNNLAB_D2L_PNG_INTERVAL seconds, and once more when training ends (complete file)."""

from __future__ import annotations

import pytest
import torch

from cnnlab import d2l
from cnnlab._d2l import throttle
from cnnlab.errors import ConfigError

HOUR = "3600"  # no two writes of one figure within a test: only first and final writes


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CNNLAB_D2L_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("CNNLAB_D2L_LIMIT_BATCHES", raising=False)


@pytest.fixture
def saves(monkeypatch):
    """Every PNG write of any board or animator, as the figure that wrote it."""
    seen = []
    original = throttle.ThrottledRender.png_saved

    def counting(self):
        seen.append(self)
        original(self)

    monkeypatch.setattr(throttle.ThrottledRender, "png_saved", counting)
    return seen


def _same_picture(fig, path, tmp_path) -> bool:
    """The file at ``path`` is what rendering ``fig`` now gives (nothing left unwritten)."""
    fig.png_path, again = str(tmp_path / "again.png"), fig.png_path
    fig.render()
    fig.png_path = again
    return (tmp_path / "again.png").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("interval, draws, writes", [(HOUR, 40, 1), ("0", 6, 6)])
def test_board_draws_write_first_then_at_most_once_per_interval(monkeypatch, tmp_path,
                                                                interval, draws, writes):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", interval)
    board = d2l.ProgressBoard("x")
    board.png_path = str(tmp_path / "b.png")
    for i in range(draws):
        board.draw(i, i * i, "square")
    assert board.png_writes == writes and (tmp_path / "b.png").stat().st_size > 0
    assert board.stale is (writes == 1)
    board.flush()
    assert board.png_writes == writes + (writes == 1) and not board.stale
    assert _same_picture(board, tmp_path / "b.png", tmp_path)


def test_trainer_fit_in_the_books_loop_ends_with_the_complete_png(monkeypatch, tmp_path,
                                                                   saves):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", HOUR)
    torch.manual_seed(0)
    data = d2l.SyntheticRegressionData(w=torch.tensor([2.0, -3.4]), b=4.2, num_train=320,
                                       num_val=64)
    model = d2l.LinearRegressionScratch(2, lr=0.03)
    d2l.Trainer(max_epochs=4).fit(model, data)
    points = sum(len(v) for v in model.board.data.values())
    assert points >= 12  # 2 train + 1 val points per epoch, each a redraw in the book
    assert len(saves) == 2 and model.board.png_writes == 2  # the first point, then the end
    assert _same_picture(model.board, tmp_path / "d2l-board.png", tmp_path)


def test_unthrottled_fit_writes_once_per_point(monkeypatch, tmp_path, saves):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", "0")
    data = d2l.SyntheticRegressionData(w=torch.tensor([2.0, -3.4]), b=4.2, num_train=320,
                                       num_val=64)
    model = d2l.LinearRegressionScratch(2, lr=0.03)
    d2l.Trainer(max_epochs=2).fit(model, data)
    assert len(saves) == sum(len(v) for v in model.board.data.values()) >= 6


def test_train_ch3_books_loop_animator_ends_complete(monkeypatch, tmp_path, saves):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", HOUR)
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "6")  # a capped run skips the book's checks
    torch.manual_seed(0)
    X, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    train_iter = d2l.load_array((X, y), 16)
    test_iter = d2l.load_array((X, y), 16, is_train=False)
    W = torch.zeros(5, 3, requires_grad=True)

    def net(X):
        return X @ W

    def updater(batch_size):
        d2l.sgd([W], 0.1, batch_size)

    loss = torch.nn.CrossEntropyLoss(reduction="none")
    d2l.train_ch3(net, train_iter, test_iter, loss, 6, updater)
    animator = saves[-1]
    assert isinstance(animator, d2l.Animator) and len(animator.X[0]) == 6
    assert len(saves) == 2 and not animator.stale
    assert _same_picture(animator, tmp_path / "d2l-animator.png", tmp_path)


def test_exit_flush_writes_stale_figures_but_never_over_a_newer_one(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", HOUR)
    old, new = (d2l.Animator(legend=["a"]) for _ in range(2))
    for x in range(3):
        old.add(x, x)  # written once, then stale
    new.add(0, 5)  # same file, drawn later: the file is new's now
    other = d2l.ProgressBoard()
    other.png_path = str(tmp_path / "other.png")
    for x in range(3):
        other.draw(x, x, "y")
    assert old.stale and not new.stale and other.stale
    throttle._flush_all()
    assert old.stale and old.png_writes == 1  # skipped: it would overwrite new's picture
    assert not other.stale and other.png_writes == 2


@pytest.mark.parametrize("raw", ["-1", "soon", "nan"])
def test_bad_interval_is_one_clear_error(monkeypatch, raw):
    monkeypatch.setenv("CNNLAB_D2L_PNG_INTERVAL", raw)
    board = d2l.ProgressBoard(display=True)
    board.png_path = "b.png"
    board.draw(0, 1, "y")  # the first point is written without asking
    with pytest.raises(ConfigError, match="CNNLAB_D2L_PNG_INTERVAL must be a number"):
        board.draw(1, 1, "y")
