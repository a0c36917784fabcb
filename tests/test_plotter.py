"""The plotting helper process (train/plotter.py) and the first thread sample over the set-up.

The helper only starts in a process that has not imported torch (the CLI, before its
import), so its tests run in fresh interpreters; this one has torch imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlab.train import plotter, threads

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork + /proc")
pytest.importorskip("matplotlib", reason="figures need matplotlib")

ROWS = [{"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_acc": 0.61},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9, "val_acc": 0.70}]
CM = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
CLASSES = ["a", "b", "c"]
# ten classes: the helper builds that figure's label-free part before any request
CM10 = [[(i * 7 + j * 3) % 11 + (90 if i == j else 0) for j in range(10)] for i in range(10)]
CLASSES10 = [f"class {i}" for i in range(10)]


def _run(code: str, tmp_path: Path, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (no torch imported); it prints one JSON line."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


HEADER = f"""
    import json, os, sys
    from pathlib import Path
    from cnnlab.train import plotter
    tmp = Path(sys.argv[1])
    ROWS, CM, CLASSES = {ROWS!r}, {CM!r}, {CLASSES!r}
    CM10, CLASSES10 = {CM10!r}, {CLASSES10!r}
"""


def test_the_helper_draws_the_same_bytes_as_the_training_process(tmp_path):
    res = _run(HEADER + """
    p = plotter.start()
    assert p is not None and "matplotlib" not in sys.modules  # imported there, not here
    p.submit("plot_curves", ROWS, path=tmp / "curves.png", title="t")
    p.submit("plot_confusion", CM, CLASSES, path=tmp / "confusion.png", title="t")
    p.prepare("prepare_confusion", None)  # fails in the helper: ignored, it goes on
    p.prepare("prepare_confusion", CLASSES10, title="ten")
    for k in (1, 2):  # each drawing forked from the helper draws over its prepared figure
        p.submit("plot_confusion", CM10, CLASSES10, path=tmp / f"confusion10-{k}.png",
                 title="ten")
    p.wait()
    files = sorted(f.name for f in tmp.glob("*.png"))
    # the helper runs below this process (plotter.NICE), up to the lowest priority, 19
    base = os.getpriority(os.PRIO_PROCESS, 0)
    nicer = os.getpriority(os.PRIO_PROCESS, p.pid) - base == min(19, base + plotter.NICE) - base
    p.close()
    gone = not os.path.exists(f"/proc/{p.pid}")
    print(json.dumps({"files": files, "gone": gone, "mpl": "matplotlib" in sys.modules,
                      "nicer": nicer}))
    """, tmp_path)
    assert res == {"files": ["confusion.png", "confusion10-1.png", "confusion10-2.png",
                             "curves.png"], "gone": True, "mpl": False, "nicer": True}
    from cnnlab.train.plots import plot_confusion, plot_curves

    here = tmp_path / "here"
    here.mkdir()
    plot_curves(ROWS, here / "curves.png", title="t")
    plot_confusion(CM, CLASSES, here / "confusion.png", title="t")
    plot_confusion(CM10, CLASSES10, here / "confusion10-1.png", title="ten")
    for name in ("curves.png", "confusion.png", "confusion10-1.png"):
        assert (tmp_path / name).read_bytes() == (here / name).read_bytes(), name
    second = (tmp_path / "confusion10-2.png").read_bytes()
    assert second == (here / "confusion10-1.png").read_bytes()


def test_a_prepared_confusion_figure_is_drawn_over_to_the_same_bytes_once(tmp_path,
                                                                        monkeypatch):
    from matplotlib.figure import Figure

    from cnnlab.train import plots

    plots.plot_confusion(CM10, CLASSES10, tmp_path / "plain.png", title="ten")  # savefig
    plots.warm_confusion(10)
    plots.prepare_confusion(CLASSES10, title="ten")
    key = (tuple(CLASSES10), "ten")
    ready = plots._READY[key]
    plots.plot_confusion(CM, CLASSES, tmp_path / "three.png")  # other classes: not used
    plots.plot_confusion(CM10, CLASSES10, tmp_path / "other.png", title="another title")
    assert plots._READY.get(key) is ready
    with monkeypatch.context() as m:  # the prepared figure is drawn over, not saved whole
        m.setattr(Figure, "savefig", lambda *a, **k: pytest.fail("savefig was called"))
        plots.plot_confusion(CM10, CLASSES10, tmp_path / "prepared.png", title="ten")
    assert key not in plots._READY  # used once: the next figure is built afresh
    plots.plot_confusion(CM10, CLASSES10, tmp_path / "again.png", title="ten")
    plain = (tmp_path / "plain.png").read_bytes()
    assert (tmp_path / "prepared.png").read_bytes() == plain
    assert (tmp_path / "again.png").read_bytes() == plain
    assert (tmp_path / "other.png").read_bytes() != plain  # the title is in the picture


def test_confusion_cells_are_coloured_by_their_share_of_the_true_class():
    import numpy as np

    from cnnlab.train import plots

    cm = [[0, 0, 0], [3, 1, 0], [0, 2, 8]]  # a class with no examples: a row of zeros
    plots.prepare_confusion(["x", "y", "z"], title="t")
    fig = plots.confusion_figure(cm, ["x", "y", "z"], title="t")
    ax = fig.axes[0]
    (im,) = ax.get_images()
    assert np.allclose(im.get_array(), [[0, 0, 0], [0.75, 0.25, 0], [0, 0.2, 0.8]])
    assert (im.norm.vmin, im.norm.vmax) == (0.0, 1.0)  # the same range for any counts
    counts = ax.collections[-1]
    assert counts.counts == ["0", "0", "0", "3", "1", "0", "0", "2", "8"]
    white = [tuple(c) == (1, 1, 1, 1) for c in counts.get_facecolors()]
    assert white == [False, False, False, True, False, False, False, False, True]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert ax.get_title() == "t"
    # classes that do not match the matrix: the cells are numbered
    fig = plots.confusion_figure(cm, ["only", "two"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "1", "2"]


def test_a_dead_helper_or_a_failed_figure_is_drawn_here(tmp_path):
    res = _run(HEADER + """
    import signal
    p = plotter.start()
    # a figure the helper cannot write: drawn again here, which raises what it hit
    (tmp / "a-file").write_text("not a folder")
    p.submit("plot_curves", ROWS, path=tmp / "a-file" / "curves.png")
    try:
        p.wait()
        raised = None
    except OSError as e:
        raised = "OSError"
    # the helper is killed: the next figures are drawn in this process
    os.kill(p.pid, signal.SIGKILL)
    os.waitpid(p.pid, 0)
    p.submit("plot_curves", ROWS, path=tmp / "curves.png")
    p.submit("plot_confusion", CM, CLASSES, path=tmp / "confusion.png")
    p.wait()
    p.close()
    print(json.dumps({"raised": raised, "files": sorted(f.name for f in tmp.glob("*.png")),
                      "current": plotter.current() is None}))
    """, tmp_path)
    assert res == {"raised": "OSError", "files": ["confusion.png", "curves.png"],
                   "current": True}


def test_no_helper_when_torch_is_imported_or_it_is_turned_off(tmp_path, monkeypatch):
    import torch  # noqa: F401

    assert "torch" in sys.modules and plotter.start() is None  # this process: drawn here
    res = _run(HEADER + """
    print(json.dumps({"started": plotter.start() is not None}))
    """, tmp_path, env={plotter.ENV: "0"})
    assert res == {"started": False}


def test_cli_train_waits_for_its_figures_and_leaves_no_process(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnnlab", "train", "lenet", "--dataset", "synthetic",
           "--epochs", "2", "--limit-train-batches", "2", "--limit-val-batches", "1",
           "--num-threads", "1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "curves.png").stat().st_size > 0 and (out / "confusion.png").stat().st_size > 0
    # the helper is a fork of the CLI: the same command line; none may outlive it
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if str(out).encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            continue
    assert left == []


def test_the_first_thread_sample_spans_the_set_up(monkeypatch):
    """begin() before the set-up: no extra sleep, and our own (and the helper's) CPU time
    over it is not taken for another program's."""
    gov = threads.ThreadGovernor(max_threads=2, cpus=[0, 1])
    clock = {"wall": 0.0, "busy": 0.0, "own": 0.0, "helper": 0.0, "slept": 0.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda cpus: clock["busy"])
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(threads.time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(threads.time, "sleep", lambda s: clock.update(
        slept=clock["slept"] + s, wall=clock["wall"] + s))

    class Helper:
        def cpu_seconds(self):
            return clock["helper"]

    monkeypatch.setattr(plotter, "current", lambda: Helper())
    import torch

    before = torch.get_num_threads()
    try:
        gov.begin()
        # 0.5 s of set-up: we kept one CPU busy, the helper imported matplotlib on the other
        clock.update(wall=0.5, busy=1.0, own=0.5, helper=0.45)
        assert gov.start() == 2 and clock["slept"] == 0.0
        # without begin(): the sample waits SAMPLE_S
        gov2 = threads.ThreadGovernor(max_threads=2, cpus=[0, 1])
        assert gov2.start() == 2 and clock["slept"] == pytest.approx(threads.SAMPLE_S)
        # the same set-up without counting the helper: taken for another program
        monkeypatch.setattr(plotter, "current", lambda: None)
        gov3 = threads.ThreadGovernor(max_threads=2, cpus=[0, 1])
        gov3.begin()
        clock.update(wall=clock["wall"] + 0.5, busy=clock["busy"] + 1.0,
                     own=clock["own"] + 0.5)
        assert gov3.start() == 1
    finally:
        torch.set_num_threads(before)


def test_the_clis_first_thread_sample_spans_torchs_import(monkeypatch):
    """sample_from_now() (the CLI, before importing torch) starts the first fit()'s sample:
    no pause, what others used over the whole import decides, and it is used once."""
    clock = {"wall": 100.0, "busy": 0.0, "own": 0.0, "slept": 0.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda cpus: clock["busy"])
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(threads.time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(threads.time, "sleep", lambda s: clock.update(
        slept=clock["slept"] + s, wall=clock["wall"] + s))
    monkeypatch.setattr(plotter, "current", lambda: None)
    import torch

    before = torch.get_num_threads()
    try:
        threads.sample_from_now()
        # 2.5 s of torch's import on one CPU while another program kept a whole CPU busy
        clock.update(wall=102.5, busy=5.0, own=2.5)
        gov = threads.ThreadGovernor(max_threads=2)
        gov.begin()
        clock.update(wall=102.55, busy=5.1, own=2.55)
        assert gov.start() == 1 and clock["slept"] == 0.0
        gov2 = threads.ThreadGovernor(max_threads=2)  # the next run samples for itself
        gov2.begin()
        assert gov2.start() == 2 and clock["slept"] == pytest.approx(threads.SAMPLE_S)
        threads.sample_from_now()  # too old by the time a run begins: not used
        clock.update(wall=clock["wall"] + threads.EARLY_MAX_S + 1)
        gov3 = threads.ThreadGovernor(max_threads=2)
        gov3.begin()
        assert gov3._mark is not None and gov3._mark[0] == clock["wall"]
    finally:
        torch.set_num_threads(before)


def test_a_killed_training_process_abandons_its_drawings(tmp_path):
    """kill -9 of the training process mid-drawing: the drawing is stopped and its temp file
    removed, so that it cannot replace, seconds later, a figure a quick resume has drawn."""
    import time

    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys, time
        from pathlib import Path
        from cnnlab.guards import atomic_output
        from cnnlab.train import plots, plotter

        def slow_figure(path):  # a drawing that takes 4 s, then replaces path
            with atomic_output(path) as tmp:
                tmp.write_text("an old epoch's figure")
                time.sleep(4)

        plots.slow_figure = slow_figure  # before the fork: the helper's plots has it too
        out = Path(sys.argv[1])
        p = plotter.start()
        assert p is not None
        p.submit("slow_figure", path=out / "figure.png")
        while not list(out.glob(".figure.png.*.tmp")):
            time.sleep(0.02)
        print(p.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close(): as kill -9 does
    """))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    helper = int(proc.stdout.split()[0])

    def running(pid: int) -> bool:  # a zombie (no reaping init in a container) has ended
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while running(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(helper)  # the helper ended (its parent died)
    time.sleep(5)  # past the drawing's 4 s: a drawing left to run would have renamed by now
    assert not (tmp_path / "figure.png").exists()
    assert not list(tmp_path.glob(".*.tmp"))
