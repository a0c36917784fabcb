"""ops.conv2d / ops pooling vs torch.nn.functional: forward + backward time on CPU.

Layer shapes from LeNet (d2l 7.6) and ResNet-18 at 96x96 (d2l 8.6), batch 128.
For every shape both implementations run interleaved (ops, F, ops, F, ...) after
one warm-up call each; the table gives the median wall-clock time and the median
CPU time of the process (less sensitive to other jobs on a shared machine) and the
ratio ops / F measured in the same run. A step is forward + backward of
``Y.sum()``; the input needs a gradient except in a network's first layer (as in
training). The book's corr2d loop is timed once, on one image, for contrast.
Writes benchmarks/results/ops.md.

    python benchmarks/ops.py                # full run (a few minutes on 2 cores)
    python benchmarks/ops.py --threads 1    # one intra-op thread
    python benchmarks/ops.py --quick        # smoke test: batch 2, 1 repeat, no file
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab import ops

ROOT = Path(__file__).resolve().parents[1]

# name, (C_in, C_out, H, kernel, stride, padding), input needs grad
CONVS = [
    ("LeNet conv1 1->6 k5 p2 @28", (1, 6, 28, 5, 1, 2), False),
    ("LeNet conv2 6->16 k5 @14", (6, 16, 14, 5, 1, 0), True),
    ("ResNet stem 1->64 k7 s2 p3 @96", (1, 64, 96, 7, 2, 3), False),
    ("ResNet 64->64 k3 p1 @24", (64, 64, 24, 3, 1, 1), True),
    ("ResNet 128->256 k3 s2 p1 @12", (128, 256, 12, 3, 2, 1), True),
    ("ResNet 256->256 k3 p1 @6", (256, 256, 6, 3, 1, 1), True),
]
# name, (C, H, kernel, stride, padding), ops function, F function
POOLS = [
    ("LeNet avg-pool 6ch k2 @28", (6, 28, 2, 2, 0), ops.avg_pool2d, F.avg_pool2d),
    ("LeNet avg-pool 16ch k2 @10", (16, 10, 2, 2, 0), ops.avg_pool2d, F.avg_pool2d),
    ("ResNet max-pool 64ch k3 s2 p1 @48", (64, 48, 3, 2, 1), ops.max_pool2d, F.max_pool2d),
]


def _step(fn, inputs) -> tuple[float, float]:
    """Wall and CPU seconds of one forward + backward."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*inputs).sum().backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def _compare(ours, theirs, inputs, repeats: int) -> dict[str, float]:
    times: dict[str, list[tuple[float, float]]] = {"ops": [], "F": []}
    _step(ours, inputs)
    _step(theirs, inputs)
    for _ in range(repeats):
        times["ops"].append(_step(ours, inputs))
        times["F"].append(_step(theirs, inputs))
    out = {}
    for key, runs in times.items():
        out[f"{key}_wall"] = statistics.median(r[0] for r in runs)
        out[f"{key}_cpu"] = statistics.median(r[1] for r in runs)
    return out


def bench_convs(batch: int, repeats: int) -> list[tuple[str, dict[str, float]]]:
    rows = []
    for name, (c_in, c_out, size, k, s, p), input_grad in CONVS:
        torch.manual_seed(0)
        X = torch.randn(batch, c_in, size, size, requires_grad=input_grad)
        W = torch.randn(c_out, c_in, k, k, requires_grad=True)
        b = torch.randn(c_out, requires_grad=True)
        result = _compare(partial(ops.conv2d, stride=s, padding=p),
                          partial(F.conv2d, stride=s, padding=p), (X, W, b), repeats)
        rows.append((name, result))
        print(f"{name}: ops {result['ops_wall'] * 1e3:.1f} ms, F {result['F_wall'] * 1e3:.1f} ms",
              file=sys.stderr, flush=True)
    return rows


def bench_pools(batch: int, repeats: int) -> list[tuple[str, dict[str, float]]]:
    rows = []
    for name, (c, size, k, s, p), ours, theirs in POOLS:
        torch.manual_seed(0)
        X = torch.randn(batch, c, size, size, requires_grad=True)
        geometry = {"kernel_size": k, "stride": s, "padding": p}
        result = _compare(partial(ours, **geometry), partial(theirs, **geometry), (X,), repeats)
        rows.append((name, result))
    return rows


def bench_loop() -> dict[str, float]:
    """The book's corr2d loop vs ops.conv2d on one 28x28 image, 5x5 kernel, forward only."""
    X, K = torch.randn(28, 28), torch.randn(5, 5)
    start = time.perf_counter()
    ops.corr2d(X, K)
    loop = time.perf_counter() - start
    ops.conv2d(X[None, None], K[None, None])
    start = time.perf_counter()
    ops.conv2d(X[None, None], K[None, None])
    vec = time.perf_counter() - start
    return {"loop": loop, "vectorised": vec}


