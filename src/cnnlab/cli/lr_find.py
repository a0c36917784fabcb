"""`cnnlab lr-find`: the learning-rate range test (Smith 2017) for a model and its data.

Example:
    >>> from cnnlab.cli import main
    >>> main(["lr-find", "lenet", "--dataset", "synthetic"])  # doctest: +SKIP
    suggested lr 0.3 (steepest descent of the smoothed loss; ...); plot runs/lr-find-lenet.png
    0
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from cnnlab.cli.train import _flags

    p = subparsers.add_parser(
        "lr-find", help="LR range test: plot loss against lr, suggest an lr",
        description="Train a few steps with an exponentially growing learning rate (Smith "
                    "2017), stop when the smoothed loss diverges, draw loss against lr and "
                    "print the lr of steepest descent. The training flags set up the run as "
                    "for cnnlab train; nothing else is written.")
    p.add_argument("model", help="model name, e.g. lenet")
    _flags(p)
    p.add_argument("--start-lr", type=float, default=1e-7, help="first lr (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last lr (default 10)")
    p.add_argument("--num-steps", type=int, default=100, help="at most N steps (default 100)")
    p.add_argument("--plot", metavar="PNG",
                   help="where to draw the plot (also --out; default runs/lr-find-<model>.png)")
    p.set_defaults(func=_lr_find, out_dir=None)


def _lr_find(args: argparse.Namespace) -> int:
    from cnnlab.cli.train import config_from_args
    from cnnlab.train.resolve import resolve_config
    from cnnlab.train.trainer import Trainer

    cfg, explicit = config_from_args(args)
    cfg = resolve_config(cfg, explicit)
    plot = args.plot or args.out_dir or f"runs/lr-find-{cfg.model}.png"
    result = Trainer(cfg, save=False).lr_find(start_lr=args.start_lr, end_lr=args.end_lr,
                                              num_steps=args.num_steps, plot=plot)
    print(result.line())
    return 0
