"""`make gpu-check`: everything to verify the first time an NVIDIA GPU is at hand, in one run.

For a machine with an NVIDIA GPU, PyTorch already installed and no network; finishes
within 8 minutes (each stage gets what is left of the budget), prints one table and
writes it into benchmarks/results/gpu.md. Stages, in order:

1. the tests marked ``gpu`` (tests/test_gpu.py), one row per test;
2. ResNet-18 at 96x96 (book 8.6: batch 128, SGD lr 0.01), one epoch of Fashion-MNIST:
   ``cnnlab train resnet18 --epochs 1`` in a fresh process (epoch time, images/s, and
   TFLOP/s against the GPU's peak); then the users' ResNet cell
   (tests/notebooks/ch8_6_resnet.py, ``max_epochs=1``) under cnnlab.d2l and under the
   real d2l 1.0.3 pipeline, the same cell text in fresh processes, and their ratio. d2l
   needs torchvision (usually preinstalled on GPU machines); without a d2l install, a
   d2l wheel found as .whl/d2l-*.whl (or $D2L_WHEEL) is unpacked with
   ``pip install --no-deps --no-index --target`` into a temporary folder;
3. ``cnnlab train --recipe fast-gpu`` as a user types it: whole-process time (start-up
   and compilation included) until the validation accuracy first reaches 94% and 95.5%.

Data: the four Fashion-MNIST files in ``data/fashion-mnist`` of the checkout (ignored
by git); prepare them once with ``mkdir -p data/fashion-mnist && cp
/usr/share/datasets/fashion-mnist/* data/fashion-mnist/`` or, where there is network,
``cnnlab data fetch fashion-mnist --data-dir data/fashion-mnist``. Every process runs
with CNNLAB_DATA pointing there and CNNLAB_NO_DOWNLOAD=1; without the files a stage
that needs them is skipped and says so.

    python benchmarks/gpu_check.py            # the whole check (make gpu-check)
    python benchmarks/gpu_check.py --smoke    # CPU, synthetic data, tiny sizes (a test runs it)
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from _results import write_results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "gpu.md"
BUDGET_S = 8 * 60 - 20  # the whole check, with a margin for writing the table
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) .*val_acc ([0-9.]+)")

# Nominal dense tensor-core peaks from NVIDIA's data sheets, TFLOP/s (no sparsity):
# (name pattern, label, 16-bit (bf16; fp16 on the T4), fp32 convolutions as cuDNN runs
# them by default: TF32 from Ampere on, plain fp32 on the T4).
PEAKS = (
    (r"H200", "H200", 989.0, 494.0),
    (r"H100.*PCIe", "H100 PCIe", 756.0, 378.0),
    (r"H100", "H100 SXM", 989.0, 494.0),
    (r"A100", "A100", 312.0, 156.0),
    (r"\bL4\b", "L4", 121.0, 60.0),
    (r"\bT4\b", "T4", 65.0, 8.1),
)


def peak_of(device_name: str) -> tuple[str, float | None, float | None]:
    """(label, 16-bit peak, fp32/TF32 peak) of a GPU by its name; unknown: (name, None, None).

    >>> peak_of("NVIDIA H100 80GB HBM3")[:2], peak_of("Tesla T4")[0], peak_of("NVIDIA L40S")
    (('H100 SXM', 989.0), 'T4', ('NVIDIA L40S', None, None))
    """
    for pattern, label, half, single in PEAKS:
        if re.search(pattern, device_name):
            return label, half, single
    return device_name, None, None


class Check:
    """The run: its budget, environment, and the table's rows."""

    def __init__(self, smoke: bool, data_dir: Path):
        self.smoke = smoke
        # the smoke run checks the script, not the GPU: LeNet instead of ResNet-18
        self.model = "lenet" if smoke else "resnet18"
        self.cell = "ch7_6_lenet.py" if smoke else "ch8_6_resnet.py"
        self.start = time.perf_counter()
        self.rows: list[tuple[str, str, str, str]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="cnnlab-gpu-check-"))
        self.env = dict(os.environ, CNNLAB_NO_DOWNLOAD="1", MPLBACKEND="Agg",
                        PYTHONPATH=os.pathsep.join(filter(None, [
                            str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
        if smoke:  # the CPU even where a GPU is: the smoke run checks the script
            self.env["CUDA_VISIBLE_DEVICES"] = ""
        self.data_note = self._data(data_dir)

    def _data(self, data_dir: Path) -> str:
        from cnnlab.data.sources import find_dataset_dir

        if find_dataset_dir("fashion-mnist", data_dir) is not None:
            self.env["CNNLAB_DATA"] = str(data_dir)
            os.environ["CNNLAB_DATA"] = str(data_dir)
        os.environ["CNNLAB_NO_DOWNLOAD"] = "1"
        files = find_dataset_dir("fashion-mnist")
        self.fmnist = None if files is None else next(iter(files.values())).parent
        if self.fmnist is None:
            return (f"no Fashion-MNIST: put the four files in {data_dir} (cp "
                    "/usr/share/datasets/fashion-mnist/* there, or cnnlab data fetch "
                    f"fashion-mnist --data-dir {data_dir})")
        return f"Fashion-MNIST from {self.fmnist}"

    def left(self) -> float:
        return BUDGET_S - (time.perf_counter() - self.start)

    def timeout(self, wanted: float) -> float:
        return max(5.0, min(wanted, self.left()))

    def row(self, check: str, result: str, figure: str = "", note: str = "") -> None:
        self.rows.append((check, result, figure, note))
        print(f"  {check}: {result} {figure} {note}".rstrip(), flush=True)

    def run(self, argv: list[str], timeout: float, cwd: Path | None = None,
            env: dict | None = None) -> tuple[subprocess.CompletedProcess | None, float]:
        t0 = time.perf_counter()
        try:
            r = subprocess.run(argv, cwd=cwd or ROOT, env=env or self.env, text=True,
                               capture_output=True, timeout=self.timeout(timeout))
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - t0
        return r, time.perf_counter() - t0


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


# ----------------------------------------------------------------- 1. the gpu tests
def stage_tests(c: Check, device_name: str) -> None:
    xml = c.tmp / "junit.xml"
    r, wall = c.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p",
                     "no:cacheprovider", f"--junitxml={xml}", "tests/test_gpu.py"], 240)
    if r is None or not xml.exists():
        c.row("gpu tests", "FAILED" if r is not None else "TIMEOUT", f"{wall:.0f} s",
              last_line(r.stdout + r.stderr) if r is not None else "")
        return
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "?")
        seconds = f"{float(case.get('time', 0)):.1f} s"
        failed = case.find("failure") if case.find("failure") is not None \
            else case.find("error")
        skipped = case.find("skipped")
        if failed is not None:
            c.row(f"test {name}", "FAILED", seconds, (failed.get("message") or "")[:160])
        elif skipped is not None:
            c.row(f"test {name}", "skipped", "", (skipped.get("message") or "")[:160])
        else:
            c.row(f"test {name}", "passed", seconds)


# ------------------------------------------------------- 2. ResNet-18 at 96, one epoch
def train_flops_per_image(model: str, size: int) -> float:
    """Forward + backward FLOPs of one image (counted by shape on the meta device)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnnlab.models import create_model

    with torch.device("meta"):
        net = create_model(model, input_size=size)
        X = torch.empty(2, 1, size, size)
    with FlopCounterMode(display=False) as counter:
        net(X).sum().backward()
    return counter.get_total_flops() / 2


def tflops_note(flops_per_s: float, peak: float | None, kind: str) -> str:
    if peak is None:
        return f"{flops_per_s / 1e12:.3g} TFLOP/s (peak of this GPU unknown)"
    return f"{flops_per_s / 1e12:.3g} TFLOP/s = {100 * flops_per_s / 1e12 / peak:.1f}% " \
           f"of the {peak:g} TFLOP/s {kind} peak"


def stage_resnet_epoch(c: Check, device_name: str) -> float | None:
    """`cnnlab train resnet18 --epochs 1`: returns the epoch's seconds."""
    out = c.tmp / "train"
    if c.smoke:
        args = ["--dataset", "synthetic", "--num-train", "64", "--batch-size", "32",
                "--limit-val-batches", "1", "--device", "cpu", "--num-threads", "1"]
        size = 28
    elif c.fmnist is None:
        c.row("ResNet-18 @96, 1 epoch, cnnlab train", "skipped", "", c.data_note)
        return None
    else:
        args, size = ["--device", "cuda"], 96
    r, wall = c.run([sys.executable, "-m", "cnnlab", "train", c.model, "--epochs", "1",
                     "--out", str(out), *args], 120)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()
            if ln.strip()] if (out / "metrics.jsonl").exists() else []
    if r is None or r.returncode != 0 or not rows:
        c.row("ResNet-18 @96, 1 epoch, cnnlab train", "FAILED" if r else "TIMEOUT",
              f"{wall:.0f} s", last_line(r.stderr) if r else "")
        return None
    row = rows[-1]
    ips = float(row["images_per_s"])
    flops = train_flops_per_image(c.model, size) * ips
    _, _, single = peak_of(device_name)
    c.row(f"{c.model} @{size}, 1 epoch, cnnlab train (book settings, fp32)", "ok",
          f"epoch {row['seconds']:.1f} s, {ips:.0f} img/s, val_acc {row['val_acc']:.4f}",
          f"{tflops_note(flops, single, 'TF32/fp32')}; whole process {wall:.0f} s")
    return float(row["seconds"])


