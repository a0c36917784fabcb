"""Untrusted files: a checkpoint crafted to run code runs nothing; images have a pixel
limit; nothing a checkpoint says can make cnnlab write outside the run directory.

The payload is the classic one: a pickle whose ``__reduce__`` returns
``(os.system, ("touch MARKER",))``. Every place that reads a checkpoint (the
CLI's eval, predict, viz and train --resume, the Python loaders, the Trainer and
the dataset cache) must refuse it with one clear line, and MARKER must never
appear.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import warnings
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CheckpointError
from cnnlab.train import TrainConfig, Trainer, load_checkpoint, model_from_checkpoint

TINY = ["--dataset", "synthetic", "--num-train", "64", "--batch-size", "32",
        "--limit-val-batches", "1", "--num-threads", "1"]


class Payload:
    """Unpickling this runs a shell command (the attack weights_only must stop)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real run directory with a 1-epoch checkpoint (and its loaded dict)."""
    run = tmp_path_factory.mktemp("good") / "run"
    assert main(["train", "lenet-modern", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    return run, load_checkpoint(run / "last.pt")


def _evil_files(d: Path, good_state: dict, marker: Path) -> dict[str, Path]:
    """The same attack three ways: inside a real-looking checkpoint, raw protocols 2 and 4."""
    files = {}
    files["zip"] = d / "zip" / "last.pt"
    files["zip"].parent.mkdir(parents=True)
    torch.save({**good_state, "history": [Payload(marker)]}, files["zip"])
    for proto in (2, 4):
        files[f"pickle{proto}"] = d / f"pickle{proto}" / "last.pt"
        files[f"pickle{proto}"].parent.mkdir(parents=True)
        files[f"pickle{proto}"].write_bytes(pickle.dumps(Payload(marker), protocol=proto))
    return files


@pytest.fixture
def evil(tmp_path, good):
    marker = tmp_path / "PWNED"
    files = _evil_files(tmp_path / "evil", good[1], marker)
    # the payload really runs when loaded the unsafe way: the test would notice
    torch.load(files["zip"], weights_only=False)
    assert marker.exists()
    marker.unlink()
    return files, marker


def _one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_cli_refuses_a_code_running_checkpoint_everywhere(evil, good, tmp_path, capsys):
    files, marker = evil
    image = tmp_path / "shirt.png"
    from PIL import Image

    Image.new("L", (28, 28), 30).save(image)
    for kind, path in files.items():
        commands = [
            ["eval", str(path)],
            ["predict", str(path), str(image)],
            ["viz", "kernels", str(path), "--out", str(tmp_path / "k.png")],
            ["viz", "features", str(path), str(image), "--out", str(tmp_path / "f.png")],
            ["train", "lenet-modern", *TINY, "--epochs", "2", "--resume", str(path)],
            ["train", "lenet-modern", *TINY, "--epochs", "2", "--resume", "auto",
             "--out", str(path.parent)],
        ]
        for argv in commands:
            assert main(argv) == 2, (kind, argv)
            line = _one_line(capsys)
            assert "not a safe cnnlab checkpoint" in line or "not a cnnlab checkpoint" in line
            assert not marker.exists(), f"the payload ran: {kind} {argv}"
        # nothing was written next to the refused checkpoint
        assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    assert not (tmp_path / "k.png").exists() and not (tmp_path / "f.png").exists()


def test_the_message_says_it_would_run_code(evil, capsys):
    files, marker = evil
    assert main(["eval", str(files["zip"])]) == 2
    line = _one_line(capsys)
    assert "would run code" in line and "system" in line and "nothing ran" in line


def test_python_loaders_refuse_it(evil):
    files, marker = evil
    for path in files.values():
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
        with pytest.raises(CheckpointError):
            model_from_checkpoint(path)
        cfg = TrainConfig(model="lenet-modern", dataset="synthetic", num_train=64,
                          batch_size=32, epochs=2)
        with pytest.raises(CheckpointError):
            Trainer(cfg, resume=path).fit()
        assert not marker.exists()


def _write_idx_dataset(folder: Path, n: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + bytes(range(256)) * (n * 784 // 256)
    images += bytes(n * 784 - (len(images) - 16))
    labels = struct.pack(">BBBBI", 0, 0, 8, 1, n) + bytes(i % 10 for i in range(n))
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def test_a_poisoned_dataset_cache_is_ignored_and_replaced(tmp_path, monkeypatch):
    from cnnlab.data import load_dataset
    from cnnlab.data.datasets import CACHE_VERSION

    monkeypatch.setenv("CNNLAB_NO_DOWNLOAD", "1")
    folder = tmp_path / "mnist"
    _write_idx_dataset(folder)
    marker = tmp_path / "PWNED"
    cache = folder / f"cnnlab-mnist-v{CACHE_VERSION}.pt"
    torch.save({"version": CACHE_VERSION, "payload": Payload(marker)}, cache)
    ds = load_dataset("mnist", root=folder)
    assert len(ds.train_labels) == 20 and not marker.exists()
    assert "payload" not in torch.load(cache, weights_only=True)  # rebuilt from the files


def _bomb(path: Path, side: int = 12_000) -> None:
    """A valid greyscale 1-bit PNG of 144 megapixels in a few kB."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


