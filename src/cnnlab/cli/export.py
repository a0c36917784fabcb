"""`cnnlab export`: a checkpoint to ONNX (checked with onnxruntime) or to safetensors.

Example:
    >>> from cnnlab.cli import main
    >>> main(["export", "runs/lenet/best.pt", "--to", "onnx"])  # doctest: +SKIP
    wrote runs/lenet/best.onnx (dynamo exporter, dynamic batch); onnxruntime ...
    0
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a checkpoint as ONNX or as a safetensors folder",
        description="ONNX: torch.onnx.export (dynamo exporter where available) with a "
                    "dynamic batch dimension, then checked with onnxruntime against PyTorch "
                    "on real test images (needs pip install 'cnnlab[export]'). safetensors: "
                    "a folder with model.safetensors and config.json (Hugging Face style) "
                    "that create_model(folder), cnnlab eval and cnnlab predict read back.")
    p.add_argument("checkpoint", help="best.pt or last.pt of a run (or an exported folder)")
    p.add_argument("--to", choices=("onnx", "safetensors"), default="onnx",
                   help="output format (default onnx)")
    p.add_argument("--out", metavar="PATH",
                   help="output .onnx file or folder (default: beside the checkpoint, "
                        "best.onnx or best-safetensors/)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="ONNX: skip the onnxruntime check on test images")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from cnnlab.train.export import export_checkpoint

    r = export_checkpoint(args.checkpoint, args.out, to=args.to, verify=args.verify)
    if r["format"] == "safetensors":
        print(f"wrote {r['path']} (model.safetensors + config.json); load it with "
              f"create_model({str(r['path'])!r}) or cnnlab eval {r['path']}")
        return 0
    how = "dynamo exporter" if r["dynamo"] else "TorchScript exporter"
    check = (f"onnxruntime matches PyTorch on {r['images']} test images (max |logit diff| "
             f"{r['max_abs_diff']:.2g})" if r["images"] else "not checked (--no-verify)")
    print(f"wrote {r['path']} ({how}, dynamic batch); {check}")
    return 0
