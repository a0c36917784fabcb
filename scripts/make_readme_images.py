"""Render the README's pictures: one from each `cnnlab viz` command, into docs/images/.

Trains a short LeNet (modern: ReLU + max pooling) run on Fashion-MNIST when its files
are present (else on the synthetic shapes), then runs `cnnlab viz kernels | features |
activations | errors | confusion` on the checkpoint. Every picture is made by the code.

    python scripts/make_readme_images.py                 # ~2 epochs on 20000 images
    python scripts/make_readme_images.py --epochs 1 --num-train 5000 --out docs/images
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet-modern")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--num-train", type=int, default=20000)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs/images"))
    p.add_argument("--dpi", type=int, default=90)
    args = p.parse_args()

    from cnnlab.cli import main as cnnlab
    from cnnlab.data import is_available
    from cnnlab.train import TrainConfig, Trainer

    dataset = "fashion-mnist" if is_available("fashion-mnist") else "synthetic"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as run:
        cfg = TrainConfig(model=args.model, dataset=dataset, epochs=args.epochs,
                          num_train=args.num_train, optimizer="momentum", lr=0.05,
                          out_dir=run, seed=0)
        Trainer(cfg).fit()
        ckpt = str(Path(run) / "best.pt")
        commands = [
            ["viz", "kernels", ckpt],
            ["viz", "features", ckpt, "--index", "0"],
            ["viz", "activations", ckpt, "--num-images", "512"],
            ["viz", "errors", ckpt, "--top", "12"],
            ["viz", "confusion", ckpt],
        ]
        for cmd in commands:
            target = out / f"{cmd[1]}.png"
            print(f"$ cnnlab {' '.join(cmd)} --out {target}")
            code = cnnlab([*cmd, "--out", str(target), "--dpi", str(args.dpi)])
            if code:
                return code
    print(f"model {args.model}, {dataset}, {args.epochs} epochs on {args.num_train} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
