"""The users' LeNet training cell (d2l 7.6) under real d2l 1.0.3 and under cnnlab.d2l.

Both run the same cell text (tests/notebooks/ch7_6_lenet.py: 10 epochs, batch 128,
SGD lr 0.1, Fashion-MNIST 28x28), each in a fresh subprocess, one after the other in
this session: d2l with /opt/d2l-venv/bin/python from the layout of
benchmarks/README-d2l.md, cnnlab.d2l with this interpreter. Measured: wall time of
the training cell (data module, apply_init, fit) and the final val accuracy the
board shows. Writes benchmarks/results/d2l.md.

    python benchmarks/d2l_lenet.py              # the book's 10 epochs
    python benchmarks/d2l_lenet.py --epochs 2   # shorter
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
D2L_PY = Path("/opt/d2l-venv/bin/python")
D2L_CWD = Path("/opt/d2l-work/x")  # its ../data holds FashionMNIST/raw

HARNESS = r'''
import json, os, re, sys, time
# Pick the Agg backend before d2l imports IPython: matplotlib 3.7.2 (d2l's pin) would
# otherwise try an IPython display hook that current IPython no longer has.
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
matplotlib.pyplot.switch_backend("Agg")
src = open(sys.argv[1]).read()
cells = re.split(r"^# %%.*$", src, flags=re.M)[1:]
ns = {"__name__": "__bench__"}
for cell in cells[:-1]:  # imports, the LeNet class, the layer summary
    exec(cell, ns)
start = time.perf_counter()
exec(cells[-1], ns)      # the training cell
wall = time.perf_counter() - start
board = ns["model"].board
print("RESULT " + json.dumps({
    "wall_s": wall, "val_acc": float(board.data["val_acc"][-1].y),
    "val_loss": float(board.data["val_loss"][-1].y),
    "train_loss": float(board.data["train_loss"][-1].y),
    "torch": __import__("torch").__version__, "threads": __import__("torch").get_num_threads()}))
'''


def cell_source(epochs: int, real_d2l: bool) -> str:
    text = (ROOT / "tests/notebooks/ch7_6_lenet.py").read_text()
    text = text.replace("max_epochs=10", f"max_epochs={epochs}")
    if real_d2l:
        text = text.replace("from cnnlab import d2l", "from d2l import torch as d2l")
    return text


def run(python: str, cwd: Path, epochs: int, real_d2l: bool, timeout: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        nb, harness = Path(tmp) / "cell.py", Path(tmp) / "harness.py"
        nb.write_text(cell_source(epochs, real_d2l))
        harness.write_text(HARNESS)
        env = dict(os.environ, MPLBACKEND="Agg", CNNLAB_D2L_BOARD=str(Path(tmp) / "b.png"))
        for var in ("CNNLAB_D2L_MAX_EPOCHS", "CNNLAB_D2L_LIMIT_BATCHES"):
            env.pop(var, None)
        r = subprocess.run([python, str(harness), str(nb)], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=timeout)
    found = re.findall(r"^RESULT (.*)$", r.stdout, flags=re.M)
    if r.returncode != 0 or not found:
        raise SystemExit(f"{'d2l' if real_d2l else 'cnnlab.d2l'} run failed "
                         f"(rc {r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(found[-1])


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each; order ABBA... (cnnlab, d2l, d2l, cnnlab) so that a "
                         "drifting machine load hits both alike")
    ap.add_argument("--skip-d2l", action="store_true", help="only cnnlab.d2l")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/d2l.md"))
    args = ap.parse_args()
    if not args.skip_d2l and (not D2L_PY.exists() or not D2L_CWD.exists()):
        raise SystemExit(f"no d2l venv at {D2L_PY} / {D2L_CWD}: see benchmarks/README-d2l.md")
    load_before = os.getloadavg()
    order = []
    for i in range(args.repeat):
        pair = ["cnnlab.d2l", "d2l 1.0.3"] if i % 2 == 0 else ["d2l 1.0.3", "cnnlab.d2l"]
        order += [n for n in pair if not (args.skip_d2l and n == "d2l 1.0.3")]
    runs: dict[str, list[dict]] = {}
    for name in order:
        real = name == "d2l 1.0.3"
        r = run(str(D2L_PY) if real else sys.executable, D2L_CWD if real else ROOT,
                args.epochs, real, args.timeout)
        r["load"] = os.getloadavg()[0]
        runs.setdefault(name, []).append(r)
        print(name, r, flush=True)
    load_after = os.getloadavg()
    m = machine()
    cmd = "python benchmarks/d2l_lenet.py" + "".join([
        f" --epochs {args.epochs}" if args.epochs != 10 else "",
        f" --repeat {args.repeat}" if args.repeat != 1 else "",
        " --skip-d2l" if args.skip_d2l else ""])
    lines = [
        "## d2l LeNet training cell: d2l 1.0.3 vs cnnlab.d2l", "",
        f"Command: `{cmd}`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), no GPU used  ",
        f"Load average (1/5/15 min): before {' '.join(f'{x:.1f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.1f}' for x in load_after)} (a shared machine)", "",
        f"The cell of tests/notebooks/ch7_6_lenet.py: LeNet, {args.epochs} epoch(s), batch 128, "
        "SGD lr 0.1, Fashion-MNIST 28x28; each run in a fresh process, in the order "
        f"{', '.join(order)}. Wall time covers the whole cell (data module, apply_init, fit).",
        "",
        "| implementation | torch | run | wall time (s) | s/epoch | final val_acc "
        "| final val_loss | 1-min load at end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():
        for i, r in enumerate(rs, 1):
            lines.append(f"| {name} | {r['torch']} | {i} | {r['wall_s']:.1f} | "
                         f"{r['wall_s'] / args.epochs:.1f} | {r['val_acc']:.3f} | "
                         f"{r['val_loss']:.3f} | {r['load']:.1f} |")
    if len(runs) == 2:
        mean = {n: sum(r["wall_s"] for r in rs) / len(rs) for n, rs in runs.items()}
        ratio = mean["d2l 1.0.3"] / mean["cnnlab.d2l"]
        lines += ["", f"Mean wall time d2l 1.0.3 / cnnlab.d2l = {ratio:.2f} "
                  f"(> 1: cnnlab.d2l faster), same session."]
    from _results import write_results  # sibling module; scripts run from benchmarks/

    write_results(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
