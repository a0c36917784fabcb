"""Faults never cost a run: kill -9 at any moment, Ctrl-C, a full disk, a read-only folder.

The killed runs are real processes. To keep many trials cheap on a small machine,
they are forked from one helper process that has already imported torch,
matplotlib and cnnlab (nothing else runs there, so forking is safe); each child
runs ``cnnlab.cli.main(argv)`` exactly as the console script does and is killed
with SIGKILL (no handler, no cleanup) or interrupted with SIGINT.

After every kill the run directory must be sound (config.json, metrics and both
checkpoints load; the checkpoints' history is a prefix of an uninterrupted run's),
``--resume auto`` must succeed, and the finished weights must equal the
uninterrupted run's bit for bit (deterministic mode, one thread, CPU).
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.train import load_checkpoint

EPOCHS = 3
ARGS = ["train", "lenet-modern", "--dataset", "synthetic", "--num-train", "512",
        "--batch-size", "64", "--epochs", str(EPOCHS), "--limit-val-batches", "2",
        "--num-threads", "1", "--deterministic", "--device", "cpu", "--optimizer", "momentum",
        "--lr", "0.05"]
KILLS = int(os.environ.get("CNNLAB_FAULT_KILLS", "10"))
TIMING = ("seconds", "images_per_s")

# The helper: reads one JSON request per line, forks a child per "run".
SERVER = r"""
import io, json, os, signal, sys, time, traceback
import torch, matplotlib.figure, matplotlib.backends.backend_agg  # noqa: F401
import cnnlab.cli, cnnlab.cli.train, cnnlab.train.trainer, cnnlab.data, cnnlab.models  # noqa
import cnnlab.train.plots, cnnlab.accel  # noqa: F401
# warm-ups that only import or load files (no torch op runs before fork): the first
# use_deterministic_algorithms imports torch._dynamo, the first figure loads the fonts
torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled())
cnnlab.train.plots.curves_figure([{"epoch": 1, "train_loss": 1.0}]).savefig(io.BytesIO())

