"""The one Jupyter check (cnnlab.train.plots.in_notebook) against fake IPython shells.

IPython is not installed here: each test puts a stand-in ``IPython`` module in
``sys.modules`` whose ``get_ipython()`` returns an instance of a shell class named
and placed like the real ones (ipykernel's ZMQInteractiveShell, Colab's subclass
google.colab._shell.Shell, the terminal's TerminalInteractiveShell).
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from cnnlab.train.plots import in_notebook

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"


def _shell_class(name: str, module: str, base: type = object) -> type:
    return type(name, (base,), {"__module__": module, "config": {}})


ZMQ = _shell_class("ZMQInteractiveShell", "ipykernel.zmqshell")
COLAB = _shell_class("Shell", "google.colab._shell", ZMQ)  # Colab's kernel shell
TERMINAL = _shell_class("TerminalInteractiveShell", "IPython.terminal.interactiveshell")


class _Calls:
    def __init__(self):
        self.displayed: list = []
        self.cleared = 0


def fake_ipython(monkeypatch, shell) -> _Calls:
    """Install a stand-in IPython whose get_ipython() returns ``shell``; record displays."""
    calls = _Calls()
    display = types.ModuleType("IPython.display")
    display.display = lambda obj, *a, **k: calls.displayed.append(obj)

    def clear_output(wait=False):
        calls.cleared += 1

    display.clear_output = clear_output
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    ipython.version_info = (9, 0, 0, "")  # matplotlib reads it
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return calls


@pytest.mark.parametrize("shell, expected", [
    (ZMQ(), True),                                               # JupyterLab, Notebook
    (COLAB(), True),                                             # Colab: a subclass
    (_shell_class("Shell", "google.colab._shell")(), True),      # Colab, by module
    (_shell_class("VSCodeShell", "ipykernel_x", ZMQ)(), True),   # any other subclass
    (TERMINAL(), False),                                         # terminal ipython
    (None, False),                                               # IPython imported, no shell
], ids=["zmq", "colab-subclass", "colab-module", "other-subclass", "terminal", "no-shell"])
def test_kernel_shells_are_notebooks_and_the_terminal_is_not(monkeypatch, shell, expected):
    fake_ipython(monkeypatch, shell)
    assert in_notebook() is expected


def test_an_unknown_kernel_shell_is_recognised_by_its_kernel_app(monkeypatch):
    shell = _shell_class("SomeKernelShell", "somewhere")()
    shell.config = {"IPKernelApp": {"connection_file": "kernel-1.json"}}
    fake_ipython(monkeypatch, shell)
    assert in_notebook()
    shell.config = {"TerminalIPythonApp": {}}
    assert not in_notebook()


def test_no_ipython_and_a_broken_ipython_are_not_notebooks(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()
    broken = types.ModuleType("IPython")

    def get_ipython():
        raise RuntimeError("half-initialised")

    broken.get_ipython = get_ipython
    monkeypatch.setitem(sys.modules, "IPython", broken)
    assert not in_notebook()


def test_the_d2l_board_draws_in_the_colab_cell_not_into_a_png(monkeypatch, tmp_path):
    import matplotlib.pyplot as plt

    from cnnlab.d2l import ProgressBoard

    # pyplot hooks itself into a shell it finds; keep the stand-in out of its state
    monkeypatch.setattr(plt, "install_repl_displayhook", lambda: None)
    calls = fake_ipython(monkeypatch, COLAB())
    monkeypatch.chdir(tmp_path)
    board = ProgressBoard("epoch")
    try:
        board.draw(0, 1.0, "train_loss")
        board.draw(1, 0.5, "train_loss")
    finally:
        if board.fig is not None:
            plt.close(board.fig)
    assert len(calls.displayed) == 2 and calls.cleared == 2
    assert not list(tmp_path.iterdir()), "in a notebook the board writes no PNG"


def test_the_trainer_shows_its_live_board_in_a_colab_kernel(monkeypatch, tmp_path):
    from cnnlab.train import TrainConfig, Trainer, resolve_config

    calls = fake_ipython(monkeypatch, COLAB())
    cfg = resolve_config(TrainConfig(model="lenet", dataset="synthetic", num_train=64,
                                     batch_size=32, epochs=1, limit_val_batches=1,
                                     num_threads=1))
    Trainer(cfg, save=False).fit()
    assert calls.displayed, "the live board was not shown"


def test_there_is_one_jupyter_check_in_the_package():
    """Every other module asks cnnlab.train.plots.in_notebook (one place per idea)."""
    places = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                    if re.search(r"get_ipython|ZMQInteractiveShell|IPKernelApp", p.read_text()))
    assert places == ["train/plots.py"]
