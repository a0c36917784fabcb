"""Start-up cost of the CLI: what a user waits for outside the training itself.

Measured in one run, each figure in fresh processes, rounds interleaved so that a
drifting machine load hits all alike:

- ``import torch``: seconds inside ``python -c``, the yardstick of the rest;
- a one-epoch ``cnnlab train lenet`` (real Fashion-MNIST): whole-process wall time
  minus the epoch's seconds the trainer prints (training + that epoch's
  evaluation), i.e. interpreter start, imports, data loading, model building,
  checkpoints, the figures and the exit; as `python -m cnnlab` runs it (the quick
  exit of ``cnnlab.cli.run``) and with an ordinary interpreter exit
  (``sys.exit(main())``, which unloads every module first);
- ``cnnlab predict CKPT IMAGE``: whole-process wall time (the checkpoint of the
  train run above, one 28x28 PNG).

Every process runs with Python's bytecode cache on (``_results.cnnlab_env``), after one
untimed warm-up run (not with ``--quick``): a user's runs after the first load cnnlab's
modules compiled, as they load torch's.

The targets (issue "Speed", stated for a 2-core Zen 4 whose torch import takes
1.3 s): time outside the epoch <= torch's import + 0.3 s, predict <= 2.0 s; on
another machine both are scaled by its torch import time. Writes
benchmarks/results/startup.md.

    python benchmarks/startup.py              # 3 rounds
    python benchmarks/startup.py --rounds 5
    python benchmarks/startup.py --quick      # smoke: synthetic data, 1 round, writes nothing
    python benchmarks/startup.py --baseline-env CNNLAB_LAZY_DYNAMO=0  # + a 'before' row

``--baseline-env VAR=VALUE`` (repeatable) adds one more quick-exit train run per round
with those environment variables, interleaved with the others, and its row: a
start-up change's before and after in one run (``CNNLAB_LAZY_DYNAMO=0``: torch.optim
imports ``torch._dynamo`` as it does without cnnlab.train.startup).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "startup.md"
# the machine: torch imports in 1.3 s; budgets scale with this machine's import
REF_TORCH_S, OUTSIDE_EXTRA_S, PREDICT_S = 1.3, 0.3, 2.0
EPOCH_SECONDS = re.compile(r"^epoch 1/1 .*?\s([0-9.]+)s\s+[0-9]+ img/s", re.M)


ORDINARY = "import sys; from cnnlab.cli import main; sys.exit(main())"


def _env(extra: dict | None = None) -> dict:
    from _results import cnnlab_env  # sibling module; scripts run from benchmarks/

    return cnnlab_env(extra)


def torch_import_s() -> float:
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_env())
    return float(out.stdout.strip().splitlines()[-1])


def train_once(out: Path, quick_exit: bool, extra: list[str],
               env_extra: dict | None = None) -> dict:
    """Wall time of `cnnlab train lenet --epochs 1`, the epoch seconds it printed, and
    when its first line (the banner, after imports and building) and its epoch line came."""
    how = ["-m", "cnnlab"] if quick_exit else ["-c", ORDINARY]
    cmd = [sys.executable, *how, "train", "lenet", "--epochs", "1", "--out", str(out), *extra]
    env = dict(_env(env_extra), PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=out.parent)
    assert proc.stdout is not None and proc.stderr is not None
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line))
    err = proc.stderr.read()
    rc = proc.wait()
    wall = time.perf_counter() - start
    text = "".join(line for _, line in lines)
    m = EPOCH_SECONDS.search(text)
    if rc != 0 or m is None:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {rc}):\n{text[-2000:]}\n{err[-3000:]}")
    missing = [f for f in ("curves.png", "confusion.png", "best.pt") if not (out / f).exists()]
    if missing:
        raise SystemExit(f"the run wrote no {', '.join(missing)} before it exited")
    epoch = float(m.group(1))
    banner = next(t for t, line in lines if line.startswith("training "))
    epoch_line = next(t for t, line in lines if line.startswith("epoch 1/1"))
    return {"wall": wall, "epoch": epoch, "outside": wall - epoch, "before": banner,
            "after": wall - epoch_line}


def predict_once(ckpt: Path, image: Path) -> float:
    cmd = [sys.executable, "-m", "cnnlab", "predict", str(ckpt), str(image)]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {r.returncode}):\n{r.stderr[-3000:]}")
    return wall


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("L", (28, 28), 0).save(path)  # a blank garment-free image: any will do
    return path


def _stats(xs: list[float]) -> str:
    med = statistics.median(xs)
    return f"{med:.2f}" + (f" ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else "")


def measure(rounds: int, extra: list[str], baseline: dict | None = None,
            warm_up: bool = True) -> dict:
    res: dict[str, list] = {"torch": [], "on": [], "off": [], "predict": [], "base": []}
    runs = ["on", "off"] + (["base"] if baseline else [])
    names = {"on": "quick exit", "off": "ordinary exit", "base": "baseline env"}
    with tempfile.TemporaryDirectory() as tmp:
        image = _png(Path(tmp) / "garment.png")
        if warm_up:  # not timed: the run that leaves cnnlab's compiled modules
            # (__pycache__) behind, as any user's first run does; torch's come compiled
            train_once(Path(tmp) / "warm-up", True, extra)
            predict_once(Path(tmp) / "warm-up" / "best.pt", image)
        for i in range(rounds):
            res["torch"].append(torch_import_s())
            for key in (runs if i % 2 == 0 else runs[::-1]):
                out = Path(tmp) / f"run-{i}-{key}"
                res[key].append(train_once(out, key != "off", extra,
                                           baseline if key == "base" else None))
                print(f"round {i + 1}: {names[key]}: {res[key][-1]}", flush=True)
            res["predict"].append(predict_once(Path(tmp) / f"run-{i}-on" / "best.pt", image))
            print(f"round {i + 1}: torch import {res['torch'][-1]:.2f} s, "
                  f"predict {res['predict'][-1]:.2f} s", flush=True)
    return res


def section(res: dict, argv: list[str], load_before: str, quick: bool,
            baseline: dict | None = None) -> str:
    from _results import machine_info  # sibling module; scripts run from benchmarks/

    info = machine_info()
    torch_s = statistics.median(res["torch"])
    scale = torch_s / REF_TORCH_S
    outside_budget = torch_s + OUTSIDE_EXTRA_S * scale
    predict_budget = PREDICT_S * scale
    on = [r["outside"] for r in res["on"]]
    off = [r["outside"] for r in res["off"]]
    pred = res["predict"]

    def verdict(value: float, budget: float) -> str:
        return "yes" if value <= budget else f"no, {value - budget:+.2f} s ({value / budget:.2f}x)"

    now = datetime.datetime.now(datetime.timezone.utc)
    data = "synthetic (smoke)" if quick else "Fashion-MNIST"
    lines = [
        f"## Start-up, {now:%Y-%m-%d %H:%M} UTC", "",
        f"- command: `python benchmarks/{Path(__file__).name} {' '.join(argv)}`".rstrip(),
        f"- machine: {info['nproc']} cores, {info['cpu']}; torch {info['torch']}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {info['load']}",
        f"- {len(res['torch'])} round(s), medians (min-max); train = `cnnlab train lenet "
        f"--epochs 1` on {data}; outside = whole-process wall - the epoch's printed seconds",
        f"- budgets scaled by this machine's torch import ({torch_s:.2f} s vs "
        f"{REF_TORCH_S} s on the issue's Zen 4: x{scale:.2f})", "",
        "| figure | seconds | / torch import | budget (s) | met |",
        "|---|---|---|---|---|",
        f"| `import torch` | {_stats(res['torch'])} | 1.00 | - | - |",
        f"| train: outside the epoch (`python -m cnnlab`) | {_stats(on)} | "
        f"{statistics.median(on) / torch_s:.2f} | {outside_budget:.2f} | "
        f"{verdict(statistics.median(on), outside_budget)} |",
        f"| train: outside the epoch, ordinary exit (`sys.exit(main())`) | {_stats(off)} | "
        f"{statistics.median(off) / torch_s:.2f} | {outside_budget:.2f} | "
        f"{verdict(statistics.median(off), outside_budget)} |",
        f"| train: whole process, quick / ordinary exit | "
        f"{_stats([r['wall'] for r in res['on']])} / "
        f"{_stats([r['wall'] for r in res['off']])} | - | - | - |",
        f"| train: the epoch's seconds, quick / ordinary exit | "
        f"{_stats([r['epoch'] for r in res['on']])} / "
        f"{_stats([r['epoch'] for r in res['off']])} | - | - | - |",
        f"| train: start to banner (imports, data, model) / epoch line to exit "
        f"(checkpoints, figures, exit), quick exit | "
        f"{_stats([r['before'] for r in res['on']])} / "
        f"{_stats([r['after'] for r in res['on']])} | - | - | - |",
        f"| `cnnlab predict CKPT IMAGE`, whole process | {_stats(pred)} | "
        f"{statistics.median(pred) / torch_s:.2f} | {predict_budget:.2f} | "
        f"{verdict(statistics.median(pred), predict_budget)} |",
    ]
    if baseline and res["base"]:
        base = [r["outside"] for r in res["base"]]
        env = " ".join(f"{k}={v}" for k, v in baseline.items())
        lines += [
            f"| baseline (`{env}`): outside the epoch, quick exit | {_stats(base)} | "
            f"{statistics.median(base) / torch_s:.2f} | {outside_budget:.2f} | "
            f"{verdict(statistics.median(base), outside_budget)} |",
            f"| baseline (`{env}`): start to banner / epoch line to exit | "
            f"{_stats([r['before'] for r in res['base']])} / "
            f"{_stats([r['after'] for r in res['base']])} | - | - | - |",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds of every figure (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: synthetic data, a few batches, 1 round; writes nothing")
    p.add_argument("--no-write", action="store_true", help="print only; leave startup.md alone")
    p.add_argument("--baseline-env", action="append", default=[], metavar="VAR=VALUE",
                   help="also time a quick-exit train run with this environment variable "
                        "(repeatable), e.g. CNNLAB_LAZY_DYNAMO=0: before/after in one run")
    args = p.parse_args(argv)
    baseline = {}
    for item in args.baseline_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            p.error(f"--baseline-env takes VAR=VALUE, got {item!r}")
        baseline[name] = value
    extra: list[str] = []
    rounds = args.rounds
    if args.quick:
        extra = ["--dataset", "synthetic", "--num-train", "256", "--batch-size", "64",
                 "--limit-val-batches", "1"]
        rounds = 1
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    res = measure(rounds, extra, baseline, warm_up=not args.quick)  # the smoke test: none
    text = section(res, argv, load_before, args.quick, baseline)
    from _results import finish  # sibling module; scripts run from benchmarks/

    return finish(RESULTS, text, args.quick or args.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
