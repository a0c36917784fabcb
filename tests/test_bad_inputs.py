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
    ("num-train-too-many", T + " --num-train 100000000", r"num_train must be an integer in"),
    ("threads-zero", T + " --num-threads 0", r"num_threads must be a positive integer"),
    ("augment-unknown", T + " --augment rotate", r"augment must be a comma list"),
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
    ("resume-changes-lr", T + " --resume {ckpt} --lr 0.5", r"used lr=.*drop --lr"),
    ("out-holds-a-run", T + " --out {run}", r"already holds a run.*--resume auto"),
    ("out-is-a-file", T + " --num-train 64 --batch-size 32 --out {okimage}", r"is a file"),
    ("shape-model-and-kernel", "shape --model lenet --kernel 3", r"not both"),
    ("shape-nothing", "shape", r"--input"),
    ("data-show-augment-test", "data show --dataset synthetic --augment crop --split test",
     r"--augment applies to training"),
    ("data-show-n-zero", "data show --dataset synthetic --n 0", r"--n must be between 1"),
    ("data-show-n-huge", "data show --dataset synthetic --n 1000000", r"--n must be between"),
    ("seed-too-large", T + " --seed 100000000000000000000000", r"seed must be an integer in"),
    ("reproduce-epochs-zero", "reproduce lenet --dataset synthetic --epochs 0",
     r"epochs must be a positive integer"),
]
if not torch.cuda.is_available():
    CASES.append(("cuda-without-gpu", T + " --device cuda", r"no CUDA GPU"))


def _argv(command: str, files: dict) -> list[str]:
    return command.format(**{k: str(v) for k, v in files.items()}).split()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert "Traceback" not in err
    return lines[0]


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
], ids=["MemoryError", "cpu-allocator", "cuda"])
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
    from cnnlab import ops
    from cnnlab.data import DataModule, load_dataset
    from cnnlab.train import TrainConfig, Trainer

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
