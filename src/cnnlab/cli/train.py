"""`cnnlab train | eval | predict | reproduce`: the training commands.

Every TrainConfig field has a flag; a flag left out takes the model's book
value (``cnnlab models`` lists them), so ``cnnlab train lenet`` is the book's
section 7.6 run. Importing this module does not import torch.

Example:
    >>> from cnnlab.cli import main
    >>> main(["train", "lenet", "--dataset", "synthetic", "--dry-run"])  # doctest: +SKIP
    epoch 1/1  train_loss ...
    0
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from cnnlab.cli._common import existing_dir
from cnnlab.errors import ConfigError
from cnnlab.train.config import (
    DATASETS,
    DEVICES,
    LOGGERS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    TrainConfig,
)
from cnnlab.train.recipes import RECIPES

_FLAG = {"out_dir": "--out"}  # fields whose flag is not --field-name


def _flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, all default None (None = not given)."""
    bool_opt = argparse.BooleanOptionalAction
    add = p.add_argument
    add("--dataset", choices=DATASETS, help="training data (default fashion-mnist)")
    add("--data-dir", metavar="DIR", type=existing_dir,
        help="folder holding the IDX files (searched first)")
    add("--epochs", type=int, help="passes over the training set (book: 10)")
    add("--batch-size", type=int, help="examples per step (book: 128)")
    add("--lr", type=float, help="learning rate (book: lenet 0.1, vgg/resnet 0.01)")
    add("--optimizer", choices=OPTIMIZERS, help="sgd (book) | momentum (0.9, Nesterov) | adamw")
    add("--weight-decay", type=float, help="L2 penalty (default 0)")
    add("--schedule", choices=SCHEDULES, help="lr schedule per step (default constant)")
    add("--warmup-epochs", type=float, help="linear lr warm-up length in epochs (default 0)")
    add("--label-smoothing", type=float, help="cross-entropy label smoothing in [0, 1)")
    add("--resize", type=int, help="square input side in pixels (book: 28, 96 or 224)")
    add("--augment", metavar="LIST", help="crop,flip,erase (any, comma separated)")
    add("--normalize", action=bool_opt, help="standardise pixels with the train mean/std")
    add("--precision", choices=PRECISIONS,
        help="fp32 | bf16 | fp16 autocast (default fp32); auto: bf16 where the CPU or GPU "
             "has bf16 arithmetic, else fp32 (fp16 on GPUs before sm_80)")
    add("--channels-last", action=bool_opt, help="NHWC memory format")
    add("--compile", action=bool_opt, help="torch.compile the model")
    add("--device", choices=DEVICES,
        help="auto (cuda, else Apple's mps, else cpu) | cpu | cuda | mps")
    add("--accel", action=bool_opt,
        help="on CPU, train with cnnlab.accel's faster kernels in place of small convolutions "
             "and sigmoid + avg-pool layers, the model's own layers back afterwards (default); "
             "--no-accel: train the layers exactly as built")
    add("--seed", type=int, help="seed of init, shuffling and augmentation (default 0)")
    add("--deterministic", action=bool_opt,
        help="deterministic algorithms (bitwise-identical resume on CPU)")
    add("--grad-clip", type=float, help="max gradient norm (default 0: off)")
    add("--limit-train-batches", type=int, metavar="N", help="at most N train batches/epoch")
    add("--limit-val-batches", type=int, metavar="N", help="at most N val batches/epoch")
    add("--val-every", type=int, metavar="N",
        help="validate every N epochs and after the last (default 1)")
    add("--num-train", type=int, metavar="N", help="use only the first N training images")
    add("--dry-run", action=bool_opt,
        help="2 train + 2 val batches, 1 epoch; writes files only with --out")
    add("--tta", action=bool_opt, help="test-time augmentation: average with the mirror image")
    add("--num-threads", type=int, metavar="N",
        help="CPU threads for torch (default: the CPUs not busy with other programs, "
             "re-checked every epoch)")
    add("--out", dest="out_dir", metavar="DIR",
        help="run directory (default runs/<model>-<YYYYmmdd-HHMMSS>)")
    add("--recipe", metavar="NAME", help="a named set of faster settings (flags still win): "
        + ", ".join(sorted(RECIPES)) + "; what each is for: cnnlab.train.recipes")
    add("--logger", choices=LOGGERS,
        help="also log to TensorBoard event files in the run directory "
             "(pip install 'cnnlab[tensorboard]'; view: tensorboard --logdir runs)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (book settings by default)",
        description="Train a model from `cnnlab models` with the book's settings; every "
                    "flag overrides one. Leaves a run directory with config.json, metrics, "
                    "curves.png, confusion.png, best.pt and last.pt.")
    p.add_argument("model", nargs="?", default=None,
                   help="model name, e.g. lenet, vgg11-narrow, resnet18 (may be left out "
                        "with --recipe, which names one, or --resume PATH)")
    _flags(p)
    p.add_argument("--resume", metavar="PATH|auto",
                   help="continue from a checkpoint; auto: <--out>/last.pt when it exists")
    p.add_argument("--config", metavar="YAML",
                   help="read the settings from a YAML file of TrainConfig fields (e.g. a "
                        "run's config.yaml); flags given as well override it")
    p.add_argument("--seeds", metavar="LIST", type=_seed_list,
                   help="train once per seed (e.g. 0,1,2) into <--out>/seed-N and print "
                        "the mean +- std of the final val_acc and wall time")
    p.set_defaults(func=_train)

    p = subparsers.add_parser(
        "eval", help="accuracy, per-class accuracy and confusion matrix of a checkpoint",
        description="Evaluate a checkpoint on the test split of its dataset.")
    p.add_argument("checkpoint", help="best.pt or last.pt of a run")
    p.add_argument("--dataset", choices=DATASETS, help="default: the one it was trained on")
    p.add_argument("--data-dir", metavar="DIR", type=existing_dir)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--limit-batches", type=int, metavar="N", help="evaluate N batches only")
    p.add_argument("--out", metavar="PNG", help="also draw the confusion matrix to this file")
    p.set_defaults(func=_eval)

    p = subparsers.add_parser(
        "predict", help="classify image files with a checkpoint",
        description="Top-k classes of PNG/JPEG images of any size and colour mode.")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--topk", type=int, default=3)
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="Fashion-MNIST is light-on-dark; auto inverts light-background images")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the model runs (default cpu; auto: a GPU when present)")
    p.set_defaults(func=_predict)

    from cnnlab.train.reproduce import EXPERIMENTS

    p = subparsers.add_parser(
        "reproduce", help="the book's chapter 7-8 training runs, with a report",
        description="Train with the book's settings and write DIR/reproduce.md "
                    "(final accuracy, wall time, device) and each run's curves.")
    p.add_argument("which", nargs="?", default="lenet", choices=(*EXPERIMENTS, "all"))
    p.add_argument("--epochs", type=int, help="shorten (book: 10)")
    p.add_argument("--out", metavar="DIR", help="default runs/reproduce-<timestamp>")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", metavar="DIR", type=existing_dir)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--num-train", type=int, metavar="N", help="first N training images only")
    p.add_argument("--limit-train-batches", type=int, metavar="N")
    p.add_argument("--limit-val-batches", type=int, metavar="N")
    p.add_argument("--num-threads", type=int, metavar="N")
    p.set_defaults(func=_reproduce)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, set[str]]:
    """The TrainConfig the flags describe, and the names of the fields set explicitly."""
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra"]
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if isinstance(given.get("augment"), str):
        given["augment"] = given["augment"].replace("+", ",")
    cfg = TrainConfig(**given)
    return cfg, set(given)


