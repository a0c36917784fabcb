"""`cnnlab models` (the zoo with parameter counts and book defaults) and `cnnlab summary`."""

from __future__ import annotations

import argparse

from cnnlab.cli._common import int_tuple
from cnnlab.errors import ConfigError

_MODELS_EXAMPLES = """examples:
  cnnlab models
  cnnlab models 'resnet*'"""

_SUMMARY_EXAMPLES = """examples:
  cnnlab summary lenet
  cnnlab summary resnet18 --input 1,1,96,96 --depth 2
  cnnlab summary vgg11-narrow --input 1,3,64,64"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the model zoo: parameters, book input size, learning rate",
        description="Every registered model with its parameter count (1 input channel, 10 "
        "classes) and the book's training defaults: input side, learning rate, epochs, batch.",
        epilog=_MODELS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style name pattern (default: all)")
    p.set_defaults(func=run_models)

    p = subparsers.add_parser(
        "summary", help="layer table of a model: output shapes, parameters, MACs",
        description="Run one forward pass on zeros (models over 20 M parameters on the meta "
        "device: shapes without compute) and "
        "print each layer's output shape, parameters and multiply-accumulates. Depth 1 "
        "shows the top-level layers (a VGG block or ResNet stage is one row).",
        epilog=_SUMMARY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a registered model (see `cnnlab models`)")
    p.add_argument("--input", type=int_tuple, metavar="B,C,H,W",
                   help="input shape (default: 1,IN_CHANNELS,S,S with S the book's side)")
    p.add_argument("--depth", type=int, default=1, help="nesting levels to show (default 1)")
    p.add_argument("--num-classes", type=int, default=10, help="outputs (default 10)")
    p.add_argument("--in-channels", type=int, default=None,
                   help="input channels (default: C of --input, else 1)")
    p.set_defaults(func=run_summary)


def _meta_model(name: str, **kwargs):
    import torch

    from cnnlab.models import create_model

    # meta tensors have shapes but no data: VGG-11's 129 M parameters cost nothing here
    with torch.device("meta"):
        return create_model(name, **kwargs)


def run_models(args: argparse.Namespace) -> int:
    from cnnlab.models import get_model_info, list_models

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; run `cnnlab models` for all")
    rows = [("name", "params", "input", "lr", "epochs", "batch", "description")]
    for name in names:
        info = get_model_info(name)
        params = sum(p.numel() for p in _meta_model(name).parameters())
        rows.append((name, f"{params:,}", f"{info.input_size}x{info.input_size}", f"{info.lr:g}",
                     str(info.epochs), str(info.batch_size), info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:])]
        print("  ".join(cells + [r[-1]]).rstrip())
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from cnnlab.guards import check_int
    from cnnlab.model_summary import summary
    from cnnlab.models import get_model_info

    info = get_model_info(args.model)
    shape = args.input
    if shape is not None and len(shape) != 4:
        raise ConfigError(f"--input takes 4 integers B,C,H,W like 1,1,{info.input_size},"
                          f"{info.input_size}; got {','.join(map(str, shape))}")
    if args.in_channels is not None:
        check_int("--in-channels", args.in_channels)
    in_channels = args.in_channels or (shape[1] if shape else 1)
    if shape is None:
        shape = (1, in_channels, info.input_size, info.input_size)
    elif shape[1] != in_channels:
        raise ConfigError(f"--input has {shape[1]} channels but --in-channels is {in_channels}; "
                          f"make them agree")
    if shape[2] != shape[3]:
        raise ConfigError(f"cnnlab models take square inputs, got {shape[2]}x{shape[3]}; "
                          f"pass --input 1,{in_channels},{shape[2]},{shape[2]}")
    kwargs = dict(num_classes=args.num_classes, in_channels=in_channels, input_size=shape[2])
    model = _meta_model(args.model, **kwargs)
    if sum(p.numel() for p in model.parameters()) < 20_000_000:
        # small enough to build for real: a CPU forward is quicker than the meta
        # device's first-use imports (seconds)
        from cnnlab.models import create_model

        model = create_model(args.model, **kwargs)
    print(summary(model, shape, depth=args.depth))
    return 0
