"""`cnnlab demo NAME`: the chapter-7 demonstrations, each checking its own claims."""

from __future__ import annotations

import argparse
import inspect


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="chapter-7 demonstrations: edges, learning a kernel, pooling, ...",
        description="Run one of the chapter-7 demonstrations (d2l 7.2-7.5 and their "
        "exercises): it prints what it computed and checks its claims numerically. "
        "`cnnlab demo --list` lists them; `cnnlab demo all` runs every one.")
    p.add_argument("name", nargs="?", metavar="NAME", help="demo name, or `all`")
    p.add_argument("--list", action="store_true", help="list the demos and exit")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for the demos that draw random numbers (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.demos import DEMOS, list_demos, run_demo
    from cnnlab.errors import ConfigError

    if args.list or not args.name:
        width = max(len(n) for n in DEMOS)
        for name, title in list_demos():
            print(f"{name:<{width}}  {title}")
        if not args.list:
            print("\nrun one with: cnnlab demo NAME")
        return 0
    if args.name != "all" and args.name not in DEMOS:
        raise ConfigError(f"unknown demo {args.name!r}; choose one of: {', '.join(DEMOS)} "
                          "(or all)")
    names = list(DEMOS) if args.name == "all" else [args.name]
    for i, name in enumerate(names):
        kwargs = {}
        if args.seed is not None and "seed" in inspect.signature(DEMOS[name][0]).parameters:
            kwargs["seed"] = args.seed
        if i:
            print()
        print(run_demo(name, **kwargs))
    return 0