HARNESS = r'''
import json, os, re, sys, time
import matplotlib
matplotlib.use("Agg")  # before d2l imports IPython's display: no notebook here
src = open(sys.argv[1]).read()
cells = re.split(r"^# %%(.*)$", src, flags=re.M)
ns = {"__name__": "__bench__"}
for i in range(1, len(cells), 2):
    tag, cell = cells[i].strip(), cells[i + 1]
    if tag != "[training]":
        exec(cell, ns)
        continue
    start = time.perf_counter()
    exec(cell, ns)
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    board = ns["model"].board
    print("RESULT " + json.dumps({"wall_s": wall,
                                  "val_acc": float(board.data["val_acc"][-1].y)}))
    break
'''


def resnet_cell(c: Check, real_d2l: bool) -> Path:
    text = (ROOT / "tests" / "notebooks" / c.cell).read_text()
    text = text.replace("max_epochs=10", "max_epochs=1")
    if real_d2l:
        text = text.replace("from cnnlab import d2l", "from d2l import torch as d2l")
    path = c.tmp / ("cell_d2l.py" if real_d2l else "cell_cnnlab.py")
    path.write_text(text)
    (c.tmp / "harness.py").write_text(HARNESS)
    return path


def d2l_env(c: Check) -> tuple[dict | None, str]:
    """An environment in which `from d2l import torch` works, or (None, why not)."""
    env = dict(c.env)
    probe = [sys.executable, "-c", "import torchvision; from d2l import torch"]
    r, _ = c.run(probe, 60, env=env)
    if r is not None and r.returncode == 0:
        return env, ""
    wheel = os.environ.get("D2L_WHEEL") or next(
        (str(p) for p in sorted((ROOT / ".whl").glob("d2l-*.whl"))), None)
    if wheel is None:
        return None, f"real d2l not importable ({last_line(r.stderr) if r else 'timeout'}); " \
                     "no d2l wheel in .whl/ or $D2L_WHEEL"
    target = c.tmp / "d2l-pkg"
    r, _ = c.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                  "--target", str(target), wheel], 120)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(target)])
    r, _ = c.run(probe, 60, env=env)
    if r is None or r.returncode != 0:
        return None, f"d2l from {Path(wheel).name} does not import: " \
                     f"{last_line(r.stderr) if r else 'timeout'}"
    return env, ""


