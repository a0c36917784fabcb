"""One training cell of each d2l version, real d2l vs cnnlab's, in one run.

* d2l 1.0.3: the softmax-regression cell of tests/notebooks/ch4_softmax.py
  (``d2l.FashionMNIST(batch_size=256)``, ``d2l.SoftmaxRegression(10, lr=0.1)``,
  ``d2l.Trainer(max_epochs=N).fit``);
* d2l 0.17.6: the LeNet cell of tests/notebooks/v017_ch6_lenet.py
  (``load_data_fashion_mnist(256)``, ``train_ch6(net, ..., N, lr=0.9, try_gpu())``).

Each side runs the notebook's cells in a fresh subprocess (the real d2l from the
venv and folder layout of benchmarks/README-d2l.md, with only the import line
changed), the two sides of a cell one after the other; the wall time covers the
training cell only (data loading, fit, evaluation, plotting), not the imports.
Writes this script's section of benchmarks/results/compare_d2l.md.

    python benchmarks/compare_d2l_cells.py                 # the book's 10 epochs
    python benchmarks/compare_d2l_cells.py --epochs 3      # shorter
    python benchmarks/compare_d2l_cells.py --quick         # cnnlab side only, 1 epoch, 2 batches
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compare_d2l.md"
CELLS = {  # name -> (notebook, PYTHONPATH entry of the real d2l for it, cnnlab import line)
    "1.0.3 softmax regression (4.5)": ("ch4_softmax.py", "d2l103", "from cnnlab import d2l"),
    "0.17.6 LeNet train_ch6 (6.6)": ("v017_ch6_lenet.py", "d2l017",
                                      "from cnnlab import d2l017 as d2l"),
}

HARNESS = r'''
import json, re, sys, time, contextlib, io
import matplotlib
matplotlib.use("Agg")
src = open(sys.argv[1]).read()
cells = re.split(r"^# %%.*$", src, flags=re.M)[1:]
tags = re.findall(r"^# %%(.*)$", src, flags=re.M)
ns = {"__name__": "__bench__"}
for tag, cell in zip(tags[:-1], cells[:-1]):
    if "[training]" not in tag:
        exec(cell, ns)
out = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    exec(cells[-1], ns)          # the training cell
wall = time.perf_counter() - start
text = out.getvalue()
m = re.search(r"test acc ([0-9.]+)", text)
acc = float(m.group(1)) if m else float(ns["model"].board.data["val_acc"][-1].y)
print("RESULT " + json.dumps({"wall_s": wall, "acc": acc,
                              "lines": [l for l in text.splitlines() if "acc" in l or "/sec" in l],
                              "torch": __import__("torch").__version__}))
'''


def run_side(notebook: str, epochs: int, python: str, pythonpath: str | None, import_line: str,
             cwd: str, env_extra: dict[str, str], timeout: int) -> dict:
    text = (ROOT / "tests" / "notebooks" / notebook).read_text()
    text = text.replace("max_epochs=10", f"max_epochs={epochs}")
    text = text.replace("lr, num_epochs = 0.9, 10", f"lr, num_epochs = 0.9, {epochs}")
    if pythonpath is not None:  # the real d2l: only the import line changes
        text = text.replace(import_line, "from d2l import torch as d2l")
    with tempfile.TemporaryDirectory() as tmp:
        nb, harness = Path(tmp) / notebook, Path(tmp) / "harness.py"
        nb.write_text(text)
        harness.write_text(HARNESS)
        env = dict(os.environ, MPLBACKEND="Agg", **env_extra)
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        r = subprocess.run([python, str(harness), str(nb)], capture_output=True, text=True,
                           timeout=timeout, cwd=cwd or tmp, env=env)
    line = next((s for s in r.stdout.splitlines() if s.startswith("RESULT ")), None)
    if r.returncode != 0 or line is None:
        raise SystemExit(f"{python} {notebook} failed (rc {r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs of both cells (book: 10)")
    p.add_argument("--d2l-python", default="/tmp/d2lvenv/bin/python",
                   help="interpreter of the real d2l's venv (benchmarks/README-d2l.md)")
    p.add_argument("--d2l103", default="/tmp/d2l103", help="folder holding d2l 1.0.3")
    p.add_argument("--d2l017", default="/tmp/d2l0176", help="folder holding d2l 0.17.6")
    p.add_argument("--d2l-cwd", default="/tmp/d2lwork/x",
                   help="working folder of the real d2l (its ../data holds FashionMNIST/raw)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per side")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: cnnlab side only, 1 epoch of 2 batches; writes nothing")
    args = p.parse_args(argv)
    caps = {"CNNLAB_D2L_MAX_EPOCHS": "1", "CNNLAB_D2L_LIMIT_BATCHES": "2"} if args.quick else {}
    before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for name, (notebook, which, import_line) in CELLS.items():
        sides = {}
        if not args.quick:
            path = args.d2l103 if which == "d2l103" else args.d2l017
            sides["d2l"] = run_side(notebook, args.epochs, args.d2l_python, path, import_line,
                                    args.d2l_cwd, {}, args.timeout)
            print(name, "d2l", sides["d2l"], flush=True)
        sides["cnnlab"] = run_side(notebook, args.epochs, sys.executable, None, import_line,
                                   "", caps, args.timeout)
        print(name, "cnnlab", sides["cnnlab"], flush=True)
        rows.append((name, sides))
    now = datetime.datetime.now(datetime.timezone.utc)
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"## d2l training cells, real d2l vs cnnlab.d2l, {now:%Y-%m-%d %H:%M} UTC", "",
             f"- command: `{' '.join(['python benchmarks/compare_d2l_cells.py', *argv])}`",
             f"- load average (1, 5, 15 min) before: {before}; after: {after} (the runs "
             "themselves load it; the ratio, measured in one run, is the figure to quote)",
             f"- {args.epochs} epochs each; wall time of the training cell, each side in a "
             "fresh process, one after the other", "",
             "| cell | side | torch | wall time s | final test acc | ratio |",
             "|---|---|---|---|---|---|"]
    for name, sides in rows:
        c = sides["cnnlab"]
        d = sides.get("d2l")
        ratio = f"{d['wall_s'] / c['wall_s']:.2f}x" if d else "-"
        if d:
            lines.append(f"| {name} | d2l | {d['torch']} | {d['wall_s']:.1f} | {d['acc']:.3f} | |")
        lines.append(f"| {name} | cnnlab | {c['torch']} | {c['wall_s']:.1f} | {c['acc']:.3f} "
                     f"| {ratio} |")
    text = "\n".join(lines) + "\n"
    sys.path.insert(0, str(Path(__file__).parent))
    from _results import finish

    return finish(RESULTS, text, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
