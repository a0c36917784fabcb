"""The book's LeNet run through two cnnlab source trees, in one run: before/after a change.

Each round runs, for this tree and for ``--before SRC`` (another tree's folder holding
``cnnlab/``, e.g. ``git archive <commit> | tar -x -C /tmp/before``, then
``--before /tmp/before/src``), in alternation so that a busy machine affects both alike:

* ``cnnlab train lenet --epochs E`` (the CLI, real Fashion-MNIST): the seconds of the
  training epochs the trainer prints, and the whole process's wall time;
* the book's 7.6 cell through ``from cnnlab import d2l`` (``d2l.Trainer(max_epochs=E)``
  fitting ``d2l.LeNet`` on ``d2l.FashionMNIST(batch_size=128)``): the wall time of
  ``fit``, and of the whole process.

Both trees share this interpreter and its packages (torch); each process puts its tree
first on ``PYTHONPATH``, and each tree's native kernels build into the user cache
under the hash of their sources. Ratios are after / before of the medians. Writes its
section of benchmarks/results/before_after.md (the latest run per machine).

    python benchmarks/before_after.py --before /tmp/before/src            # 3 rounds, 2 epochs
    python benchmarks/before_after.py --before /tmp/before/src --quick    # smoke, writes nothing
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "before_after.md"
EPOCH_LINE = re.compile(r"^epoch (\d+)/\d+ .*?\s([0-9.]+)s\s+[0-9]+ img/s", re.M)

# The book's 7.6 cell, as a learner runs it (the import is the only change).
D2L_CELL = """
import os, time
os.environ.setdefault("MPLBACKEND", "Agg")
from cnnlab import d2l
import torch
if {threads}:
    torch.set_num_threads({threads})
trainer = d2l.Trainer(max_epochs={epochs}, num_gpus=0)
data = d2l.FashionMNIST(batch_size=128)
model = d2l.LeNet(lr=0.1)
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
t = time.perf_counter()
trainer.fit(model, data)
print("FIT_SECONDS", time.perf_counter() - t)
"""


def _env(src: Path, quick: bool, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), MPLBACKEND="Agg")
    # each tree's native library in its own cache: cnnlab.native removes other builds for
    # this CPU from its cache, so one shared cache would rebuild at every alternation
    env["CNNLAB_CACHE"] = str(Path(tempfile.gettempdir()) / "cnnlab-before-after"
                              / hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:12])
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both trees load compiled modules, as users do
    if threads:  # a fixed count: neither tree follows the machine's load
        env["CNNLAB_ADAPTIVE_THREADS"] = "0"
    if quick:
        env["CNNLAB_D2L_LIMIT_BATCHES"] = "5"
    return env


def run_cli(src: Path, epochs: int, quick: bool, timeout: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "cnnlab", "train", "lenet", "--epochs", str(epochs),
               "--out", out]
        if quick:
            cmd += ["--limit-train-batches", "5", "--limit-val-batches", "2"]
        if threads:
            cmd += ["--num-threads", str(threads)]
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=_env(src, quick, threads),
                             timeout=timeout, cwd=out)
        wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{src}: cnnlab train failed:\n{res.stderr[-2000:]}")
    epochs_s = [float(m.group(2)) for m in EPOCH_LINE.finditer(res.stdout)]
    if len(epochs_s) != epochs:
        raise SystemExit(f"{src}: expected {epochs} epoch lines in:\n{res.stdout[-2000:]}")
    return {"train": sum(epochs_s), "wall": wall}


def run_d2l(src: Path, epochs: int, quick: bool, timeout: int, threads: int) -> dict:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([sys.executable, "-c", D2L_CELL.format(epochs=epochs,
                                                                    threads=threads)],
                             capture_output=True, text=True, env=_env(src, quick, threads),
                             timeout=timeout, cwd=cwd)
    wall = time.perf_counter() - t
    m = re.search(r"FIT_SECONDS ([0-9.]+)", res.stdout)
    if res.returncode != 0 or m is None:
        raise SystemExit(f"{src}: the d2l cell failed:\n{res.stderr[-2000:]}")
    return {"train": float(m.group(1)), "wall": wall}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, metavar="SRC",
                   help="the other tree's folder holding cnnlab/ (e.g. /tmp/before/src)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="fixed torch threads for both trees (default: each tree's own choice, "
                        "which since the busy-CPU work follows the machine's load)")
    p.add_argument("--quick", action="store_true", help="smoke run (5 batches); writes nothing")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per process")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from _results import finish, machine_info

    trees = {"after": ROOT / "src", "before": Path(args.before).resolve()}
    if not (trees["before"] / "cnnlab" / "__init__.py").is_file():
        p.error(f"--before: {args.before} holds no cnnlab/ package")
    rounds = 1 if args.quick else args.rounds
    epochs = 1 if args.quick else args.epochs
    load0 = machine_info()["load"]
    res: dict = {(k, w): [] for k in trees for w in ("cli", "d2l")}
    for r in range(rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            for way, run in (("cli", run_cli), ("d2l", run_d2l)):
                res[name, way].append(run(trees[name], epochs, args.quick, args.timeout,
                                          args.threads))

    def med(name, way, key):
        return statistics.median(x[key] for x in res[name, way])

    now = datetime.datetime.now(datetime.timezone.utc)
    info = machine_info()
    lines = [f"## Before/after, {now:%Y-%m-%d %H:%M} UTC", "",
             f"- command: `python benchmarks/before_after.py {' '.join(sys.argv[1:])}`",
             f"- machine: {info['nproc']} cores, {info['cpu']}; torch {info['torch']}",
             f"- load average (1, 5, 15 min) before: {load0}; after: {info['load']}",
             f"- after = {trees['after']}, before = {trees['before']}; LeNet (book 7.6), "
             f"{epochs} epoch(s), batch 128, real Fashion-MNIST; {rounds} alternating "
             f"round(s), medians; threads: {args.threads or 'each tree its own choice'}", "",
             "| run | before (s) | after (s) | after / before |", "|---|---|---|---|"]
    for way, label in (("cli", "`cnnlab train lenet`"), ("d2l", "`from cnnlab import d2l`")):
        for key, what in (("train", "training"), ("wall", "whole process")):
            b, a = med("before", way, key), med("after", way, key)
            lines.append(f"| {label}: {what} | {b:.2f} | {a:.2f} | {a / b:.3f} |")
    if not args.quick and not RESULTS.exists():
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("# Before/after a change: the book's LeNet run through two trees\n\n"
                           "The latest run of `benchmarks/before_after.py` on each machine "
                           "(earlier runs: git history of this file).\n\n")
    return finish(RESULTS, "\n".join(lines), args.quick)


if __name__ == "__main__":
    sys.exit(main())
