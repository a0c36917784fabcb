"""Milliseconds per LeNet training step (book 7.6 settings): eager PyTorch vs cnnlab's kernels.

One step = forward, cross-entropy, backward, SGD(lr 0.1) update on a batch of 128
28x28 images already in memory (no data loading). Variants, built from the same
initial weights and timed in interleaved rounds in one process so that the noisy,
shared machine affects them alike:

* ``eager``: ``cnnlab.models.create_model("lenet")`` as is (NCHW, oneDNN);
* ``channels_last``: the same with NHWC weights and input;
* ``channels_last weights``: NHWC weights, NCHW input;
* ``cnnlab kernels``: the first session's ``cnnlab.accel.kernels`` (no native code);
* ``channels_last weights + native`` / ``cnnlab kernels + native``: what
  ``cnnlab.accel.accelerate`` (so ``cnnlab train lenet`` on CPU) gives on 2+ threads /
  on one, with the ``cnnlab.native`` kernels.

All variants run with the glibc malloc limits ``cnnlab train`` sets on CPU
(``cnnlab.accel.keep_freed_memory``; ``--malloc-default`` leaves them). Also times
evaluation (forward without autograd, 128 images). Wall ms and CPU ms
(process time: excludes time taken by other processes, counts every thread) are
both reported; ratios are against ``eager``. ``--profile`` adds torch.profiler's top
operators of one step of ``eager`` and the two NHWC-weight variants. Appends to
benchmarks/results/lenet.md.

    python benchmarks/lenet_step.py                  # 2 threads, 7 rounds
    python benchmarks/lenet_step.py --threads 1 --profile
    python benchmarks/lenet_step.py --quick          # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lenet.md"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"nproc": os.cpu_count(), "cpu": cpu, "torch": torch.__version__, "load": load}


def variants(batch_size: int):
    """name -> (model, X): same weights, same batch."""
    from cnnlab.accel import accelerate
    from cnnlab.models import create_model

    torch.manual_seed(0)
    base = create_model("lenet")
    X = torch.rand(batch_size, 1, 28, 28)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    # "channels_last weights" (NCHW input) is what accelerate() does on 2+ threads;
    # "cnnlab kernels" what it does on one (cnnlab.accel.kernels)
    # "native": plus cnnlab.native's kernels (one-channel conv, sigmoid + avg-pool): what
    # accelerate() does by default on 2+ threads and on 1
    return {"eager": (base, X),
            "channels_last": (cl, X.contiguous(memory_format=torch.channels_last)),
            "channels_last weights": (copy.deepcopy(cl), X),
            "cnnlab kernels": (
                accelerate(copy.deepcopy(base), "cpu", threads=1, use_native=False), X),
            "channels_last weights + native": (
                accelerate(copy.deepcopy(base), "cpu", threads=2), X),
            "cnnlab kernels + native": (accelerate(copy.deepcopy(base), "cpu", threads=1), X)}


def make_step(model, X, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def make_eval(model, X):
    @torch.no_grad()
    def run():
        model.eval()
        model(X)
        model.train()

    return run


def timed(fn, n: int) -> tuple[float, float]:
    """(wall ms, cpu ms) per call, averaged over n calls."""
    w, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return ((time.perf_counter() - w) * 1e3 / n, (time.process_time() - c) * 1e3 / n)


def profile_top(step, rows: int = 8) -> str:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    out = ["| operator | share of self time | ms per step |", "|---|---|---|"]
    for e in events[:rows]:
        out.append(f"| {e.key} | {100 * e.self_cpu_time_total / total:.1f}% | "
                   f"{e.self_cpu_time_total / 10 / 1e3:.2f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--profile", action="store_true", help="add torch.profiler top operators")
    p.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    p.add_argument("--malloc-default", action="store_true",
                   help="leave glibc's malloc limits as they are (default: set them as "
                        "cnnlab train does, cnnlab.accel.keep_freed_memory, for every variant)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    kept = False
    if not args.malloc_default:
        from cnnlab.accel import keep_freed_memory

        kept = keep_freed_memory()
    if args.quick:
        args.rounds, args.steps = 1, 2
    torch.set_num_threads(args.threads)
    info = machine()
    nets = variants(args.batch_size)
    y = torch.randint(0, 10, (args.batch_size,), generator=torch.Generator().manual_seed(0))
    steps = {k: make_step(m, X, y) for k, (m, X) in nets.items()}
    evals = {k: make_eval(m, X) for k, (m, X) in nets.items()}
    train: dict[str, list] = {k: [] for k in nets}
    infer: dict[str, list] = {k: [] for k in nets}
    warm = 1 if args.quick else 3
    for k in nets:  # warm-up: oneDNN primitive creation, allocator
        timed(steps[k], warm)
        timed(evals[k], warm)
    for _ in range(args.rounds):
        for k in nets:
            train[k].append(timed(steps[k], args.steps))
            infer[k].append(timed(evals[k], args.steps))

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    base_w, base_c = med(train["eager"], 0), med(train["eager"], 1)
    now = datetime.datetime.now(datetime.timezone.utc)
    cmd = "python benchmarks/lenet_step.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"## LeNet step, {now:%Y-%m-%d %H:%M} UTC", "",
             f"- command: `{cmd.rstrip()}`",
             f"- machine: {info['nproc']} cores, {info['cpu']}; torch {info['torch']}; "
             f"{args.threads} torch threads",
             f"- load average (1, 5, 15 min) before: {info['load']}; after: "
             + " ".join(f"{x:.2f}" for x in os.getloadavg()),
             f"- {args.rounds} interleaved rounds x {args.steps} steps per variant; medians; "
             f"batch {args.batch_size}; glibc malloc limits "
             + ("set as cnnlab train does (keep_freed_memory), for every variant" if kept
                else "as they were"),
             "",
             "| variant | train wall ms/step | train CPU ms/step | speed-up (wall) "
             "| speed-up (CPU) | eval wall ms/batch |",
             "|---|---|---|---|---|---|"]
    for k in nets:
        w, c = med(train[k], 0), med(train[k], 1)
        lines.append(f"| {k} | {w:.2f} | {c:.2f} | {base_w / w:.2f}x | {base_c / c:.2f}x | "
                     f"{med(infer[k], 0):.2f} |")
    if args.profile and not args.quick:
        for k in ("eager", "channels_last weights", "channels_last weights + native"):
            lines += ["", f"torch.profiler, `{k}`, top aten operators (self time):", "",
                      profile_top(steps[k])]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        from _results import append_results  # sibling module; scripts run from benchmarks/

        append_results(RESULTS, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
