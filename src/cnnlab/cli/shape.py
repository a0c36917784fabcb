"""`cnnlab shape`: output sizes and receptive fields with the formulas filled in (d2l 7.3)."""

from __future__ import annotations

import argparse

from cnnlab.cli._common import int_tuple
from cnnlab.errors import ConfigError

_EXAMPLES = """examples:
  cnnlab shape --input 8,8 --kernel 3,5 --padding 0,1 --stride 3,4
  cnnlab shape --input 28 --kernel 5 --padding 2
  cnnlab shape --model lenet --input 28,28
  cnnlab shape --model resnet18 --input 96 --spatial-only"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "shape", help="output size of a layer, or every layer's size and receptive field",
        description="For one convolution/pooling window (--kernel): the output size per "
        "dimension with floor((n + 2p - d(k-1) - 1)/s) + 1 filled in. For a model "
        "(--model): every layer's output size and the receptive field of one output unit "
        "(size rf, jump between neighbours, start = centre of the first unit's field).",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=int_tuple, metavar="H,W",
                   help="input height,width (one number: square); with --model the "
                   "default is the model's book size")
    p.add_argument("--kernel", type=int_tuple, metavar="KH,KW", help="kernel size")
    p.add_argument("--padding", type=int_tuple, default=(0,), metavar="PH,PW",
                   help="padding on each side (default 0)")
    p.add_argument("--stride", type=int_tuple, default=(1,), metavar="SH,SW",
                   help="stride (default 1)")
    p.add_argument("--dilation", type=int_tuple, default=(1,), metavar="DH,DW",
                   help="dilation (default 1)")
    p.add_argument("--model", metavar="NAME", help="a registered model (see `cnnlab models`)")
    p.add_argument("--in-channels", type=int, default=1, help="input channels (default 1)")
    p.add_argument("--spatial-only", action="store_true",
                   help="with --model: list only convolution and pooling layers")
    # the library names its parameters (input_size=); errors show these flags instead
    p.set_defaults(func=run, param_flags={"input_size": "--input", "kernel_size": "--kernel"})


def _hw(value: tuple[int, ...] | None, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if len(value) == 1:
        return (value[0], value[0])
    if len(value) != 2:
        raise ConfigError(f"--{name} takes one or two integers like 3 or 3,5; got "
                          f"{','.join(map(str, value))}")
    return value  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    from cnnlab.shapes import explain, explain_model

    size = _hw(args.input, "input")
    if args.model:
        if args.kernel is not None:
            raise ConfigError("pass either --model NAME or --kernel K, not both")
        result = explain_model(args.model, size, in_channels=args.in_channels)
        print(f"model: {args.model}")
        if args.spatial_only:
            print("\n".join(str(result).splitlines()[:3]))
            print(result.table(only_spatial=True))
            print("\nformulas filled in (height; rf_0 = 1, jump_0 = 1, start_0 = 0):")
            print(result.derivations())
            for note in result.notes:
                print(f"note: {note}")
        else:
            print(result)
        last = result.final
        print(f"receptive field of one unit of {last.name} ({last.type}): "
              f"{_fmt(last.rf)} input pixels, jump {_fmt(last.jump)}")
        return 0
    if args.kernel is None or size is None:
        raise ConfigError("give --input H,W and --kernel KH,KW (or --model NAME); "
                          "see cnnlab shape --help")
    print(explain(size, _hw(args.kernel, "kernel"), padding=_hw(args.padding, "padding"),
                  stride=_hw(args.stride, "stride"), dilation=_hw(args.dilation, "dilation")))
    return 0


def _fmt(v: tuple[int, int] | None) -> str:
    if v is None:
        return "all"
    return f"{v[0]}" if v[0] == v[1] else f"{v[0]}x{v[1]}"