def _seed_list(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2] (argparse ``type=``); ``"0-4"`` is 0..4."""
    try:
        seeds: list[int] = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("-") if part[1:].find("-") >= 0 else (part, "", "")
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or len(seeds) > 1000:
        raise argparse.ArgumentTypeError(
            f"expected distinct integer seeds like 0,1,2 or 0-4, got {text!r}")
    return seeds


def _train(args: argparse.Namespace) -> int:
    from cnnlab.train import plotter, threads

    plotter.start()  # before torch's import: matplotlib imports beside it (train/plotter.py)
    threads.sample_from_now()  # the thread count's first sample spans torch's import
    from cnnlab.train.checkpoint import load_checkpoint
    from cnnlab.train.resolve import config_for_resume, resolve_config
    from cnnlab.train.trainer import Trainer

    if args.model is None and not args.recipe and args.resume in (None, "auto") \
            and not args.config:
        raise ConfigError("name the model to train, e.g. `cnnlab train lenet` "
                          "(`cnnlab models` lists them), or pass --recipe NAME")
    cfg, explicit = config_from_args(args)
    if args.config:  # the file's values, under the flags given on the command line
        from cnnlab.train.configfile import merge_config_file

        cfg, explicit = merge_config_file(args.config, cfg, explicit)
    if args.seeds is not None:
        if args.resume:
            raise ConfigError("--seeds starts new runs; drop --resume (resume one seed's run "
                              "with --resume <out>/seed-N/last.pt)")
        from cnnlab.train.seeds import run_seeds

        run_seeds(cfg, args.seeds, explicit=explicit)
        return 0
    resume = None
    if args.resume == "auto":
        if not args.out_dir:
            raise ConfigError("--resume auto needs --out DIR (the run directory to continue)")
        last = Path(args.out_dir) / "last.pt"
        if last.exists():
            resume = last
        else:
            print(f"no {last} yet: starting a new run there", flush=True)
    elif args.resume:
        resume = Path(args.resume)
        if resume.is_dir():
            resume = resume / "last.pt"
        # the folder named, not where a symlinked last.pt points: the run writes there
        if args.out_dir and Path(args.out_dir).resolve() != resume.parent.resolve():
            raise ConfigError(f"a resumed run writes into {resume.parent}, not --out "
                              f"{args.out_dir}; drop --out")
    if resume is not None:
        state = load_checkpoint(resume)
        cfg = config_for_resume(state["config"], cfg, explicit)
        print(f"resuming {resume} after epoch {state['epoch']}", flush=True)
    else:
        cfg = resolve_config(cfg, explicit)
    trainer = Trainer(cfg, resume=resume)
    history = trainer.fit()
    if cfg.dry_run and trainer.run_dir is None:
        print("dry run passed: nothing written" + (
            f" ({resume.parent} is unchanged)" if resume is not None
            else " (pass --out DIR to keep its files)"))
    elif history and trainer.run_dir is not None and trainer.is_main:
        best = max(r["val_acc"] for r in history if r["val_acc"] is not None)
        print(f"final val_acc {history[-1]['val_acc']:.4f} (best {best:.4f}); "
              f"see {trainer.run_dir}/curves.png")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from cnnlab.train.evaluate import check_png, evaluate_checkpoint, format_report

    out = check_png(args.out) if args.out else None
    result = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_dir=args.data_dir,
                                 device=args.device, batch_size=args.batch_size,
                                 limit_batches=args.limit_batches)
    print(f"{result['model']} on {result['dataset']} (test split)")
    print(format_report(result, result["classes"]))
    if out is not None:
        from cnnlab.train.plots import plot_confusion

        plot_confusion(result["confusion"], result["classes"], out,
                       title=f"{result['model']} on {result['dataset']}")
        print(f"wrote {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from cnnlab.train.predict import predict_files

    for r in predict_files(args.checkpoint, args.images, topk=args.topk, invert=args.invert,
                           device=args.device):
        note = "  (inverted: light background)" if r["inverted"] else ""
        print(f"{r['image']}{note}")
        for name, p in r["top"]:
            print(f"  {p:7.2%}  {name}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    import datetime

    from cnnlab.train.reproduce import experiment_names, reproduce

    out = args.out or f"runs/reproduce-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    overrides = {k: getattr(args, k) for k in
                 ("num_train", "limit_train_batches", "limit_val_batches", "num_threads")
                 if getattr(args, k) is not None}
    rows = reproduce(experiment_names(args.which), out, epochs=args.epochs,
                     dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                     **overrides)
    for r in rows:
        print(f"{r['model']:<14} {r['epochs']:>3} epochs  val_acc {r['val_acc']:.4f}  "
              f"{r['seconds']:.1f}s  {r['device']}")
    print(f"wrote {Path(out) / 'reproduce.md'}")
    return 0
