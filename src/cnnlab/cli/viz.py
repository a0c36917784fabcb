"""`cnnlab viz`: pictures of a trained network, written as PNG files (d2l 7.2-7.6)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli._common import existing_dir
from cnnlab.train.config import DEVICES

# upper bounds of the count flags: one subplot per image or channel (thousands would
# take minutes and gigabytes), and never more test images than a dataset has
MAX_TOP = 256
MAX_CHANNELS = 256
MAX_IMAGES = 1_000_000

_KINDS = {
    "kernels": "the first convolution's kernels as a grid",
    "features": "feature maps of each convolution stage for one image",
    "activations": "per-layer activations for test images vs noise vs unfamiliar images",
    "errors": "the most confidently wrong test images, with true and predicted class",
    "confusion": "the confusion matrix on the test images",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "viz", help="pictures of a trained model: kernels, features, activations, errors",
        description="Draw what a trained checkpoint learned and where it fails; each "
        "command writes a PNG and prints the numbers behind it.",
        epilog="examples:\n  cnnlab viz kernels runs/lenet/best.pt --out k.png\n"
        "  cnnlab viz features runs/lenet/best.pt shoe.jpg --invert --out f.png\n"
        "  cnnlab viz activations runs/lenet/best.pt --out a.png\n"
        "  cnnlab viz errors runs/lenet/best.pt --out e.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="viz_command", metavar="KIND", required=True)
    for kind, help_text in _KINDS.items():
        q = sub.add_parser(kind, help=help_text, description=help_text[0].upper() +
                           help_text[1:] + ".")
        q.add_argument("checkpoint", metavar="CKPT", help="a checkpoint (runs/.../best.pt)")
        if kind == "features":
            q.add_argument("image", nargs="?", metavar="IMAGE",
                           help="a PNG/JPEG file (default: a test image, see --index)")
            q.add_argument("--index", type=int, default=None,
                           help="use test image number N instead of a file (default 0)")
            q.add_argument("--invert", action="store_true",
                           help="invert the image file (dark object on white -> light on "
                           "black, as in Fashion-MNIST)")
            q.add_argument("--channels", type=int, default=8, help="channels per stage (8)")
        if kind == "errors":
            q.add_argument("--top", type=int, default=16, help="how many mistakes to show (16)")
        if kind == "activations":
            q.add_argument("--ood", choices=("auto", "mnist", "synthetic", "inverted"),
                           default="auto", help="the unfamiliar input: MNIST digits when "
                           "present (auto), the synthetic shapes, or inverted test images")
        if kind != "kernels":
            q.add_argument("--dataset", default=None,
                           help="fashion-mnist | mnist | synthetic (default: the checkpoint's)")
            q.add_argument("--data-dir", default=None, type=existing_dir,
                           help="folder with the dataset files (used or refused, never "
                           "swapped for another copy)")
        if kind not in ("kernels", "features"):
            q.add_argument("--num-images", type=int,
                           default=512 if kind == "activations" else None,
                           help="use only the first N test images (default: "
                           + ("512)" if kind == "activations" else "all)"))
        q.add_argument("--out", default=f"{kind}.png", help=f"PNG to write ({kind}.png)")
        q.add_argument("--dpi", type=int, default=110, help="resolution of the PNG (110)")
        q.add_argument("--device", choices=DEVICES, default="cpu",
                       help="where the model runs (default cpu; auto: a GPU when present)")
        q.set_defaults(func=run)


# DataModules built in this process, by their arguments: `cnnlab viz` runs one command
# per process, but scripts and tests that call main() several times load the data once
_DATA_CACHE: dict[tuple, object] = {}


def _data(args: argparse.Namespace, cfg, ckpt: dict):
    from cnnlab.data import DataModule

    size = [int(s) for s in (ckpt.get("image_size") or [28, 28])]
    kw = dict(name=args.dataset or cfg.dataset, batch_size=256,
              resize=None if size == [28, 28] else tuple(size),
              root=args.data_dir or _recorded_dir(cfg.data_dir), normalize=bool(cfg.normalize),
              download=False,
              device=getattr(args, "device", "cpu"))
    key = tuple(sorted((k, str(v)) for k, v in kw.items()))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep at most one dataset in memory
        _DATA_CACHE[key] = DataModule(**kw)
    return _DATA_CACHE[key]


def _recorded_dir(data_dir: str | None) -> str | None:
    """The checkpoint's --data-dir where it still is a folder, else None (the usual places).

    It was named on the machine that trained; a folder named now, with --data-dir,
    is used or refused.
    """
    return data_dir if data_dir and Path(data_dir).expanduser().is_dir() else None


def run(args: argparse.Namespace) -> int:
    from cnnlab import viz
    from cnnlab.errors import ConfigError
    from cnnlab.guards import atomic_output, check_int
    from cnnlab.train import model_from_checkpoint

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: cnnlab viz writes PNG files; use a name ending "
                          "in .png")
    for flag, most in (("num_images", MAX_IMAGES), ("top", MAX_TOP), ("channels", MAX_CHANNELS),
                       ("index", MAX_IMAGES - 1)):
        value = getattr(args, flag, None)
        if value is not None:
            check_int(f"--{flag.replace('_', '-')}", value, least=0 if flag == "index" else 1,
                      most=most)
    check_int("--dpi", args.dpi, least=20, most=600)
    from cnnlab.train.steps import pick_device

    # a GPU that is not there is one clear line, before the checkpoint is read
    args.device = str(pick_device(args.device))
    model, cfg, ckpt = model_from_checkpoint(args.checkpoint, map_location=args.device)
    kind = args.viz_command
    if kind == "kernels":
        result = viz.kernels(model)
        n = result.norms
        print(f"{result.layer}: {tuple(result.weights.shape)}; kernel L2 norms "
              f"min {float(n.min()):.3f} mean {float(n.mean()):.3f} max {float(n.max()):.3f}")
    elif kind == "features":
        result = _features(args, model, cfg, ckpt)
        for st in result.stages:
            print(f"{st.layer}: {'x'.join(map(str, st.shape))}, channels shown "
                  f"{st.channels}")
    else:
        data = _data(args, cfg, ckpt)
        if kind == "activations":
            result = viz.activations(model, data, max_images=args.num_images, ood=args.ood)
            print(result.table())
        elif kind == "errors":
            result = viz.errors(model, data, top=args.top, max_images=args.num_images)
            print(result.table())
        else:
            result = viz.confusion(model, data, max_images=args.num_images)
            print(result.table())
    with atomic_output(out) as tmp:  # a failed write leaves the old picture, not half of one
        result.figure.savefig(tmp, dpi=args.dpi, format="png")
    w, h = (int(v) for v in result.figure.get_size_inches() * args.dpi)
    print(f"wrote {out} (about {w}x{h} px)")
    return 0


def _features(args: argparse.Namespace, model, cfg, ckpt: dict):
    from cnnlab import viz
    from cnnlab.errors import ConfigError

    if args.image is not None and args.index is not None:
        raise ConfigError("give either IMAGE or --index N, not both")
    if args.image is not None:
        # everything needed is in the checkpoint: no dataset to load
        classes = list(ckpt.get("classes") or [])
        size = ckpt.get("image_size") or [28, 28]
        raw = viz.load_image(args.image, int(ckpt.get("in_channels", 1)), size,
                             invert=args.invert)
        norm = ckpt.get("normalization")
        if norm is None and cfg.normalize:
            data = _data(args, cfg, ckpt)
            norm = {"mean": [float(v) for v in _flat(data.mean)],
                    "std": [float(v) for v in _flat(data.std)]}
        X, label = viz.to_model_input(raw, norm)[0], None
    else:
        data = _data(args, cfg, ckpt)
        classes = list(data.classes)
        index = args.index or 0
        if not 0 <= index < data.num_val:
            raise ConfigError(f"--index must be in 0..{data.num_val - 1}, got {index}")
        ev = viz.eval_set(data, index + 1)
        X, label = ev.X[index], int(ev.y[index])
        print(f"test image {index}: true class {classes[label]}")
    result = viz.features(model, X, channels=args.channels, classes=classes)
    name = classes[result.prediction] if 0 <= result.prediction < len(classes) \
        else result.prediction
    print(f"predicted: {name} ({float(result.probabilities.max()):.1%})")
    return result


def _flat(value) -> list:
    import torch

    return torch.as_tensor(value).flatten().tolist()
