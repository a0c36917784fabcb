"""Bad input, CLI and API: one line naming the problem, exit code 2, never a traceback.

Each row of CASES is a command line that a user could type by mistake, and a
regular expression the one stderr line must match (it names what was wrong).
The files it needs (checkpoints that are truncated, foreign or of another
model, images that are not images or too large, corrupt IDX files) are made in
a temporary folder once per module. A few commands also run as a real
``python -m cnnlab`` process, and the Python API is checked to raise the
documented classes with the CLI's message.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CheckpointError, CnnlabError, ConfigError, DataError
from cnnlab.models import create_model
from cnnlab.train import load_checkpoint, model_from_checkpoint, save_checkpoint

TINY = ["--dataset", "synthetic", "--num-train", "64", "--batch-size", "32", "--epochs", "1",
        "--limit-val-batches", "1", "--num-threads", "1"]
IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def bomb_png(path: Path, side: int = 10_000) -> None:
    """A valid 1-bit PNG of side x side black pixels: 100 megapixels in ~12 kB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed bits
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                                                                      1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every bad file a case needs, plus one good checkpoint; {name: path}."""
    d = tmp_path_factory.mktemp("bad")
    run = d / "run"
    assert main(["train", "lenet-modern", *TINY, "--out", str(run)]) == 0
    good = load_checkpoint(run / "last.pt")
    f = {"run": run, "ckpt": run / "last.pt", "dir": d}

    data = (run / "last.pt").read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    (d / "empty.pt").write_bytes(b"")
    (d / "random.pt").write_bytes(os.urandom(4096))
    (d / "config.json").write_text(json.dumps(good["config"]))
    torch.save(torch.ones(3), d / "tensor.pt")
    torch.save(create_model("lenet").state_dict(), d / "state_dict.pt")
    # a checkpoint whose weights belong to another model than its config says
    save_checkpoint({**good, "model": create_model("lenet-bn").state_dict()},
                    d / "other_model.pt")
    # a run trained for 5 classes (its own folder, so that --resume can take it)
    five = d / "five"
    save_checkpoint({**good, "model": create_model("lenet-modern", num_classes=5).state_dict(),
                     "num_classes": 5, "classes": list("abcde")}, five / "last.pt")
    (d / "something-else").mkdir()
    (d / "something-else" / "notes.txt").write_text("not a run")

    (d / "not-an-image.png").write_text("hello, I am text")
    from PIL import Image

    Image.new("L", (40, 30), 200).save(d / "ok.png")
    bomb_png(d / "bomb.png")

    corrupt = d / "corrupt-idx"  # the images file says 10 images but holds 100 bytes
    corrupt.mkdir()
    head = {IDX_NAMES[0]: struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28) + bytes(100),
            IDX_NAMES[1]: struct.pack(">BBBBI", 0, 0, 8, 1, 10) + bytes(10),
            IDX_NAMES[2]: struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + bytes(2 * 784),
            IDX_NAMES[3]: struct.pack(">BBBBI", 0, 0, 8, 1, 2) + bytes(2)}
    for name, raw in head.items():
        (corrupt / name).write_bytes(gzip.compress(raw))
    badgz = d / "bad-gzip"  # gzip magic, then garbage: a download cut short
    badgz.mkdir()
    for name in IDX_NAMES:
        (badgz / name).write_bytes(b"\x1f\x8b" + os.urandom(200))
    for k in ("truncated", "empty", "random", "tensor", "state_dict", "other_model"):
        f[k] = d / f"{k}.pt"
    f.update(json=d / "config.json", five=five / "last.pt", elsewhere=d / "something-else",
             notimage=d / "not-an-image.png", okimage=d / "ok.png", bomb=d / "bomb.png",
             corrupt=corrupt, badgz=badgz, missing=d / "missing.png")
    # a run directory another training holds (its flock), and one that keeps an earlier
    # run's best.pt and metrics but no last.pt
    import fcntl

    f["locked"] = d / "locked"
    f["locked"].mkdir()
    f["lock_fd"] = os.open(f["locked"], os.O_RDONLY)
    fcntl.flock(f["lock_fd"], fcntl.LOCK_EX | fcntl.LOCK_NB)
    f["bestonly"] = d / "bestonly"
    f["bestonly"].mkdir()
    for name in ("best.pt", "metrics.csv", "metrics.jsonl", "config.json"):
        (f["bestonly"] / name).write_bytes((run / ("last.pt" if name == "best.pt" else name))
                                           .read_bytes())
    f.update(_hostile_files(d, good))
    return f


def long_thin_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit PNG of width x height: tiny on disk, huge once padded to a square."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + (width + 7) // 8)
    idat = zlib.compress(row * height, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 1, 0, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _hostile_files(d: Path, good: dict) -> dict[str, Path]:
    """Round two: special files, damaged values in real checkpoints, data folders that
    lack files, decompression bombs in IDX files, long thin images."""
    f: dict[str, Path] = {}
    os.mkfifo(d / "fifo.pt")  # opening it for reading would wait for a writer forever
    os.mkfifo(d / "fifo.png")
    f.update(fifo=d / "fifo.pt", fifoimage=d / "fifo.png")
    fifo_run = d / "fifo-run"  # --resume DIR takes DIR/last.pt: a FIFO there
    fifo_run.mkdir()
    os.mkfifo(fifo_run / "last.pt")
    f["fiforun"] = fifo_run

    def variant(name: str, **changes) -> None:
        save_checkpoint({**good, **changes}, d / "variants" / name / "last.pt")
        f[name] = d / "variants" / name / "last.pt"

    weights = good["model"]
    first = next(k for k, v in weights.items() if v.is_floating_point())
    variant("nan", model={**weights, first: torch.full_like(weights[first], float("nan"))})
    variant("inf", model={**weights, first: weights[first].clone().fill_(float("inf"))})
    variant("hugeside", image_size=[100_000, 100_000])
    variant("mismatchside", image_size=[64, 64])
    variant("normlen", normalization={"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]})
    variant("normnan", normalization={"mean": [float("nan")], "std": [0.2]})
    variant("resizeneg", config={**good["config"], "resize": -5})
    variant("resizestr", config={**good["config"], "resize": "28"})
    variant("manyclasses", num_classes=10**9, classes=[])
    variant("historystr", history=[{**good["history"][0], "train_loss": "1.0; rm -rf"}])
    variant("historyepoch", history=[{**good["history"][0], "epoch": 7}])
    variant("historynan", history=[{**good["history"][0], "val_acc": float("nan")}])
    variant("historylong", history=good["history"] * 3)
    variant("bestbig", best=7.5)

    empty = d / "data-empty"
    empty.mkdir()
    lacking = d / "data-lacking"  # three of the four files
    lacking.mkdir()
    idx = {IDX_NAMES[0]: struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + bytes(2 * 784),
           IDX_NAMES[1]: struct.pack(">BBBBI", 0, 0, 8, 1, 2) + bytes(2),
           IDX_NAMES[2]: struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + bytes(2 * 784)}
    for name, raw in idx.items():
        (lacking / name).write_bytes(gzip.compress(raw))
    fifodata = d / "data-fifo"  # the four names, but the labels "file" is a FIFO
    fifodata.mkdir()
    for name, raw in idx.items():
        (fifodata / name).write_bytes(gzip.compress(raw))
    os.mkfifo(fifodata / IDX_NAMES[3])
    bombdir = d / "data-bomb"  # 2 images declared, 200 MB of zeros in 200 kB of gzip
    bombdir.mkdir()
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = z.compress(idx[IDX_NAMES[0]]) + b"".join(z.compress(bytes(1 << 20))
                                                    for _ in range(200)) + z.flush()
    (bombdir / IDX_NAMES[0]).write_bytes(bomb)
    for name, raw in list(idx.items())[1:]:
        (bombdir / name).write_bytes(gzip.compress(raw))
    (bombdir / IDX_NAMES[3]).write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 2)
                                                       + bytes(2)))
    hugedir = d / "data-huge-header"  # the header declares 2**31 images of 28x28
    hugedir.mkdir()
    for name in IDX_NAMES:
        (hugedir / name).write_bytes(gzip.compress(
            struct.pack(">BBBBIII", 0, 0, 8, 3, 2**31, 28, 28) + bytes(1000)))
    f.update(emptydata=empty, lackingdata=lacking, fifodata=fifodata, bombdata=bombdir,
             hugedata=hugedir)
    long_thin_png(d / "long-thin.png", 7_000_000, 7)
    long_thin_png(d / "wide.png", 9_000, 3_000)  # 27 MP, but its square is 81 MP
    f.update(longthin=d / "long-thin.png", wide=d / "wide.png")
    return f


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


T = "train lenet-modern --dataset synthetic --num-threads 1"
# (id, command line with {placeholders} from the `files` fixture, what the line must say)
CASES = [
    # names
    ("unknown-model", "train lenett --dataset synthetic", r"unknown model 'lenett'.*lenet"),
    ("unknown-model-close", "train resnet --dataset synthetic", r"unknown model.*resnet18"),
    ("unknown-model-summary", "summary vgg", r"unknown model 'vgg'.*vgg11"),
    ("unknown-model-shape", "shape --model lenet5", r"unknown model 'lenet5'.*lenet"),
    ("unknown-dataset", "train lenet --dataset fashion", r"dataset.*fashion-mnist"),
    ("unknown-dataset-eval", "eval {ckpt} --dataset cifar10", r"dataset.*synthetic"),
    ("unknown-recipe", "train lenet --dataset synthetic --recipe turbo", r"recipe 'turbo'"),
    ("unknown-optimizer", "train lenet --optimizer adam", r"optimizer.*adamw"),
    ("no-model-matches", "models 'nosuch*'", r"no model matches"),
    # numbers
    ("epochs-zero", T + " --epochs 0", r"epochs must be a positive integer"),
    ("epochs-negative", T + " --epochs -3", r"epochs must be a positive integer.*-3"),
    ("epochs-text", T + " --epochs abc", r"--epochs.*'abc'"),
    ("epochs-float", T + " --epochs 1.5", r"--epochs.*'1.5'"),
    ("batch-zero", T + " --batch-size 0", r"batch_size must be a positive integer"),
    ("batch-negative", T + " --batch-size -8", r"batch_size must be a positive integer"),
    ("batch-text", T + " --batch-size many", r"--batch-size.*'many'"),
    ("lr-nan", T + " --lr nan", r"lr must be a finite number"),
    ("lr-inf", T + " --lr inf", r"lr must be a finite number"),
    ("lr-negative", T + " --lr -0.1", r"lr must be > 0"),
    ("lr-zero", T + " --lr 0", r"lr must be > 0"),
    ("lr-text", T + " --lr abc", r"--lr.*'abc'"),
    ("weight-decay-negative", T + " --weight-decay -1", r"weight_decay must be >= 0"),
    ("label-smoothing-one", T + " --label-smoothing 1", r"label_smoothing must be in \[0, 1\)"),
    ("grad-clip-nan", T + " --grad-clip nan", r"grad_clip must be a finite number"),
    ("resize-zero", T + " --resize 0", r"resize must be a positive integer"),
    ("num-train-zero", T + " --num-train 0", r"num_train must be a positive integer"),
    ("num-train-too-many", T + " --num-train 100000000",
     r"num_train must be a positive integer \(at most \d+\)"),
    ("threads-zero", T + " --num-threads 0", r"num_threads must be a positive integer"),
    ("augment-unknown", T + " --augment rotate", r"unknown augmentation .rotate."),
    ("batch-larger-than-data", T + " --num-train 100 --batch-size 500",
     r"batch_size 500 is larger than the 100 training images"),
    ("topk-zero", "predict {ckpt} {okimage} --topk 0", r"topk"),
    ("eval-limit-zero", "eval {ckpt} --limit-batches 0", r"limit_batches must be a positive"),
    # sizes and channels
    ("alexnet-at-28", "train alexnet --dataset synthetic --resize 28",
     r"alexnet needs inputs of at least 65x65.*--resize"),
    ("lenet-at-5", T + " --resize 5", r"at least 12x12"),
    ("summary-too-small", "summary alexnet --input 1,1,28,28", r"at least 65x65"),
    ("summary-wrong-channels", "summary lenet --input 1,3,28,28 --in-channels 1",
     r"3 channels.*--in-channels is 1"),
    ("summary-three-numbers", "summary lenet --input 1,1,28", r"--input takes 4 integers"),
    ("summary-not-numbers", "summary lenet --input a,b,c,d", r"expected integers"),
    ("summary-not-square", "summary lenet --input 1,1,28,32", r"square"),
    ("summary-zero-batch", "summary lenet --input 0,1,28,28", r"positive sizes"),
    ("summary-depth", "summary lenet --depth 0", r"depth must be a positive integer"),
    ("shape-kernel-too-big", "shape --input 8,8 --kernel 10", r"kernel spans 10 pixels"),
    ("shape-negative-padding", "shape --input 8,8 --kernel 3 --padding=-1", r"padding must be"),
    ("shape-zero-stride", "shape --input 8,8 --kernel 3 --stride 0", r"stride must be >= 1"),
    ("shape-three-sides", "shape --input 8,8,8 --kernel 3", r"--input takes one or two"),
    ("shape-malformed", "shape --input 8x --kernel three", r"expected integers"),
    ("shape-model-too-small", "shape --model alexnet --input 28", r"at least 65x65"),
    # data folders
    ("data-dir-missing", T + " --data-dir {dir}/nowhere", r"nowhere does not exist"),
    ("data-dir-is-file", T + " --data-dir {okimage}", r"is a file, not a folder"),
    ("data-dir-corrupt", "train lenet --data-dir {corrupt}", r"truncated"),
    ("data-dir-bad-gzip", "train lenet --data-dir {badgz}", r"corrupt or truncated gzip"),
    ("data-show-missing-dir", "data show --data-dir {dir}/nowhere", r"does not exist"),
    # checkpoints
    ("resume-truncated", T + " --resume {truncated}", r"not a cnnlab checkpoint \(truncated"),
    ("resume-empty", T + " --resume {empty}", r"not a cnnlab checkpoint \(truncated"),
    ("resume-random-bytes", T + " --resume {random}", r"not a cnnlab checkpoint"),
    ("resume-json", T + " --resume {json}", r"not a cnnlab checkpoint"),
    ("resume-plain-tensor", T + " --resume {tensor}", r"not a cnnlab checkpoint"),
    ("resume-state-dict", T + " --resume {state_dict}", r"not a cnnlab checkpoint"),
    ("resume-dir-of-something-else", T + " --resume {elsewhere}", r"last\.pt does not exist"),
    ("resume-missing", T + " --resume {dir}/nope.pt", r"does not exist"),
    ("resume-other-model", "train lenet --dataset synthetic --resume {ckpt}",
     r"used model='lenet-modern', not 'lenet'"),
    ("resume-weights-of-other-model", T + " --resume {other_model}", r"does not fit"),
    ("resume-other-num-classes", T + " --resume {five}", r"5 classes.*10"),
    ("eval-truncated", "eval {truncated}", r"not a cnnlab checkpoint \(truncated"),
    ("eval-random-bytes", "eval {random}", r"not a cnnlab checkpoint"),
    ("eval-json", "eval {json}", r"not a cnnlab checkpoint"),
    ("eval-tensor", "eval {tensor}", r"not a cnnlab checkpoint"),
    ("eval-other-model", "eval {other_model}", r"does not fit model 'lenet-modern'"),
    ("eval-other-num-classes", "eval {five}", r"trained for 5 classes, the data has 10"),
    ("eval-directory", "eval {elsewhere}", r"is a directory"),
    ("eval-missing", "eval {dir}/nope.pt", r"does not exist"),
    ("eval-not-png", "eval {ckpt} --out confusion.jpg", r"\.png"),
    ("predict-bad-checkpoint", "predict {random} {okimage}", r"not a cnnlab checkpoint"),
    ("viz-truncated", "viz kernels {truncated} --out {dir}/k.png", r"truncated"),
    # images
    ("predict-not-an-image", "predict {ckpt} {notimage}", r"not an image"),
    ("predict-checkpoint-as-image", "predict {ckpt} {ckpt}", r"not an image"),
    ("predict-missing-image", "predict {ckpt} {missing}", r"missing\.png does not exist"),
    ("predict-folder", "predict {ckpt} {elsewhere}", r"is a folder, not an image"),
    ("predict-bomb", "predict {ckpt} {bomb}", r"10000x10000|too large|megapixels"),
    # flags that do not go together
    ("resume-auto-without-out", T + " --resume auto", r"--resume auto needs --out"),
    ("resume-elsewhere-with-out", T + " --resume {ckpt} --out {dir}/other", r"drop --out"),
    ("resume-changes-lr", T + " --resume {ckpt} --lr 0.5", r"used --lr .*drop --lr"),
    ("out-holds-a-run", T + " --out {run}", r"already holds a run.*--resume \S*last\.pt.*--out"),
    ("out-is-a-file", T + " --num-train 64 --batch-size 32 --out {okimage}", r"is a file"),
    ("out-in-use", T + " --num-train 64 --batch-size 32 --out {locked}",
     r"in use by another training.*--out"),
    ("out-holds-best-and-metrics", T + " --num-train 64 --batch-size 32 --out {bestonly}",
     r"earlier run's best\.pt and metrics but no last\.pt.*--out"),
    ("resume-auto-best-only", T + " --num-train 64 --batch-size 32 --out {bestonly} "
     "--resume auto", r"earlier run's best\.pt and metrics but no last\.pt"),
    ("shape-model-and-kernel", "shape --model lenet --kernel 3", r"not both"),
    ("shape-nothing", "shape", r"--input"),
    ("data-show-augment-test", "data show --dataset synthetic --augment crop --split test",
     r"--augment applies to training"),
    ("data-show-n-zero", "data show --dataset synthetic --n 0", r"--n must be between 1"),
    ("data-show-n-huge", "data show --dataset synthetic --n 1000000", r"--n must be between"),
    ("seed-too-large", T + " --seed 100000000000000000000000", r"seed must be an integer in"),
    ("reproduce-epochs-zero", "reproduce lenet --dataset synthetic --epochs 0",
     r"epochs must be a positive integer"),
    # -- round two (issue: hostile input). 1. sizes checked before allocating
    ("resize-absurd", T + " --resize 2147483648", r"needs .*more than .*memory.*--resize"),
    ("resize-huge", T + " --resize 100000", r"needs .*more than .*memory.*--resize"),
    ("batch-times-resize-too-big", T + " --num-train 5000 --batch-size 5000 --resize 400",
     r"needs .*more than .*memory.*--batch-size"),
    ("threads-absurd", T + " --num-threads 100000", r"num_threads must be a positive integer "
     r"\(at most \d+\)"),
    ("reproduce-threads-absurd", "reproduce lenet --dataset synthetic --num-threads 100000",
     r"num_threads must be a positive integer \(at most"),
    ("summary-input-too-big", "summary lenet --input 100000000,1,28,28", r"needs .*memory"),
    # 2. special files are refused before they are opened, wherever a path is read
    ("eval-fifo", "eval {fifo}", r"named pipe.*not a checkpoint file"),
    ("predict-fifo-checkpoint", "predict {fifo} {okimage}", r"named pipe"),
    ("resume-fifo", T + " --resume {fifo}", r"named pipe"),
    ("resume-dir-with-fifo", T + " --resume {fiforun}", r"named pipe"),
    ("resume-auto-fifo", T + " --resume auto --out {fiforun}", r"named pipe"),
    ("viz-kernels-fifo", "viz kernels {fifo} --out {dir}/k.png", r"named pipe"),
    ("viz-features-fifo", "viz features {fifo} {okimage} --out {dir}/f.png", r"named pipe"),
    ("eval-char-device", "eval /dev/zero", r"character device"),
    ("predict-fifo-image", "predict {ckpt} {fifoimage}", r"named pipe.*not a image|named pipe"),
    ("viz-features-fifo-image", "viz features {ckpt} {fifoimage} --out {dir}/f.png",
     r"named pipe"),
    ("data-dir-fifo-file", "train lenet --data-dir {fifodata}", r"lacks t10k-labels"),
    # 3. a data folder the user names is used or refused, never swapped
    ("data-dir-empty", "train lenet --data-dir {emptydata}", r"is empty.*never swapped"),
    ("data-dir-lacking", "train lenet --data-dir {lackingdata}",
     r"lacks t10k-labels-idx1-ubyte\.gz.*never swapped"),
    ("eval-data-dir-empty", "eval {ckpt} --dataset fashion-mnist --data-dir {emptydata}",
     r"is empty"),
    ("viz-data-dir-missing", "viz errors {ckpt} --data-dir {dir}/nowhere --out {dir}/e.png",
     r"nowhere does not exist"),
    ("viz-data-dir-empty", "viz errors {ckpt} --dataset mnist --data-dir {emptydata} "
     "--out {dir}/e.png", r"is empty"),
    ("data-fetch-dir-missing", "data fetch mnist --data-dir {dir}/nowhere", r"does not exist"),
    # 4. decompression bombs and absurd headers in IDX files
    ("data-dir-gzip-bomb", "train lenet --data-dir {bombdata}", r"trailing bytes"),
    ("data-dir-huge-header", "train lenet --data-dir {hugedata}", r"declares shape.*GiB"),
    # 5. checkpoint values out of range or inconsistent
    ("eval-image-size-huge", "eval {hugeside}", r"malformed image_size"),
    ("eval-image-size-vs-resize", "eval {mismatchside}", r"malformed image_size.*resize"),
    ("predict-normalization-length", "predict {normlen} {okimage}", r"malformed normalization"),
    ("predict-normalization-nan", "predict {normnan} {okimage}", r"malformed normalization"),
    ("eval-config-resize-negative", "eval {resizeneg}", r"malformed config.*resize"),
    ("viz-config-resize-text", "viz kernels {resizestr} --out {dir}/k.png",
     r"malformed config.*resize"),
    ("predict-absurd-num-classes", "predict {manyclasses} {okimage}", r"malformed num_classes"),
    ("resume-history-text", T + " --resume {historystr}", r"malformed history.*train_loss"),
    ("resume-history-epoch", T + " --resume {historyepoch}", r"malformed history"),
    ("resume-history-nan", T + " --resume {historynan}", r"malformed history.*val_acc"),
    ("resume-history-too-long", T + " --resume {historylong}", r"malformed history.*rows"),
    ("eval-best-above-one", "eval {bestbig}", r"malformed best"),
    # 6. NaN or infinite weights
    ("predict-nan-weights", "predict {nan} {okimage}", r"NaN or infinite weights"),
    ("eval-inf-weights", "eval {inf}", r"NaN or infinite weights"),
    ("viz-nan-weights", "viz kernels {nan} --out {dir}/k.png", r"NaN or infinite weights"),
    ("resume-nan-weights", T + " --resume {nan}", r"NaN or infinite weights"),
    # 7. images: the size limit counts the padded square and each side; count flags bounded
    ("predict-long-thin", "predict {ckpt} {longthin}", r"7000000x7 pixels: too large"),
    ("predict-wide", "predict {ckpt} {wide}", r"9000x3000 pixels: too large"),
    ("viz-features-long-thin", "viz features {ckpt} {longthin} --out {dir}/f.png",
     r"too large"),
    ("viz-errors-top-huge", "viz errors {ckpt} --top 1000000 --out {dir}/e.png",
     r"--top must be a positive integer \(at most 256\)"),
    ("viz-channels-huge", "viz features {ckpt} --channels 100000 --out {dir}/f.png",
     r"--channels must be a positive integer \(at most"),
    ("viz-num-images-huge", "viz confusion {ckpt} --num-images 10000000000 --out {dir}/c.png",
     r"--num-images must be a positive integer \(at most"),
    ("viz-index-negative", "viz features {ckpt} --index -1 --out {dir}/f.png",
     r"--index must be a non-negative integer"),
    ("viz-dpi-huge", "viz kernels {ckpt} --dpi 100000 --out {dir}/k.png", r"--dpi must be"),
    ("predict-topk-huge", "predict {ckpt} {okimage} --topk 100000000", r"topk must be"),
    ("eval-batch-zero", "eval {ckpt} --batch-size 0", r"batch_size must be a positive"),
]
if not torch.cuda.is_available():
    CASES.append(("cuda-without-gpu", T + " --device cuda", r"no CUDA GPU"))
if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
    CASES.append(("mps-without-mps", T + " --device mps", r"MPS backend is not available"))


def _argv(command: str, files: dict) -> list[str]:
    return command.format(**{k: str(v) for k, v in files.items()}).split()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.timeout(120)  # a FIFO read by mistake would wait forever
@pytest.mark.parametrize("command, wanted", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_bad_input_is_one_line_and_exit_2(files, capsys, command, wanted):
    rc = main(_argv(command, files))
    err = capsys.readouterr().err
    line = _one_line(err)
    assert rc == 2, line
    assert line.startswith(("cnnlab: error:", "error: cnnlab")), line
    assert re.search(wanted, line, re.IGNORECASE), line


def test_there_are_enough_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_bad_input_leaves_no_files_behind(files, capsys):
    # a refused run must not leave a half-made run directory
    out = files["dir"] / "refused"
    assert main([*_argv(T, files), "--lr", "nan", "--out", str(out)]) == 2
    assert main([*_argv(T, files), "--resume", str(files["random"]), "--out",
                 str(files["random"].parent)]) == 2
    assert not out.exists()
    assert load_checkpoint(files["ckpt"])["epoch"] == 1  # the good checkpoint is untouched


@pytest.mark.parametrize("command, wanted", [
    ("eval {truncated}", r"truncated"),
    ("predict {ckpt} {bomb}", r"too large|megapixels"),
], ids=["truncated-checkpoint", "bomb"])
def test_real_process_exits_2_without_traceback(files, command, wanted):
    env = {**os.environ, "CNNLAB_NO_DOWNLOAD": "1"}
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *_argv(command, files)],
                          capture_output=True, text=True, timeout=300, env=env)
    line = _one_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert re.search(wanted, line), line


def test_debug_shows_the_exception(files):
    with pytest.raises(CheckpointError):
        main(["--debug", "eval", str(files["truncated"])])


# ----------------------------------------------------------------------------- Python API
def _cli_message(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return _one_line(capsys.readouterr().err).removeprefix("cnnlab: error: ")


def test_api_raises_the_documented_classes_with_the_cli_message(files, capsys):
    from cnnlab.data import DataModule, load_dataset
    from cnnlab.models import get_model_info
    from cnnlab.train import TrainConfig, Trainer
    from cnnlab.train.predict import open_image

    with pytest.raises(ConfigError) as e:
        get_model_info("lenett")
    assert str(e.value) == _cli_message(["summary", "lenett"], capsys)

    with pytest.raises(ValueError) as e:  # ConfigError is a ValueError
        TrainConfig(model="lenet", epochs=0).validate()
    assert str(e.value) == _cli_message(_argv(T + " --epochs 0", files), capsys)

    with pytest.raises(CheckpointError) as e:
        load_checkpoint(files["truncated"])
    assert str(e.value) == _cli_message(["eval", str(files["truncated"])], capsys)

    with pytest.raises(CheckpointError) as e:
        model_from_checkpoint(files["other_model"])
    assert str(e.value) == _cli_message(["eval", str(files["other_model"])], capsys)

    with pytest.raises(FileNotFoundError) as e:  # DataNotFoundError
        open_image(files["missing"])
    assert isinstance(e.value, CnnlabError)
    assert str(e.value) == _cli_message(["predict", str(files["ckpt"]), str(files["missing"])],
                                        capsys)

    with pytest.raises(ValueError, match="too large|megapixels"):
        open_image(files["bomb"])
    with pytest.raises(DataError, match="truncated"):
        DataModule("fashion-mnist", root=files["corrupt"])
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("fashion")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Trainer(TrainConfig(model="lenet", data_dir=str(files["dir"] / "nowhere")))
    with pytest.raises(ConfigError, match="larger than the 100 training images"):
        Trainer(TrainConfig(model="lenet-modern", dataset="synthetic", num_train=100,
                            batch_size=500, epochs=1), save=False).fit()
    with pytest.raises(ConfigError, match="at least 65x65"):
        create_model("alexnet", input_size=28)
    from cnnlab import summary

    with pytest.raises(ConfigError, match="does not accept input shape"):
        summary(create_model("lenet"), (1, 3, 28, 28))


def test_os_errors_are_one_line(files, capsys):
    # a folder that cannot be created (a file is in the way) is the OS's message, one line
    blocker = files["okimage"]
    rc = main(["data", "show", "--dataset", "synthetic", "--n", "2",
               "--out", str(blocker / "grid.png")])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and str(blocker) in line


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, capsys):
    # not bad input but a bug: still no traceback without --debug, and not exit 2
    import cnnlab.cli.models as cli_models

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(cli_models, "run_models", broken)
    assert main(["models"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "internal error" in line and "--debug" in line
    with pytest.raises(KeyError):
        main(["--debug", "models"])


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: "
                 "you tried to allocate 4294967296 bytes."),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    # torch 2.13's words
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                 "allocate memory: you tried to allocate 25769803776 bytes. Error code 12 "
                 "(Cannot allocate memory)"),
    RuntimeError("Storage size calculation overflowed with sizes=[128, 1, 2147483648, "
                 "2147483648]"),
    OSError(12, "Cannot allocate memory"),
    ValueError("array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum "
               "possible size."),
    RuntimeError("std::bad_alloc"),
], ids=["MemoryError", "cpu-allocator", "cuda", "torch-2.13", "size-overflow", "ENOMEM",
        "numpy-too-big", "bad_alloc"])
def test_out_of_memory_is_bad_input_not_a_bug(monkeypatch, capsys, error):
    # too large a --batch-size or --resize for this machine: one line, exit 2, what to do
    import cnnlab.cli.models as cli_models

    def hungry(args):
        raise error

    monkeypatch.setattr(cli_models, "run_models", hungry)
    assert main(["models"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "out of memory" in line and "--batch-size" in line


def _api_cases():
    from torch import nn

    from cnnlab import d2l, ops, summary, viz
    from cnnlab.data import DataModule, load_dataset
    from cnnlab.train import TrainConfig, Trainer
    from cnnlab.train.evaluate import evaluate_checkpoint
    from cnnlab.train.predict import predict_files

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))
    X4, y4 = torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)

    def fit(**kw):
        base = dict(model="lenet-modern", dataset="synthetic", epochs=1, num_train=64,
                    batch_size=32)
        return Trainer(TrainConfig(**{**base, **kw}), save=False).fit()

    return [
        ("lr-as-text", lambda: fit(lr="0.1"), ValueError, r"lr must be a number"),
        ("epochs-as-text", lambda: TrainConfig(epochs="3").validate(), ValueError, r"epochs"),
        ("flag-as-text", lambda: TrainConfig(normalize="yes").validate(), ValueError,
         r"normalize must be True or False"),
        ("extra-not-dict", lambda: fit(extra=[1]), ValueError, r"extra must be a dict"),
        ("extra-unknown", lambda: fit(extra={"width": 2}), ValueError, r"width"),
        ("out-dir-number", lambda: fit(out_dir=5), ValueError, r"out_dir must be a string"),
        ("model-none", lambda: fit(model=None), ValueError, r"model must be a string"),
        ("dataset-none", lambda: load_dataset(None), ValueError, r"unknown dataset"),
        ("datamodule-none", lambda: DataModule(None), ValueError, r"unknown dataset"),
        ("datamodule-batch", lambda: DataModule("synthetic", batch_size=0), ValueError,
         r"batch_size"),
        ("checkpoint-none", lambda: load_checkpoint(None), CheckpointError, r"str or os"),
        ("num-classes-zero", lambda: create_model("lenet", num_classes=0), ValueError,
         r"num_classes"),
        ("conv-channels", lambda: ops.conv2d(torch.zeros(1, 3, 8, 8), torch.zeros(4, 2, 3, 3)),
         ValueError, r"channel"),
        ("corr2d-kernel-too-big", lambda: ops.corr2d(torch.zeros(2, 2), torch.zeros(3, 3)),
         ValueError, r"no larger than X"),
        # round two: a str where a number belongs, odd objects where a model, a config or a
        # tensor belongs: one error naming the argument, never a deep TypeError/AttributeError
        ("datamodule-resize-text", lambda: DataModule("synthetic", resize="28"), ValueError,
         r"resize must be a positive integer, got '28'"),
        ("datamodule-resize-pair-text", lambda: DataModule("synthetic", resize=(28, "28")),
         ValueError, r"resize"),
        ("datamodule-resize-float", lambda: DataModule("synthetic", resize=28.0), ValueError,
         r"resize"),
        ("datamodule-resize-huge", lambda: DataModule("synthetic", resize=2**31), ValueError,
         r"needs .*more than .*memory"),
        ("datamodule-batch-text", lambda: DataModule("synthetic", batch_size="32"), ValueError,
         r"batch_size"),
        ("datamodule-num-train-bool", lambda: DataModule("synthetic", num_train=True),
         ValueError, r"num_train"),
        ("datamodule-normalize-text", lambda: DataModule("synthetic", normalize="no"),
         ValueError, r"normalize must be True or False"),
        ("datamodule-device", lambda: DataModule("synthetic", device="gpu0"), ValueError,
         r"device must be"),
        ("datamodule-root-number", lambda: DataModule("mnist", root=5), ValueError, r"root"),
        ("datamodule-seed-text", lambda: DataModule("synthetic", seed="1"), ValueError,
         r"seed"),
        ("model-input-size-text", lambda: create_model("lenet", input_size="28"), ValueError,
         r"input_size must be a positive integer"),
        ("model-input-size-huge", lambda: create_model("lenet", input_size=10**6), ValueError,
         r"weights of lenet.*needs .*more than .*memory"),
        ("model-classes-huge", lambda: create_model("resnet18", num_classes=10**12),
         ValueError, r"num_classes"),
        ("model-scratch-text", lambda: create_model("lenet", scratch="yes"), ValueError,
         r"scratch must be True or False"),
        ("trainer-config-text", lambda: Trainer("lenet"), ValueError,
         r"config must be a TrainConfig"),
        ("trainer-config-dict", lambda: Trainer({"model": "lenet"}), ValueError,
         r"config must be a TrainConfig"),
        ("trainer-model-text", lambda: Trainer(TrainConfig(), model="lenet"), ValueError,
         r"model must be a torch.nn.Module"),
        ("trainer-data-text", lambda: Trainer(TrainConfig(), data="synthetic"), ValueError,
         r"data must be a DataModule"),
        ("trainer-callbacks-number", lambda: Trainer(TrainConfig(), callbacks=5), ValueError,
         r"callbacks"),
        ("trainer-resume-number", lambda: Trainer(TrainConfig(), resume=5), ValueError,
         r"resume must be a checkpoint path"),
        ("config-threads-absurd", lambda: TrainConfig(num_threads=100000).validate(),
         ValueError, r"num_threads must be a positive integer \(at most"),
        ("config-resize-text", lambda: TrainConfig(resize="28").validate(), ValueError,
         r"resize must be a positive integer"),
        ("viz-kernels-not-a-model", lambda: viz.kernels("lenet"), ValueError,
         r"model must be a torch.nn.Module"),
        ("viz-errors-not-a-model", lambda: viz.errors("lenet", (X4, y4)), ValueError,
         r"model must be a torch.nn.Module"),
        ("viz-errors-top-huge", lambda: viz.errors(net, (X4, y4), top=10**6), ValueError,
         r"top must be a positive integer \(at most 256\)"),
        ("viz-errors-data-text", lambda: viz.errors(net, "test"), ValueError, r"data must be"),
        ("viz-confusion-max-images-text", lambda: viz.confusion(net, (X4, y4), max_images="3"),
         ValueError, r"max_images"),
        ("viz-features-image-text", lambda: viz.features(net, "shoe.png"), ValueError,
         r"image must be a C x H x W tensor"),
        ("viz-features-channels-huge", lambda: viz.features(net, X4[0], channels=10**6),
         ValueError, r"channels"),
        ("viz-activations-not-a-model", lambda: viz.activations(None, (X4, y4)), ValueError,
         r"model must be"),
        ("viz-load-image-number", lambda: viz.load_image(5), ValueError, r"path must be"),
        ("ops-corr2d-text", lambda: ops.corr2d("X", "K"), ValueError,
         r"X must be a torch.Tensor"),
        ("ops-multi-in-text", lambda: ops.corr2d_multi_in("X", "K"), ValueError,
         r"X must be a torch.Tensor"),
        ("ops-multi-in-out-list", lambda: ops.corr2d_multi_in_out(torch.zeros(1, 3, 3), [1]),
         ValueError, r"K must be a torch.Tensor"),
        ("ops-1x1-text", lambda: ops.corr2d_multi_in_out_1x1("X", "K"), ValueError,
         r"X must be a torch.Tensor"),
        ("ops-conv-groups-text", lambda: ops.conv2d(torch.zeros(1, 2, 5, 5),
                                                    torch.zeros(2, 1, 3, 3), groups="2"),
         ValueError, r"groups must be a positive integer"),
        ("summary-not-a-model", lambda: summary("lenet", (1, 1, 28, 28)), ValueError,
         r"model must be a torch.nn.Module"),
        ("summary-shape-text", lambda: summary(create_model("lenet"), "1,1,28,28"), ValueError,
         r"input_shape must be"),
        ("d2l-max-epochs-text", lambda: d2l.Trainer(max_epochs="3"), ValueError,
         r"max_epochs must be a non-negative integer"),
        ("d2l-max-epochs-negative", lambda: d2l.Trainer(max_epochs=-1), ValueError,
         r"max_epochs"),
        ("evaluate-limit-text", lambda: evaluate_checkpoint("x.pt", limit_batches="2"),
         ValueError, r"limit_batches must be a positive integer"),
        ("predict-topk-text", lambda: predict_files("x.pt", [], topk="3"), ValueError,
         r"topk must be a positive integer"),
    ]


@pytest.mark.parametrize("case", range(len(_api_cases())),
                         ids=[c[0] for c in _api_cases()])
def test_python_api_bad_input_raises_a_cnnlab_error(case):
    _, call, kind, wanted = _api_cases()[case]
    with pytest.raises(kind, match=wanted) as info:
        call()
    assert isinstance(info.value, CnnlabError) and "\n" not in str(info.value)


def test_a_pathlib_path_is_fine_for_folders(tmp_path):
    from cnnlab.train import TrainConfig

    cfg = TrainConfig(out_dir=tmp_path / "run", data_dir=tmp_path).validate()
    assert cfg.out_dir == str(tmp_path / "run") and json.dumps(cfg.to_dict())


def test_a_closed_pipe_is_not_an_error_message(monkeypatch, capsys):
    # `cnnlab models | head -1`: the reader went away; say nothing, exit like SIGPIPE
    import cnnlab.cli.models as cli_models

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli_models, "run_models", closed)
    assert main(["models"]) == 141
    assert capsys.readouterr().err == ""


def test_d2l_zero_epochs_is_a_value_not_a_default():
    # d2l.Trainer(max_epochs=0).fit(...) trains nothing (the book's loop runs no epoch);
    # it used to fall back to cnnlab's default of 10 epochs
    from cnnlab import d2l

    data = d2l.FashionMNIST(batch_size=256)
    model = d2l.LeNet(lr=0.1)
    trainer = d2l.Trainer(max_epochs=0)
    trainer.fit(model, data)
    assert trainer.history == []
    # the book's LeNet has lazy layers: had one batch gone through, they would be set
    assert any(isinstance(p, torch.nn.parameter.UninitializedParameter)
               for p in model.parameters())


@pytest.mark.parametrize("change", [
    {"history": [{"epoch": 1, "train_loss": "not a number"}]},
    {"image_size": [0, 28]},
    {"normalization": {"mean": [0.1, 0.2], "std": [0.3, 0.4]}},
], ids=["history-row", "image-size", "normalization"])
def test_a_bad_checkpoint_value_is_refused_before_anything_is_written(files, tmp_path, capsys,
                                                                      change):
    # the run directory of a checkpoint with one bad value: --resume auto must refuse it
    # before config.json or metrics.csv are rewritten from it
    import shutil

    run = tmp_path / "run"
    shutil.copytree(files["run"], run)
    good = load_checkpoint(run / "last.pt")
    torch.save({**good, **change}, run / "last.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main([*_argv(T, files), "--num-train", "64", "--batch-size", "32", "--epochs", "2",
                 "--resume", "auto", "--out", str(run)]) == 2
    assert "malformed" in _one_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
