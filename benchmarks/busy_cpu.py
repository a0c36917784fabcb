"""LeNet epoch time on a busy CPU: cnnlab's default thread choice against every fixed count.

Each measurement is one ``cnnlab.train.Trainer`` run of the book's LeNet (section 7.6
settings, batch 128) in a fresh process, over ``--batches`` training batches per epoch
for ``--epochs`` epochs; its figure is the median epoch time of the epochs after the
first (the first one pays for warm-up). Variants:

* ``default``: no ``--num-threads``: the threads follow the free CPUs
  (:mod:`cnnlab.train.threads`);
* ``before``: the same with ``CNNLAB_ADAPTIVE_THREADS=0``, i.e. PyTorch's own default,
  what cnnlab did before the thread choice followed the load;
* ``threads=N`` for N = 1 .. the CPUs this process may use: ``--num-threads N``.

Each is run on the idle machine and with one competing busy process (a Python
``while True`` loop), in interleaved rounds, all in ONE run of this script so that the
ratios compare like with like. Targets: under load, ``default`` at most 1.2x the best
fixed count; idle, ``default`` within 1.05x of ``before``. Writes its section of
benchmarks/results/busy_cpu.md (the latest run per machine).

    python benchmarks/busy_cpu.py                 # 3 rounds, 60 batches, 4 epochs
    python benchmarks/busy_cpu.py --no-write      # print only (e.g. on a shared machine)
    python benchmarks/busy_cpu.py --quick         # smoke run (threads=1 only), writes nothing
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "busy_cpu.md"
BUSY = "while True:\n    pass\n"


def _worker(args: argparse.Namespace) -> int:
    """One measurement (run in its own process); prints one JSON line."""
    import torch

    from cnnlab.train import TrainConfig, Trainer

    dataset = args.dataset
    cfg = TrainConfig(model="lenet", dataset=dataset, epochs=args.epochs, batch_size=128,
                      num_train=args.batches * 128, limit_val_batches=1,
                      num_threads=args.threads or None)
    used = []

    class Threads:
        def on_epoch_end(self, trainer, row):
            used.append(torch.get_num_threads())

    trainer = Trainer(cfg, callbacks=[Threads()], save=False, live_plot=False)
    history = trainer.fit()
    # the training part of each epoch (images / images_per_s), not the validation batch
    secs = [args.batches * 128 / r["images_per_s"] for r in history]
    print(json.dumps({"seconds": secs, "threads": used}), flush=True)
    return 0


def _measure(variant: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["CNNLAB_ADAPTIVE_THREADS"] = "0" if variant == "before" else "1"
    threads = int(variant.split("=")[1]) if variant.startswith("threads=") else 0
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads",
           str(threads), "--epochs", str(args.epochs), "--batches", str(args.batches),
           "--dataset", args.dataset]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: the worker failed: {proc.stderr.strip()[-500:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    later = got["seconds"][1:] or got["seconds"]
    return {"epoch_s": statistics.median(later), "threads": got["threads"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batches", type=int, default=60, help="training batches per epoch")
    p.add_argument("--dataset", default=None,
                   help="default: fashion-mnist (synthetic with --quick)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run; writes nothing")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs, args.batches = 1, 2, 2
    args.dataset = args.dataset or ("synthetic" if args.quick else "fashion-mnist")
    if args.worker:
        return _worker(args)

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    fixed = [1] if args.quick else range(1, cpus + 1)
    variants = ["default", "before", *[f"threads={n}" for n in fixed]]
    results: dict[tuple[str, str], list[dict]] = {}
    started = time.perf_counter()
    for load in ("idle", "busy"):
        competitor = None
        if load == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", BUSY])
            time.sleep(0.5)
        try:
            for r in range(args.rounds):
                for v in variants:
                    got = _measure(v, args)
                    results.setdefault((load, v), []).append(got)
                    print(f"  {load:<4} round {r + 1}/{args.rounds}  {v:<10} "
                          f"{got['epoch_s']:.3f} s/epoch  threads {got['threads']}", flush=True)
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()

    med = {k: statistics.median(x["epoch_s"] for x in v) for k, v in results.items()}
    lines = [f"# {datetime.date.today()}: LeNet, batch 128, {args.batches} batches per epoch, "
             f"{args.epochs} epochs, {args.rounds} rounds, {args.dataset}, {cpus} CPUs",
             "", "| load | variant | s per epoch (median) | threads per epoch (last round) |",
             "|---|---|---|---|"]
    for (load, v), runs in results.items():
        lines.append(f"| {load} | {v} | {med[(load, v)]:.3f} | {runs[-1]['threads']} |")
    best = min(med[("busy", v)] for v in variants if v.startswith("threads="))
    busy_ratio = med[("busy", "default")] / best
    idle_ratio = med[("idle", "default")] / med[("idle", "before")]
    before_busy = med[("busy", "before")] / best
    lines += ["",
              f"busy: default / best fixed = {busy_ratio:.2f}x (target <= 1.2x); "
              f"before / best fixed = {before_busy:.2f}x",
              f"idle: default / before = {idle_ratio:.2f}x (target <= 1.05x)",
              "", f"command: python benchmarks/busy_cpu.py {' '.join(sys.argv[1:])}".rstrip()
              + f"  ({time.perf_counter() - started:.0f} s)"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if not (args.quick or args.no_write):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _results import write_results

        write_results(RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
