"""Milliseconds per piece of LeNet (convolutions, sigmoid + pools): PyTorch vs cnnlab.native.

Native pieces, each called through its custom op (cnnlab.native.ops, so the boundary's
cost is in the figure): the forward (one input channel; with more, the op runs oneDNN's),
the weight gradient, the input gradient (a scatter), and the fused sigmoid + 2x2 average
pool (cnnlab.accel.fused) against torch.sigmoid + F.avg_pool2d.
A last line gives the reference rate of this machine: a 1024 x 1024 sgemm (torch.mm).

The figures behind cnnlab.accel.smallconv's choice of which pieces run native:
batch 128, the book's layers (conv1: 1 -> 6, 5x5, padding 2, 28x28; conv2: 6 -> 16,
5x5, 14x14), NHWC weights as `accelerated()` gives them (conv1's input
is the NCHW image batch, conv2's NHWC). oneDNN's gradients are timed through autograd,
as training runs them. Medians of 5 x 30 calls, both sides in one process. Appends to
benchmarks/results/lenet.md.

    python benchmarks/conv_pieces.py             # 2 threads
    python benchmarks/conv_pieces.py --quick     # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lenet.md"
CL = torch.channels_last
LAYERS = {"conv1": (1, 6, 28, 2), "conv2": (6, 16, 14, 0)}  # C, M, side, padding; 5x5
POOLS = {"pool1": (6, 28), "pool2": (16, 10)}  # channels, side of the pre-activation


def median_ms(fn, rounds: int, calls: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) * 1e3 / calls)
    return statistics.median(times)


def layer_pieces(name: str, batch: int) -> dict:
    """piece -> (oneDNN callable, native callable or None) for one layer."""
    from cnnlab.native import ops

    C, M, side, p = LAYERS[name]
    g = torch.Generator().manual_seed(0)
    X = torch.rand(batch, C, side, side, generator=g)
    if C > 1:
        X = X.contiguous(memory_format=CL)
    # .to(), as Module.to does: for one input channel .contiguous() gives strides that
    # oneDNN reads as NCHW, and a 3x slower weight gradient
    W = torch.randn(M, C, 5, 5, generator=g).to(memory_format=CL)
    Wr = W.clone().requires_grad_()
    Xr = X.clone().requires_grad_()
    o = side + 2 * p - 4
    dY = torch.randn(batch, M, o, o, generator=g).contiguous(memory_format=CL)

    def native_fwd_wgrad():
        ops.conv2d_small(X, W, None, p)
        ops.conv2d_small_backward(dY, X, W, p, False, True)

    out = {
        "forward": (lambda: F.conv2d(X, W, padding=p), lambda: ops.conv2d_small(X, W, None, p)),
        "forward + weight gradient": (
            lambda: torch.autograd.grad(F.conv2d(X, Wr, padding=p), [Wr], dY), native_fwd_wgrad),
    }
    if C > 1:
        out["input gradient"] = (lambda: F.conv_transpose2d(dY, W, padding=p),
                                 lambda: ops.conv2d_small_backward(dY, X, W, p, True, False))
        # what a training step runs, through autograd: NativeConv2d's op
        out["forward + both gradients"] = (
            lambda: torch.autograd.grad(F.conv2d(Xr, Wr, padding=p), [Xr, Wr], dY),
            lambda: torch.autograd.grad(ops.conv2d_small(Xr, Wr, None, p), [Xr, Wr], dY))
    return out


def pool_pieces(name: str, batch: int) -> dict:
    """piece -> (PyTorch callable, native callable) for one sigmoid + 2x2 average pool."""
    from cnnlab.accel.fused import sigmoid_avg_pool2d

    C, side = POOLS[name]
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(batch, C, side, side, generator=g).contiguous(memory_format=CL)
    Zr = Z.clone().requires_grad_()
    dP = torch.randn(batch, C, side // 2, side // 2, generator=g).contiguous(memory_format=CL)
    return {
        "sigmoid + avg-pool forward": (lambda: F.avg_pool2d(torch.sigmoid(Z), 2),
                                       lambda: sigmoid_avg_pool2d(Z, 2)),
        "sigmoid + avg-pool forward + backward": (
            lambda: torch.autograd.grad(F.avg_pool2d(torch.sigmoid(Zr), 2), [Zr], dP),
            lambda: torch.autograd.grad(sigmoid_avg_pool2d(Zr, 2), [Zr], dP)),
    }


def sgemm_gflops(rounds: int, calls: int, n: int = 1024) -> float:
    """GFLOP/s of torch.mm on two n x n float32 matrices: this machine's reference rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    return 2 * n**3 / (median_ms(lambda: torch.mm(a, b, out=c), rounds, calls) * 1e6)


def main(argv: list[str] | None = None) -> int:
    from cnnlab import native

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if not native.available():
        raise SystemExit(f"the native kernels are needed: {native.status()}")
    torch.set_num_threads(args.threads)
    rounds, calls, batch = (1, 2, 8) if args.quick else (5, 30, 128)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc)
    cmd = "python benchmarks/conv_pieces.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"## LeNet pieces (convolutions, sigmoid + pools), {now:%Y-%m-%d %H:%M} UTC", "",
             f"- command: `{cmd.rstrip()}`",
             f"- torch {torch.__version__}, {args.threads} threads, batch {batch}; "
             f"load average before: {load}",
             f"- medians of {rounds} x {calls} calls; '-': no native version of that piece",
             "", "| layer | piece | PyTorch (oneDNN) ms | cnnlab.native ms |",
             "|---|---|---|---|"]
    pieces = [(name, layer_pieces(name, batch)) for name in LAYERS]
    pieces += [(name, pool_pieces(name, batch)) for name in POOLS]
    for name, table in pieces:
        for piece, (ref, ours) in table.items():
            ours_ms = f"{median_ms(ours, rounds, calls):.2f}" if ours else "-"
            lines.append(f"| {name} | {piece} | {median_ms(ref, rounds, calls):.2f} "
                         f"| {ours_ms} |")
    lines += ["", f"Reference rate: torch.mm of two 1024 x 1024 float32 matrices, "
              f"{args.threads} threads: {sgemm_gflops(rounds, 5 if args.quick else 20):.1f} "
              "GFLOP/s."]
    text = "\n".join(lines) + "\n"
    from _results import finish  # sibling module; scripts run from benchmarks/

    return finish(RESULTS, text, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