def slow_save(marker):
    # torch.save that stops half-way through the file until it is killed
    real = torch.save
    def save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        open(marker, "w").close()
        time.sleep(600)
        f.write(data[len(data) // 2:])
    torch.save = save

for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "run":
        log = open(req["log"], "wb")
        pid = os.fork()
        if pid == 0:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            code = 98
            try:
                if req.get("slow_save"):
                    slow_save(req["slow_save"])
                code = cnnlab.cli.main(req["argv"])
            except BaseException:
                traceback.print_exc()
                code = 99
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        log.close()
        print(json.dumps({"pid": pid}), flush=True)
    elif req["op"] == "poll":
        pid, status = os.waitpid(req["pid"], 0 if req.get("block") else os.WNOHANG)
        done = pid != 0
        reply = {"done": done}
        if done:
            reply["code"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            reply["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        print(json.dumps(reply), flush=True)
"""


class Runner:
    """Start cnnlab children from the helper; kill, interrupt and wait for them."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        env = {**os.environ, "CNNLAB_NO_DOWNLOAD": "1", "PYTHONUNBUFFERED": "1",
               "MPLBACKEND": "Agg"}
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=workdir)
        self.alive: set[int] = set()
        self.ended: dict[int, dict] = {}
        self.n = 0

    def _ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the helper process died"
        return json.loads(line)

    def start(self, argv: list[str], slow_save: Path | None = None) -> tuple[int, Path]:
        self.n += 1
        log = self.workdir / f"child-{self.n}.log"
        pid = self._ask(op="run", argv=argv, log=str(log),
                        slow_save=str(slow_save) if slow_save else None)["pid"]
        self.alive.add(pid)
        return pid, log

    def poll(self, pid: int, block: bool = False) -> dict:
        if pid in self.ended:  # reaped already: waitpid would fail
            return self.ended[pid]
        reply = self._ask(op="poll", pid=pid, block=block)
        if reply["done"]:
            self.alive.discard(pid)
            self.ended[pid] = reply
        return reply

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> dict:
        os.kill(pid, sig)
        return self.poll(pid, block=True)

    def run(self, argv: list[str]) -> tuple[dict, str]:
        pid, log = self.start(argv)
        reply = self.poll(pid, block=True)
        return reply, log.read_text()

    def close(self) -> None:
        for pid in list(self.alive):
            try:
                os.kill(pid, signal.SIGKILL)
                self.poll(pid, block=True)
            except ProcessLookupError:
                pass
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = Runner(tmp_path_factory.mktemp("faults"))
    yield r
    r.close()


@pytest.fixture(scope="module")
def reference(runner):
    """One uninterrupted run: its final checkpoint and the wall time of one epoch."""
    out = runner.workdir / "reference"
    pid, log = runner.start([*ARGS, "--out", str(out)])
    assert _wait_for(lambda: "training " in log.read_text(), pid, runner), log.read_text()
    start = time.monotonic()
    reply = runner.poll(pid, block=True)
    assert reply["code"] == 0, log.read_text()
    state = load_checkpoint(out / "last.pt")
    return {"state": state, "epoch_s": (time.monotonic() - start) / EPOCHS, "dir": out}


def _no_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def check_sound(out: Path, reference: dict, where: str) -> int:
    """Everything in the run directory loads; returns the epochs last.pt holds (0: none)."""
    ref_history = _no_timing(reference["state"]["history"])
    if (out / "config.json").exists():
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["model"] == "lenet-modern", where
    for name in ("metrics.jsonl", "metrics.csv"):
        if (out / name).exists():
            lines = (out / name).read_text().splitlines()
            if name.endswith("jsonl"):
                rows = [json.loads(line) for line in lines]
                assert _no_timing(rows) == ref_history[:len(rows)], where
    epochs = 0
    for name in ("best.pt", "last.pt"):
        if (out / name).exists():
            state = load_checkpoint(out / name)
            assert _no_timing(state["history"]) == ref_history[:state["epoch"]], where
            if name == "last.pt":
                epochs = state["epoch"]
    return epochs


def check_finished(out: Path, reference: dict, where: str) -> None:
    final = load_checkpoint(out / "last.pt")
    ref = reference["state"]
    assert final["epoch"] == EPOCHS, where
    for k, v in ref["model"].items():
        assert torch.equal(v, final["model"][k]), f"{k} differs from the uninterrupted run; {where}"
    for k in ("step", "best"):
        assert final[k] == ref[k], where
    assert _no_timing(final["history"]) == _no_timing(ref["history"]), where
    assert (out / "metrics.csv").read_text().count("\n") == EPOCHS + 1, where
    assert len((out / "metrics.jsonl").read_text().splitlines()) == EPOCHS, where
    assert load_checkpoint(out / "best.pt")["best"] == ref["best"], where
    assert not list(out.glob(".*.tmp")), where


def _wait_for(pred, pid: int, runner: Runner, timeout: float = 240.0) -> bool:
    """Poll ``pred()`` every ~1 ms until true; False if the child ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if runner.poll(pid)["done"]:
            return False
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the training child")


def _epoch_lines(log: Path) -> int:
    try:
        return sum(line.startswith("epoch ") for line in log.read_text().splitlines())
    except FileNotFoundError:
        return 0


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_then_resume_auto(runner, reference):
    """KILLS kills over a few chained runs: kill, check, resume (killed again or to the end)."""
    seed = int(os.environ.get("CNNLAB_FAULT_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    kills, chains, during_save = 0, 0, 0
    while kills < KILLS:
        chains += 1
        out = runner.workdir / f"chain-{chains}"
        while True:
            where = f"seed {seed}, chain {chains}, kill {kills}"
            pid, log = runner.start([*ARGS, "--out", str(out), "--resume", "auto"])
            how = rng.choice(("training", "training", "training", "save", "startup"))
            if kills >= KILLS:
                how = "none"
            if how == "save":  # the moment a checkpoint's temporary file appears
                alive = _wait_for(lambda d=out: any(d.glob(".*.pt.*.tmp")), pid, runner)
            elif how == "training":  # anywhere in the epochs left, saves and plots included
                alive = _wait_for(lambda f=log: "training " in f.read_text(), pid, runner)
                # last.pt is replaced by a rename: safe to read while the child runs
                done = load_checkpoint(out / "last.pt")["epoch"] if (out / "last.pt").exists() \
                    else 0
                left = EPOCHS - done
                time.sleep(rng.uniform(0, reference["epoch_s"] * left))
            elif how == "startup":  # config.json, data, model: before the first step
                time.sleep(rng.uniform(0, 0.5))
                alive = True
            else:
                alive = False
            if how != "none":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            reply = runner.poll(pid, block=True)
            if reply["signal"] == signal.SIGKILL:
                kills += 1
                during_save += how == "save" and alive
                check_sound(out, reference, f"{where} ({how})")
                continue
            assert reply["code"] == 0, f"{where}: {log.read_text()}"
            check_finished(out, reference, where)
            break
    assert kills >= KILLS and chains >= 1
    print(f"{kills} kills ({during_save} while a checkpoint was being written) in {chains} "
          f"runs, seed {seed}")


@pytest.mark.timeout(300)
def test_kill_while_a_checkpoint_is_half_written(runner, reference, tmp_path):
    # torch.save in the child stops half-way through best.pt of epoch 2 (after epoch 1's
    # two saves), then the child is killed: the old files must be untouched.
    out = tmp_path / "run"
    reply, log = runner.run([*ARGS, "--out", str(out), "--epochs", "1"])
    assert reply["code"] == 0, log
    before = {n: (out / n).read_bytes() for n in ("best.pt", "last.pt")}
    marker = tmp_path / "half-written"
    pid, log = runner.start([*ARGS, "--out", str(out), "--resume", "auto"], slow_save=marker)
    assert _wait_for(marker.exists, pid, runner), log.read_text()
    assert list(out.glob(".*.pt.*.tmp")), "the half-written file should be a temporary one"
    assert runner.kill(pid)["signal"] == signal.SIGKILL
    assert {n: (out / n).read_bytes() for n in before} == before
    assert check_sound(out, reference, "half-written") == 1
    reply, text = runner.run([*ARGS, "--out", str(out), "--resume", "auto"])
    assert reply["code"] == 0, text
    check_finished(out, reference, "after a half-written save")


@pytest.mark.timeout(300)
def test_ctrl_c_stops_cleanly_and_resumes(runner, reference, tmp_path):
    out = tmp_path / "run"
    pid, log = runner.start([*ARGS, "--out", str(out)])
    # after epoch 1's checkpoint (the epoch line is printed before the saves)
    assert _wait_for((out / "last.pt").exists, pid, runner), log.read_text()
    os.kill(pid, signal.SIGINT)
    reply = runner.poll(pid, block=True)
    text = log.read_text()
    assert reply["code"] == 130, text
    assert "Traceback" not in text and "interrupted" in text and "--resume" in text
    assert check_sound(out, reference, "ctrl-c") >= 1
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1
    reply, text = runner.run([*ARGS, "--out", str(out), "--resume", "auto"])
    assert reply["code"] == 0, text
    check_finished(out, reference, "after ctrl-c")


@pytest.mark.parametrize("what", ["full-disk", "read-only", "torch-full-disk", "torch-io-error"])
def test_full_disk_or_read_only_folder_on_save(reference, tmp_path, capsys, monkeypatch, what):
    # epoch 1 writes best.pt (one torch.save) and last.pt (a hard link to it: no second
    # write, a second rename); the next checkpoint write fails
    out = tmp_path / "run"
    calls = {"n": 0}
    if what == "full-disk":  # the disk fills up while torch.save writes
        real_save, wanted = torch.save, "No space left on device"

        def save(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_save(*args, **kwargs)

        monkeypatch.setattr(torch, "save", save)
    elif what.startswith("torch-"):
        # torch.save itself reports a failed write as a RuntimeError with its own words
        # (what a real full disk gives, checked by hand on a 256 kB tmpfs), after having
        # written part of the file; the disk is full (statvfs says so) or it is not (EIO)
        real_save = torch.save
        wanted = "No space left on device" if what == "torch-full-disk" else \
            "Input/output error"

        def save(obj, f, *args, **kwargs):
            if (out / "last.pt").exists():  # every write after epoch 1's checkpoint fails
                f.write(b"PK\x03\x04 half a checkpoint")
                raise RuntimeError("[enforce fail at inline_container.cc:672] . "
                                   "PytorchStreamWriter failed writing file data/3: file "
                                   "write failed")
            return real_save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", save)
        if what == "torch-full-disk":
            import cnnlab.train.checkpoint as checkpoint

            real_statvfs = os.statvfs

            def full(path):
                st = real_statvfs(path)
                return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, 0, 0,
                                          st.f_files, st.f_ffree, st.f_favail, st.f_flag,
                                          st.f_namemax))

            monkeypatch.setattr(checkpoint.os, "statvfs", full)
    else:  # the folder turned read-only: renaming the new checkpoint into place fails
        real_replace, wanted = os.replace, "Read-only file system"

        def replace(src, dst, *args, **kwargs):
            if str(dst).endswith(".pt"):  # metrics and plots go through os.replace too
                calls["n"] += 1
                if calls["n"] > 2:
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
    rc = main([*ARGS, "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1, err
    assert wanted in err[0] and "still holds the previous checkpoint" in err[0], err[0]
    assert str(out) in err[0] and "Traceback" not in err[0]
    monkeypatch.undo()
    assert check_sound(out, reference, what) == 1
    assert not list(out.glob(".*.tmp"))
    assert main([*ARGS, "--out", str(out), "--resume", "auto"]) == 0
    check_finished(out, reference, f"after {what}")


@pytest.mark.parametrize("argv, out", [
    (["viz", "kernels", "{ckpt}", "--out", "{out}"], "k.png"),
    (["data", "show", "--dataset", "synthetic", "--n", "4", "--out", "{out}"], "grid.png"),
    (["eval", "{ckpt}", "--limit-batches", "1", "--out", "{out}"], "confusion.png"),
], ids=["viz", "data-show", "eval"])
def test_a_failed_picture_write_leaves_the_old_picture(reference, tmp_path, capsys, monkeypatch,
                                                       argv, out):
    # the disk fills up half-way through writing the PNG: the picture that was there stays
    # whole, no temporary file is left, and the error is one line naming the problem
    from matplotlib.figure import Figure

    path = tmp_path / out
    old = b"\x89PNG an earlier, good picture"
    path.write_bytes(old)
    real_savefig = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))

    monkeypatch.setattr(Figure, "savefig", savefig)
    ckpt = str(reference["dir"] / "last.pt")
    rc = main([a.format(ckpt=ckpt, out=path) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [out]
    monkeypatch.setattr(Figure, "savefig", real_savefig)
    assert main([a.format(ckpt=ckpt, out=path) for a in argv]) == 0  # and then it works
    assert path.read_bytes().startswith(b"\x89PNG\r\n") and path.read_bytes() != old
