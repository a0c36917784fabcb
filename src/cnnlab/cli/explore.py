"""`cnnlab explore`: the interactive app (Convolution, Model and Runs views) in the browser."""

from __future__ import annotations

import argparse
import sys

_EXAMPLES = """examples:
  cnnlab explore                       # the Convolution view; ./runs if it exists
  cnnlab explore runs/                 # every run and checkpoint under runs/
  cnnlab explore runs/lenet/best.pt --port 7861 --no-browser
in a notebook (Jupyter, Colab), shown under the cell:
  app = cnnlab.explore(net_or_checkpoint_or_run_folder); app.close()
needs the optional extra: pip install 'cnnlab[explore]'"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explore", help="interactive app: convolution, your model's insides, your runs",
        description="Start a local web app with three views:\n"
        "  Convolution: a kernel sliding over an image, the output-size formula filled in,\n"
        "               pooling, the 1x1 convolution as a matrix product (d2l 7.2-7.5)\n"
        "  Model:       a checkpoint's prediction, feature maps, kernels, the receptive\n"
        "               field of a clicked unit, activation statistics (7.6, 8.x)\n"
        "  Runs:        curves (live while training), final metrics, two runs compared\n"
        "Inputs: a test image, an upload, or a drawing (pick the brush, draw with the\n"
        "mouse). Checkpoints written while the app runs appear when the picker is opened\n"
        "or its rescan button is pressed. Only files under the folders given are offered;\n"
        "nothing is fetched from the internet. Listens on 127.0.0.1 unless --host says\n"
        "otherwise.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="RUN_DIR_OR_CKPT",
                   help="run folders (searched for runs and .pt checkpoints) or checkpoint "
                   "files; default: ./runs if it exists")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default: the first free one from 7860)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnlab.errors import ConfigError
    from cnnlab.explore.app import LOCAL_HOSTS, import_gradio, launch
    from cnnlab.explore.paths import Library

    if args.port is not None and not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    paths = args.paths or (["runs"] if Path("runs").is_dir() else [])
    library = Library(paths)
    import_gradio()  # missing: one line saying how to install it
    if args.host not in LOCAL_HOSTS:
        print(f"cnnlab: warning: --host {args.host} lets other machines on the network use "
              "this app (and read the runs and checkpoints you gave it); the default "
              "127.0.0.1 keeps it on this machine", file=sys.stderr)
    launch(library, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0
