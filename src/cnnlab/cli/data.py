"""`cnnlab data`: where each dataset is, fetch it, show a grid of samples."""

from __future__ import annotations

import argparse

from cnnlab.cli._common import existing_dir
from cnnlab.data.names import DATASET_NAMES

_EXAMPLES = """examples:
  cnnlab data                          where each dataset is found, or how to get it
  cnnlab data fetch fashion-mnist      make it available (find it, else download it)
  cnnlab data show --out grid.png      18 training images with their class names
  cnnlab data show --dataset synthetic --n 30 --out shapes.png"""



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help="where the datasets are; fetch them; show sample images",
        description="Without a sub-command: list each dataset and every folder searched for "
        "it (--data-dir, $CNNLAB_DATA, ~/.cache/cnnlab/NAME, Debian's "
        "/usr/share/datasets/fashion-mnist), with how to get what is missing.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder holding the IDX files (searched first)")
    p.set_defaults(func=run_list)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    def data_dir(sp: argparse.ArgumentParser, must_exist: bool = False) -> None:
        # SUPPRESS: `cnnlab data --data-dir X show` and `cnnlab data show --data-dir X` both work
        sp.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                        type=existing_dir if must_exist else str,
                        help="folder holding the IDX files (searched first)")

    ls = sub.add_parser("list", help="where each dataset is found (the default)",
                        description="Where each dataset is found, what is missing, how to get it.")
    data_dir(ls)
    ls.set_defaults(func=run_list)

    fetch = sub.add_parser(
        "fetch", help="make a dataset available: find it, else download it",
        description="Look for NAME on the search path; if it is nowhere, download the four "
        "files from the official mirror into ~/.cache/cnnlab/NAME (md5-checked, written "
        "atomically), then parse and cache them.")
    fetch.add_argument("name", choices=DATASET_NAMES[:2], metavar="NAME",
                       help="fashion-mnist or mnist")
    data_dir(fetch, must_exist=True)
    fetch.add_argument("--no-progress", action="store_true", help="no download progress bar")
    fetch.set_defaults(func=run_fetch)

    show = sub.add_parser(
        "show", help="save a grid of sample images with their class names",
        description="Save a grid of images with their class names (the book's visualize).")
    show.add_argument("--dataset", default="fashion-mnist", choices=DATASET_NAMES,
                      help="dataset (default fashion-mnist)")
    show.add_argument("--out", default="grid.png", metavar="PNG",
                      help="output image file (default grid.png)")
    show.add_argument("--n", type=int, default=18, help="number of images (default 18)")
    show.add_argument("--split", choices=("train", "test"), default="train",
                      help="which split (default train)")
    show.add_argument("--resize", type=int, default=None, metavar="SIDE",
                      help="show the images resized, as a model would see them")
    show.add_argument("--augment", default=None, metavar="LIST",
                      help="show augmented training images, e.g. crop,flip,erase")
    show.add_argument("--seed", type=int, default=0, help="which images (default 0)")
    data_dir(show, must_exist=True)  # a typo must not show another copy's images
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    from cnnlab.data.sources import SOURCES, find_dataset_dir, how_to_get, locate

    for name, spec in SOURCES.items():
        files = find_dataset_dir(name, args.data_dir)
        state = f"available ({files['train_images'].parent})" if files else "MISSING"
        print(f"{name}: {state}")
        for place in locate(name, args.data_dir):
            print(f"  {place.place:<60} {place.status}")
        if not files:
            print(f"  to get it: `cnnlab data fetch {name}` (downloads from {spec.mirrors[0]}), "
                  f"or {how_to_get(name)}")
    print("synthetic: available (generated in memory, no files)")
    from cnnlab import native

    path = "native C kernel" if native.available() else "PyTorch"
    print(f"batch resize on CPU: {path} ({native.status()})")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from cnnlab.data.datasets import load_dataset
    from cnnlab.data.sources import ensure_files

    files = ensure_files(args.name, args.data_dir, progress=not args.no_progress)
    ds = load_dataset(args.name, root=args.data_dir)  # parses once and writes the cache
    print(f"{args.name}: {files['train_images'].parent} "
          f"({len(ds.train_labels)} training, {len(ds.test_labels)} test images)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import torch

    from cnnlab.data.datamodule import DataModule
    from cnnlab.data.show import image_grid
    from cnnlab.errors import ConfigError

    if not 1 <= args.n <= 500:  # one subplot per image: thousands would take minutes
        raise ConfigError(f"--n must be between 1 and 500, got {args.n}")
    if args.augment and args.split != "train":
        raise ConfigError("--augment applies to training images; drop --split test")
    dm = DataModule(args.dataset, batch_size=args.n, resize=args.resize, root=args.data_dir,
                    augment=args.augment, seed=args.seed)
    X = dm._train_X if args.split == "train" else dm._val_X
    y = dm._train_y if args.split == "train" else dm._val_y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    gen = torch.Generator().manual_seed(args.seed)
    batch = dm.make_batch(X[idx], train=args.split == "train", generator=gen)
    ncols = min(args.n, 9)
    nrows = -(-args.n // ncols)
    fig = image_grid(batch, dm.text_labels(y[idx]), nrows=nrows, ncols=ncols)
    from pathlib import Path

    from cnnlab.guards import atomic_output

    with atomic_output(args.out) as tmp:  # a failed write leaves the old file as it was
        fig.savefig(tmp, dpi=100, format=Path(args.out).suffix[1:].lower() or "png")
    print(f"wrote {args.out} ({len(idx)} {args.split} images of {dm.name})")
    return 0