def bench_breakdown(batch: int, repeats: int) -> list[str]:
    """CPU time of each stage of ops.conv2d (forward: pad, im2col copy, GEMM; backward:
    grad-columns GEMM, col2im adds, weight GEMM) next to F's forward + backward."""
    from cnnlab.ops.conv import _col2im, _im2col

    def cpu(fn) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            fn()
            runs.append(time.process_time() - start)
        return statistics.median(runs) * 1e3

    def row(name: str, c_in: int, c_out: int, size: int, k: int, s: int, p: int) -> str:
        X = torch.randn(batch, c_in, size, size)
        W, b = torch.randn(c_out, c_in, k, k), torch.zeros(c_out)
        out = ((size + 2 * p - k) // s + 1,) * 2
        Xp = F.pad(X, (p, p, p, p))
        cols = _im2col(Xp, (k, k), (s, s), (1, 1), out, 1)
        Wm = W.reshape(1, c_out, -1)
        G = torch.randn(1, c_out, cols.shape[-1])
        grad_cols = torch.matmul(Wm.transpose(1, 2), G).reshape(c_in, k, k, batch, *out)
        leaves = [t.clone().requires_grad_() for t in (X, W, b)]
        stages = [
            lambda: F.pad(X, (p, p, p, p)),
            lambda: _im2col(Xp, (k, k), (s, s), (1, 1), out, 1),
            lambda: torch.matmul(Wm, cols),
            lambda: torch.matmul(Wm.transpose(1, 2), G),
            lambda: _col2im(grad_cols, tuple(Xp.shape[2:]), (k, k), (s, s), (1, 1), out),
            lambda: torch.matmul(G, cols.transpose(1, 2)),
            lambda: ops.conv2d(*leaves, s, p).sum().backward(),
            lambda: F.conv2d(*leaves, s, p).sum().backward(),
        ]
        return f"| {name} | " + " | ".join(f"{cpu(f):.1f}" for f in stages) + " |"

    return ["| layer | pad | im2col | forward GEMM | grad-cols GEMM | col2im | weight GEMM "
            "| ops fwd+bwd | F fwd+bwd |", "|---|---|---|---|---|---|---|---|---|",
            *(row(name, *geometry) for name, geometry, _ in (CONVS[1], CONVS[3]))]


def _table(rows) -> list[str]:
    lines = ["| layer | ops wall (ms) | F wall (ms) | ratio wall | ops CPU (ms) | F CPU (ms) "
             "| ratio CPU |", "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['ops_wall'] * 1e3:.1f} | {r['F_wall'] * 1e3:.1f} | "
            f"**{r['ops_wall'] / r['F_wall']:.2f}** | {r['ops_cpu'] * 1e3:.1f} | "
            f"{r['F_cpu'] * 1e3:.1f} | {r['ops_cpu'] / r['F_cpu']:.2f} |")
    return lines


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    from _results import machine_info  # sibling module; scripts run from benchmarks/

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test, writes no file")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each stage of ops.conv2d (1 thread, CPU ms)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ops.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch, repeats = (2, 1) if args.quick else (128, args.repeats)
    load_before = _load()
    convs, pools, loop = bench_convs(batch, repeats), bench_pools(batch, repeats), bench_loop()
    command = "python benchmarks/ops.py" + (" " + " ".join(sys.argv[1:]) if argv is None
                                            and sys.argv[1:] else "")
    lines = [
        f"## Operators: cnnlab.ops vs torch.nn.functional (forward + backward, batch {batch}, "
        "CPU)", "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs ({machine_info()['cpu']}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads",
        f"- load average before / after: {load_before} / {_load()}",
        f"- median of {repeats} interleaved repeats after one warm-up each; ratio = ops / F "
        "from the same run (target: conv2d within 3x)", "",
        "### conv2d", "", *_table(convs), "",
        "### pooling", "", *_table(pools), "",
        f"The book's corr2d loop on one 28x28 image with a 5x5 kernel (forward only): "
        f"{loop['loop'] * 1e3:.1f} ms; ops.conv2d on the same image: "
        f"{loop['vectorised'] * 1e3:.3f} ms ({loop['loop'] / loop['vectorised']:.0f}x).", "",
    ]
    if args.breakdown:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        lines += [f"### where the time goes (1 thread, median CPU ms, batch {batch})", "",
                  *bench_breakdown(batch, 2 * repeats + 1), ""]
        torch.set_num_threads(threads)
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        from _results import write_results  # sibling module; scripts run from benchmarks/

        write_results(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
