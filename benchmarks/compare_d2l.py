"""Real d2l 1.0.3 vs `cnnlab train lenet`, same book settings, one run: the ratio table.

Both sides train LeNet (book 7.6: sigmoid, average pooling, Xavier init) for the
same epochs with batch 128 and SGD lr 0.1 on Fashion-MNIST 28x28, one after the
other in this session, each in a fresh process:

* d2l: the users' notebook cell (tests/notebooks/ch7_6_lenet.py) under
  /opt/d2l-venv/bin/python, run by ``benchmarks/d2l_lenet.py``'s harness (reused,
  not duplicated); its wall time covers the cell (data module, init, fit with
  d2l's per-epoch validation and plotting), not the interpreter start-up;
* cnnlab: ``cnnlab train lenet --epochs N`` as a user types it; its wall time is
  the whole process (start-up, imports, reading the gz files, training with
  per-epoch test-set evaluation, checkpoints, plots), so the ratio is conservative.

Reports wall time, final validation accuracy and the ratio. Setup of the d2l venv:
benchmarks/README-d2l.md. Appends to benchmarks/results/compare_d2l.md.

    python benchmarks/compare_d2l.py                # 10 epochs, both sides
    python benchmarks/compare_d2l.py --epochs 2     # shorter
    python benchmarks/compare_d2l.py --quick        # smoke: cnnlab side only, synthetic data
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compare_d2l.md"
D2L_PY = Path("/opt/d2l-venv/bin/python")
D2L_CWD = Path("/opt/d2l-work/x")
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) .*val_acc ([0-9.]+)")


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": cpu, "torch": torch.__version__}


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_d2l(epochs: int, timeout: int) -> dict:
    """The notebook cell under real d2l, through benchmarks/d2l_lenet.py's harness."""
    if not (D2L_PY.exists() and D2L_CWD.exists()):
        raise SystemExit(f"no d2l venv at {D2L_PY} or data layout at {D2L_CWD}: "
                         "see benchmarks/README-d2l.md, or pass --quick")
    spec = importlib.util.spec_from_file_location("d2l_lenet", ROOT / "benchmarks/d2l_lenet.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    r = mod.run(str(D2L_PY), D2L_CWD, epochs, True, timeout)
    return {"wall": r["wall_s"], "acc": r["val_acc"], "torch": r["torch"],
            "what": "notebook cell (data module, init, fit)"}


def run_cnnlab(epochs: int, extra: list[str], timeout: int) -> dict:
    """`cnnlab train lenet` as a user runs it; wall time of the whole process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cnnlab", "train", "lenet", "--epochs", str(epochs),
               "--out", str(Path(tmp) / "run"), *extra]
        start = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp,
                           env=dict(os.environ, MPLBACKEND="Agg"))
        wall = time.perf_counter() - start
    accs = [float(m.group(3)) for m in map(EPOCH_LINE.match, r.stdout.splitlines()) if m]
    if r.returncode != 0 or not accs:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {r.returncode}):\n{r.stderr[-3000:]}")
    import torch

    return {"wall": wall, "acc": accs[-1], "torch": torch.__version__,
            "what": "whole process (start-up, data, fit, eval, checkpoints)",
            "cmd": " ".join(["cnnlab", "train", "lenet", "--epochs", str(epochs), *extra])}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs on both sides (book: 10)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: cnnlab side only on synthetic data; writes nothing")
    p.add_argument("--threads", type=int, default=None, help="cnnlab's --num-threads")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per side")
    args = p.parse_args(argv)
    extra = ["--num-threads", str(args.threads)] if args.threads else []
    if args.quick:
        extra += ["--dataset", "synthetic", "--num-train", "256", "--limit-val-batches", "2"]
        args.epochs = 1
    info, before = machine(), load_avg()
    results = {}
    if not args.quick:
        results["d2l 1.0.3"] = run_d2l(args.epochs, args.timeout)
        print("d2l 1.0.3", results["d2l 1.0.3"], flush=True)
    results["cnnlab"] = run_cnnlab(args.epochs, extra, args.timeout)
    print("cnnlab", results["cnnlab"], flush=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"## d2l 1.0.3 vs cnnlab, LeNet book settings, {now:%Y-%m-%d %H:%M} UTC", "",
             f"- command: `{('python benchmarks/compare_d2l.py ' + ' '.join(argv)).rstrip()}`",
             f"- machine: {info['nproc']} cores, {info['cpu']}, no GPU",
             f"- load average (1, 5, 15 min) before: {before}; after: {load_avg()}",
             f"- LeNet, {args.epochs} epochs, batch 128, SGD lr 0.1, Fashion-MNIST 28x28; "
             "each side in a fresh process, one after the other", "",
             "| side | torch | wall time s | s/epoch | final val acc | timed |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['torch']} | {r['wall']:.1f} | {r['wall'] / args.epochs:.1f} "
                     f"| {r['acc']:.4f} | {r['what']} |")
    if len(results) == 2:
        d, c = results["d2l 1.0.3"], results["cnnlab"]
        lines += ["", f"**ratio: cnnlab is {d['wall'] / c['wall']:.2f}x faster than d2l "
                  f"(wall time), val acc {c['acc']:.4f} vs {d['acc']:.4f} "
                  f"({'>=' if c['acc'] >= d['acc'] else '<'} d2l).**"]
    text = "\n".join(lines) + "\n"
    from _results import finish  # sibling module; scripts run from benchmarks/

    return finish(RESULTS, text, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