def torchvision_layout(c: Check) -> Path:
    """A working folder whose ../data/FashionMNIST/raw holds the unzipped files (d2l's root)."""
    raw = c.tmp / "d2l-data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in c.fmnist.iterdir():
        if f.name.endswith(".gz"):
            with gzip.open(f) as src, open(raw / f.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif "ubyte" in f.name:
            shutil.copy(f, raw / f.name)
    work = c.tmp / "d2l-work" / "x"
    work.mkdir(parents=True, exist_ok=True)
    link = c.tmp / "d2l-work" / "data"
    if not link.exists():
        link.symlink_to(c.tmp / "d2l-data")
    return work


def run_cell(c: Check, label: str, real_d2l: bool, env: dict, cwd: Path) -> float | None:
    cell = resnet_cell(c, real_d2l)
    env = dict(env, CNNLAB_D2L_BOARD=str(c.tmp / "board.png"))
    if c.smoke:
        env["CNNLAB_D2L_LIMIT_BATCHES"] = "1"
    r, wall = c.run([sys.executable, str(c.tmp / "harness.py"), str(cell)], 150, cwd=cwd,
                    env=env)
    found = re.findall(r"^RESULT (.*)$", r.stdout, flags=re.M) if r else []
    if not found:
        c.row(label, "FAILED" if r else "TIMEOUT", f"{wall:.0f} s",
              last_line(r.stderr) if r else "")
        return None
    res = json.loads(found[-1])
    c.row(label, "ok", f"{res['wall_s']:.1f} s", f"val_acc {res['val_acc']:.4f}")
    return float(res["wall_s"])


def stage_d2l_cells(c: Check, device_name: str) -> None:
    what = f"users' {c.cell} training cell, 1 epoch"
    if c.fmnist is None:
        c.row(f"{what}, cnnlab.d2l and d2l 1.0.3", "skipped", "", c.data_note)
        return
    ours = run_cell(c, f"{what}, cnnlab.d2l", False, c.env, ROOT)
    env, why = d2l_env(c)
    if env is None:
        c.row(f"{what}, d2l 1.0.3", "skipped", "", why)
        return
    theirs = run_cell(c, f"{what}, d2l 1.0.3", True, env, torchvision_layout(c))
    if ours and theirs:
        c.row("d2l 1.0.3 / cnnlab.d2l, same cell", "ok", f"{theirs / ours:.2f}x",
              "wall time of the training cell, each in a fresh process")


# ------------------------------------------------------------- 3. the fast-gpu recipe
def stage_recipe(c: Check, device_name: str) -> None:
    label = "fast-gpu recipe, whole process"
    if c.smoke:
        args = [c.model, "--device", "cpu", "--dataset", "synthetic", "--num-train", "64",
                "--epochs", "1", "--resize", "28", "--batch-size", "32", "--no-compile",
                "--precision", "fp32", "--limit-val-batches", "1", "--num-threads", "1"]
    elif c.fmnist is None:
        c.row(label, "skipped", "", c.data_note)
        return
    else:
        args = []
    out = c.tmp / "fast-gpu"
    targets = {0.94: None, 0.955: None}
    best = 0.0
    t0 = time.perf_counter()
    with open(c.tmp / "fast-gpu.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--recipe",
                                 "fast-gpu", "--out", str(out), *args], cwd=ROOT,
                                env=c.env, stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = t0 + c.timeout(240)
        for line in proc.stdout:
            m = EPOCH_LINE.match(line)
            if m:
                acc, now = float(m.group(3)), time.perf_counter() - t0
                best = max(best, acc)
                for t in targets:
                    if targets[t] is None and acc >= t:
                        targets[t] = (now, int(m.group(1)))
            if all(v is not None for v in targets.values()) or time.perf_counter() > deadline:
                proc.terminate()  # what was to be measured is measured
                break
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, -15) and best == 0.0:
        c.row(label, "FAILED", f"{wall:.0f} s",
              last_line((c.tmp / "fast-gpu.err").read_text()))
        return
    for t, hit in targets.items():
        if hit is None:
            c.row(f"{label}: time to {t:.1%}", "not reached", f"best {best:.4f}",
                  f"after {wall:.0f} s")
        else:
            c.row(f"{label}: time to {t:.1%}", "ok", f"{hit[0]:.1f} s",
                  f"epoch {hit[1]}, start-up and compilation included")
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()
            if ln.strip()] if (out / "metrics.jsonl").exists() else []
    if rows:
        size = 28 if c.smoke else 64
        ips = max(float(r["images_per_s"]) for r in rows)
        half = peak_of(device_name)[1]
        flops = train_flops_per_image(c.model, size) * ips
        c.row(f"fast-gpu recipe @{size}, best epoch", "ok", f"{ips:.0f} img/s",
              tflops_note(flops, half, "16-bit"))


