"""Responsiveness of `cnnlab explore`: how long its handlers take to answer.

Times the functions the app's Gradio events call (cnnlab.explore.app), with
everything they do: preparing the input, computing with cnnlab's ops, drawing the
pictures. Not included: the HTTP round trip and the browser's drawing (a few ms on
the same machine). Targets from the issue: every Convolution-view interaction
under 300 ms; a Model-view update (one forward pass, all feature maps, top-k) for
LeNet (28x28) and ResNet-18 (96x96) under 1 s; a click's receptive field is timed
too. The models are freshly built (weights do not change the time). Median and
worst of the repeats; the first call of each kind (imports, caches) is reported
apart. Writes benchmarks/results/explore.md.

    python benchmarks/explore.py          # measure, write the results file
    python benchmarks/explore.py --quick  # smoke test: 2 repeats, no file
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

from _results import ROOT, finish  # noqa: E402

# Convolution-view interactions: (what the user did, arguments of conv_update after the
# image source). Arguments: size, kernel rows, ph, pw, sh, sw, dh, dw, pool, psize, pstride, step
CONV_CASES = [
    ("28x28, edge [1,-1]", (28, [[1, -1]], 0, 0, 1, 1, 1, 1, "none", 2, 2, 0)),
    ("the 7.3 example", (8, [[1] * 5] * 3, 0, 1, 3, 4, 1, 1, "none", 2, 2, 0)),
    ("28x28, Sobel, padding 1, max pool", (28, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
                                            1, 1, 1, 1, 1, 1, "max", 2, 2, 37)),
    ("64x64, 5x5, dilation 2, avg pool", (64, [[0.04] * 5] * 5, 2, 2, 1, 1, 2, 2, "avg",
                                          3, 2, 500)),
    ("step slider moved (64x64, 9x9)", (64, [[1] * 9] * 9, 4, 4, 2, 2, 1, 1, "none", 2, 2,
                                        123)),
]


def _time(fn, repeats: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first * 1e3, statistics.median(times) * 1e3, max(times) * 1e3


class _Click:
    def __init__(self, x: int, y: int):
        self.index = [x, y]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, no results file")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    repeats = 2 if args.quick else args.repeats

    from cnnlab import create_model
    from cnnlab.explore import app
    from cnnlab.explore import model_view as mv
    from cnnlab.explore.paths import Library

    rows = []
    for what, case in CONV_CASES:
        size, grid, *rest = case
        f, med, worst = _time(lambda size=size, grid=grid, rest=rest: app.conv_update(
            "test image", 3, None, None, size, grid, *rest), repeats)
        rows.append(("Convolution", what, f, med, worst, 300))

    for name, side in (("lenet", 28), ("resnet18", 96)):
        torch.manual_seed(0)
        net = create_model(name, input_size=side)
        own = mv.from_module(net, input_size=side, label=name)
        models = app.Models(Library([]), own)
        state = {}

        def update(i=[0], models=models, state=state):  # noqa: B006
            i[0] += 1
            out = app.model_update(models, app.YOUR_MODEL, "test image", i[0], None, None, 5)
            state["a"] = out[0]

        X = torch.rand(1, 1, side, side)
        with torch.no_grad():
            f, med, worst = _time(lambda net=net, X=X: net.eval()(X), repeats)
        rows.append(("(reference)", f"{name} at {side}: the plain forward pass alone", f, med,
                     worst, None))
        f, med, worst = _time(update, repeats)
        rows.append(("Model", f"{name} at {side}: new test image (forward, all maps, top-5)",
                     f, med, worst, 1000))
        a = state["a"]
        place = a.layout[-1]
        t = place.tiles[0]
        click = _Click(place.left + t.left + 1, place.top + t.top + 1)
        f, med, worst = _time(lambda models=models, a=a, click=click: app.model_click(
            models, app.YOUR_MODEL, a, click), repeats)
        rows.append(("Model", f"{name} at {side}: click a unit (receptive field)", f, med,
                     worst, 1000))

    threads = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"## explore handlers, {datetime.date.today()}", "",
             f"`python benchmarks/explore.py` (repeats {repeats}; torch threads {threads}; "
             f"load average at the end {load:.1f} on {os.cpu_count()} cores"
             + ("; **contended: other jobs shared the cores**" if load > (os.cpu_count() or 1)
                else "") + ")", "",
             "| view | interaction | first call ms | median ms | worst ms | target ms | met |",
             "|---|---|---:|---:|---:|---:|---|"]
    for view, what, f, med, worst, target in rows:
        met = "-" if target is None else ("yes" if med < target else "no")
        lines.append(f"| {view} | {what} | {f:.0f} | {med:.0f} | {worst:.0f} | "
                     f"{target or '-'} | {met} |")
    lines.append("")
    lines.append("Handler time only (what the server computes per event); median decides "
                 "'met'. The first call includes one-off imports and caches. The plain "
                 "forward pass, timed in the same run, shows how much of a Model update is the "
                 "network itself and how much is the app's work.")
    return finish(ROOT / "benchmarks" / "results" / "explore.md", "\n".join(lines) + "\n",
                  args.quick)


if __name__ == "__main__":
    sys.exit(main())
