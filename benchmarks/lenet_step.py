"""Milliseconds per LeNet training step (book 7.6 settings): eager PyTorch vs cnnlab.accel.

One step = forward, cross-entropy, backward, SGD(lr 0.1) update on a batch of 128
28x28 images already in memory (no data loading). Variants, built from the same
initial weights and timed in interleaved rounds in one process so that the noisy,
shared machine affects them alike:

* ``eager``: ``cnnlab.models.create_model("lenet")`` as is (NCHW, oneDNN);
* ``channels_last``: the same with NHWC weights and input;
* ``channels_last weights``: NHWC weights, NCHW input (what ``accelerated`` does
  without the native kernels);
* ``accelerated``: inside ``with cnnlab.accel.accelerated(model, "cpu")`` -- what
  ``cnnlab train lenet`` runs on CPU: NHWC weights plus the ``cnnlab.native`` kernels
  (small convolutions, fused sigmoid + avg-pool) through their custom ops;
* with ``--before SRC``: ``before: accelerated``, the same from another cnnlab source
  tree (e.g. ``git archive <commit> | tar -x -C /tmp/before``, then
  ``--before /tmp/before/src``), imported as ``cnnlab_before``: a before/after of a
  change, measured in one run.

All variants run with the glibc malloc limits ``cnnlab train`` sets on CPU
(``cnnlab.accel.keep_freed_memory``; ``--malloc-default`` leaves them). Also times
evaluation (forward without autograd, 128 images). Wall ms and CPU ms
(process time: excludes time taken by other processes, counts every thread) are
both reported; ratios are against ``eager``, and the last column against the row
named by ``--ratio-to`` (default ``accelerated``). ``--profile`` adds torch.profiler's
top operators of one step of ``eager`` and ``accelerated``. Writes its section of
benchmarks/results/lenet.md (the latest run per machine).

    python benchmarks/lenet_step.py                  # 2 threads, 7 rounds
    python benchmarks/lenet_step.py --threads 1 --profile
    python benchmarks/lenet_step.py --before /tmp/before/src   # before/after a change
    python benchmarks/lenet_step.py --quick          # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lenet.md"


def machine() -> dict:
    from _results import machine_info  # sibling module; scripts run from benchmarks/

    return machine_info()


def import_before(src: str, into: Path):
    """The cnnlab package of another source tree ``src`` (the folder holding ``cnnlab/``),
    copied into ``into`` as ``cnnlab_before`` with its imports (and custom-op namespace)
    renamed, so that both versions load in this process."""
    pkg = into / "cnnlab_before"
    shutil.copytree(Path(src) / "cnnlab", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    pattern = re.compile(r"\b(from|import) cnnlab\b|\"cnnlab::|torch\.ops\.cnnlab\b")
    for f in pkg.rglob("*.py"):
        text = f.read_text()
        f.write_text(pattern.sub(lambda m: m.group(0).replace("cnnlab", "cnnlab_before"), text))
    sys.path.insert(0, str(into))
    return importlib.import_module("cnnlab_before")


def variants(batch_size: int, stack: contextlib.ExitStack, before=None):
    """name -> (model, X): same weights, same batch; accelerated ones entered in ``stack``."""
    from cnnlab.accel import accelerated
    from cnnlab.models import create_model

    torch.manual_seed(0)
    base = create_model("lenet")
    X = torch.rand(batch_size, 1, 28, 28)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    out = {"eager": (base, X),
           "channels_last": (cl, X.contiguous(memory_format=torch.channels_last)),
           "channels_last weights": (copy.deepcopy(cl), X)}
    fast = copy.deepcopy(base)
    stack.enter_context(accelerated(fast, "cpu"))
    out["accelerated"] = (fast, X)
    if before is not None:
        old = importlib.import_module(before.__name__ + ".models").create_model("lenet")
        old.load_state_dict(base.state_dict())
        stack.enter_context(importlib.import_module(before.__name__ + ".accel").accelerated(
            old, "cpu"))
        out["before: accelerated"] = (old, X)
    return out


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
    events = [e for e in prof.key_averages() if e.key.startswith(("aten::", "cnnlab::"))]
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
    p.add_argument("--before", metavar="SRC",
                   help="also time `accelerated` from this other cnnlab source tree (the "
                        "folder holding cnnlab/), as 'before: accelerated'")
    p.add_argument("--ratio-to", default="accelerated", metavar="VARIANT",
                   help="the row the last column divides by (default: accelerated)")
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
    stack = contextlib.ExitStack()
    tmp = tempfile.TemporaryDirectory()
    before = import_before(args.before, Path(tmp.name)) if args.before else None
    nets = variants(args.batch_size, stack, before)
    if args.ratio_to not in nets:
        p.error(f"--ratio-to: one of {', '.join(nets)}")
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
             f"| speed-up (CPU) | eval wall ms/batch | wall time / {args.ratio_to} |",
             "|---|---|---|---|---|---|---|"]
    ref = train[args.ratio_to]
    for k in nets:
        w, c = med(train[k], 0), med(train[k], 1)
        # the median of each round's ratio: both timed seconds apart, under the same load
        ratio = statistics.median(a[0] / b[0] for a, b in zip(train[k], ref))
        lines.append(f"| {k} | {w:.2f} | {c:.2f} | {base_w / w:.2f}x | {base_c / c:.2f}x | "
                     f"{med(infer[k], 0):.2f} | {ratio:.3f} |")
    lines += ["", "Last column: the median over rounds of (this variant's wall time / "
              f"{args.ratio_to}'s) in the same round."]
    stack.close()  # the accelerated models get their own layers back
    tmp.cleanup()
    if args.profile and not args.quick:
        for k in ("eager", "accelerated"):
            with contextlib.ExitStack() as again:
                model, X = nets[k]
                if k == "accelerated":
                    from cnnlab.accel import accelerated

                    again.enter_context(accelerated(model, "cpu"))
                lines += ["", f"torch.profiler, `{k}`, top operators (self time):", "",
                          profile_top(make_step(model, X, y))]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        from _results import write_results  # sibling module; scripts run from benchmarks/

        write_results(RESULTS, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