def test_images_are_opened_with_a_pixel_limit(good, tmp_path, capsys):
    from cnnlab.train.predict import open_image

    bomb = tmp_path / "bomb.png"
    _bomb(bomb)
    assert bomb.stat().st_size < 100_000  # small on disk, 144 MP once decoded
    with pytest.raises(ValueError, match="too large|megapixels"):
        open_image(bomb)
    run, _ = good
    for argv in (["predict", str(run / "last.pt"), str(bomb)],
                 ["viz", "features", str(run / "last.pt"), str(bomb),
                  "--out", str(tmp_path / "f.png")]):
        with warnings.catch_warnings(record=True) as seen:  # a warning is a 2nd stderr line
            warnings.simplefilter("always")
            assert main(argv) == 2, argv
        assert "too large" in _one_line(capsys)
        assert not [w for w in seen if "ecompression" in str(w.message)], argv
    assert not (tmp_path / "f.png").exists()


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("field, value", [
    ("out_dir", "ABS"),                 # an absolute folder elsewhere
    ("out_dir", "../../escaped"),       # relative, climbing out of the working folder
    ("model", "../../escaped/lenet"),   # a model name with path separators
])
def test_a_checkpoint_cannot_choose_where_cnnlab_writes(good, tmp_path, monkeypatch, capsys,
                                                        field, value):
    sandbox = tmp_path / "sandbox"
    work = sandbox / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    if value == "ABS":
        value = str(sandbox / "escaped")
    run = work / "run"
    run.mkdir()
    _, state = good
    torch.save({**state, "config": {**state["config"], field: value}}, run / "last.pt")
    before = _files_under(sandbox)
    image = work / "x.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    allowed = {image}
    main(["train", "lenet-modern", *TINY, "--epochs", "2", "--resume", "auto", "--out",
          str(run)])
    main(["train", "lenet-modern", *TINY, "--epochs", "2", "--resume", str(run / "last.pt")])
    main(["eval", str(run / "last.pt"), "--limit-batches", "1"])
    main(["predict", str(run / "last.pt"), str(image)])
    main(["viz", "kernels", str(run / "last.pt"), "--out", str(work / "k.png")])
    allowed.add(work / "k.png")
    capsys.readouterr()
    assert not (sandbox / "escaped").exists()
    assert not (sandbox / "a" / "escaped").exists()
    for new in _files_under(sandbox) - before - allowed:
        assert new.parent == run, f"{new} written outside the run directory"
    if field == "out_dir":  # the resumed run went on in its own folder, not elsewhere
        assert load_checkpoint(run / "last.pt")["epoch"] == 2
        assert load_checkpoint(run / "last.pt")["config"]["out_dir"] == str(run)


# ------------------------------------------------------------- round two: what files say
def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    """A 16-bit PNG holds 0..65535: read as 8 bits it must be v / 257, not min(v, 255)."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.images import load_image, open_image

    ramp = np.rint(np.arange(32 * 32).reshape(32, 32) / 1023 * 65535)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")  # really 16 bits on disk
    got = np.asarray(open_image(path), dtype=np.float64)
    assert np.abs(got - ramp / 257).max() <= 0.5 + 1e-9  # scaled, rounded
    assert got.max() == 255 and got.min() == 0 and len(np.unique(got)) > 200
    X = load_image(path, 1, (32, 32))  # the same pixels through the one loader
    assert int(X.min()) == 0 and int(X.max()) == 255 and float(X.float().mean()) < 160
    # a 32-bit integer image of 16-bit values, and a float image in [0, 1]
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "ramp32.tif")
    Image.fromarray((ramp / 65535).astype(np.float32)).save(tmp_path / "rampf.tif")
    for name in ("ramp32.tif", "rampf.tif"):
        other = np.asarray(open_image(tmp_path / name), dtype=np.float64)
        assert np.abs(other - ramp / 257).max() <= 1.0, name


def test_class_names_from_a_checkpoint_cannot_reach_the_terminal(good, tmp_path, capsys):
    run, state = good
    evil = tmp_path / "evil" / "last.pt"
    names = ["\x1b[2J\x1b]0;owned\x07shirt", "bag\r\nroot# ", "\u202etxt.exe"] + \
        [f"c{i}" for i in range(7)]
    from cnnlab.train import save_checkpoint

    save_checkpoint({**state, "classes": names}, evil)
    loaded = load_checkpoint(evil)
    assert all(ch.isprintable() for c in loaded["classes"] for ch in c)
    assert loaded["classes"][0].startswith("\\x1b[2J")  # shown escaped, still recognisable
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (28, 28), 30).save(image)
    assert main(["predict", str(evil), str(image), "--topk", "10"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out


def test_an_unreadable_checkpoint_is_not_called_damaged(good, tmp_path, capsys, monkeypatch):
    run, _ = good
    path = tmp_path / "locked.pt"
    path.write_bytes((run / "last.pt").read_bytes())
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        import errno

        import cnnlab.guards as guards

        real_open = os.open

        def deny(p, *args, **kwargs):
            if str(p) == str(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))
            return real_open(p, *args, **kwargs)

        monkeypatch.setattr(guards.os, "open", deny)
    for argv in (["eval", str(path)], ["viz", "kernels", str(path), "--out",
                                       str(tmp_path / "k.png")]):
        assert main(argv) == 2
        line = _one_line(capsys)
        assert "permission denied" in line and "chmod" in line, line
        assert "damaged" not in line and "retrain" not in line, line


def test_special_files_are_refused_by_every_reader(tmp_path):
    """FIFOs and devices: refused at once by each Python entry point that opens a path."""
    import signal

    from cnnlab.data import read_idx
    from cnnlab.data.images import open_image
    from cnnlab.errors import CnnlabError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    readers = [load_checkpoint, model_from_checkpoint, read_idx, open_image]
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("hung")))
    try:
        for read in readers:
            for path in (fifo, Path("/dev/zero"), Path("/dev/null")):
                signal.alarm(20)
                with pytest.raises(CnnlabError, match="named pipe|character device"):
                    read(path)
                signal.alarm(0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