# --------------------------------------------------------------------------- report
def table(c: Check, header: list[str]) -> str:
    lines = [*header, "", "| check | result | figure | note |", "|---|---|---|---|"]
    for row in c.rows:
        lines.append("| " + " | ".join(s.replace("|", "/") for s in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true",
                   help="CPU, synthetic data, tiny sizes: checks the script itself")
    p.add_argument("--data-dir", type=Path, default=ROOT / "data" / "fashion-mnist",
                   help="folder with the four Fashion-MNIST files (data/fashion-mnist)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (gpu.md)")
    args = p.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("gpu-check: no CUDA GPU is visible to PyTorch (torch "
              f"{torch.__version__}); run it on a machine with an NVIDIA GPU, or pass "
              "--smoke", file=sys.stderr)
        return 2
    c = Check(args.smoke, args.data_dir)
    name = torch.cuda.get_device_name(0) if cuda else "no GPU (smoke run on the CPU)"
    label, half, single = peak_of(name)
    header = [f"## GPU check{' (smoke, CPU)' if args.smoke else ''}, "
              f"{datetime.date.today().isoformat()}", "",
              f"- device: {name}; peaks used: {label}, 16-bit {half or '?'} and "
              f"TF32/fp32 {single or '?'} TFLOP/s (dense, data sheet)",
              f"- torch {torch.__version__}, CUDA {torch.version.cuda}, Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} CPU cores",
              f"- data: {c.data_note}",
              "- command: `make gpu-check` (python benchmarks/gpu_check.py"
              f"{' --smoke' if args.smoke else ''})"]
    print("\n".join(header), flush=True)
    try:
        for stage in (stage_tests, stage_resnet_epoch, stage_d2l_cells, stage_recipe):
            t0 = time.perf_counter()
            stage(c, name)
            print(f"[{stage.__name__}: {time.perf_counter() - t0:.0f} s]", flush=True)
    finally:
        shutil.rmtree(c.tmp, ignore_errors=True)
    header.append(f"- whole check: {time.perf_counter() - c.start:.0f} s")
    text = table(c, header)
    print()
    print(text, end="")
    write_results(args.out, text)
    return 1 if any(r[1] in ("FAILED", "TIMEOUT") for r in c.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
