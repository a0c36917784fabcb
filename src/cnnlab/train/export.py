"""``cnnlab export``: a checkpoint to ONNX (checked with onnxruntime) or to safetensors.

ONNX: ``torch.onnx.export`` with the dynamo exporter (``torch.export`` graph,
onnxscript) where this torch has it, else the TorchScript exporter, with a
dynamic batch dimension (input ``images`` [N, C, H, W] float32 as the model saw
it in training, output ``logits`` [N, classes]). The file is then run with
onnxruntime on real test images of the checkpoint's dataset and its logits are
compared with PyTorch's. safetensors: a Hugging Face style folder (see
:mod:`cnnlab.models.pretrained`). ONNX needs the extra ``cnnlab[export]``.

Example:
    >>> result = export_checkpoint("runs/lenet/best.pt", "lenet.onnx", to="onnx")  # doctest: +SKIP
    >>> result["max_abs_diff"] < 1e-4  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.models.pretrained import CONFIG_NAME, FORMAT, WEIGHTS_NAME, load_folder

FORMATS = ("onnx", "safetensors")
VERIFY_IMAGES = 64
# logits of the exported graph may differ from PyTorch's by float rounding in another
# operator order; anything larger is a wrong export
ATOL, RTOL = 1e-4, 1e-3


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None,
                      to: str = "onnx", verify: bool = True) -> dict[str, Any]:
    """Export ``checkpoint`` (a .pt or an exported folder) to ``out``; see the module doc.

    ``out`` None: next to the checkpoint (``best.onnx`` or folder ``best-safetensors``).
    Returns ``dict(path, format, ...)``; for ONNX also ``dynamo``, ``images`` and
    ``max_abs_diff`` (0 images when ``verify=False``).
    """
    from cnnlab.train.checkpoint import model_from_checkpoint

    if to not in FORMATS:
        raise ConfigError(f"--to must be one of {', '.join(FORMATS)}; got {to!r}")
    src = Path(checkpoint)
    net, cfg, state = model_from_checkpoint(src)
    if out is None:
        stem = src.name if src.is_dir() else src.stem
        out = src.parent / (f"{stem}.onnx" if to == "onnx" else f"{stem}-safetensors")
    out = Path(out)
    if to == "safetensors":
        return {"path": write_folder(net, cfg, state, out), "format": to}
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out must name a .onnx file, got {str(out)!r}")
    return export_onnx(net, state, out, cfg=cfg, verify=verify)


def write_folder(net: torch.nn.Module, cfg: Any, state: dict[str, Any], out: Path) -> Path:
    """model.safetensors + config.json of ``net`` into the folder ``out``."""
    from safetensors.torch import save_file

    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must name a folder for safetensors")
    out.mkdir(parents=True, exist_ok=True)
    classes = list(state.get("classes") or [])
    size = state.get("image_size") or [cfg.resize, cfg.resize]
    config = {
        "format": FORMAT, "model_type": "cnnlab", "architecture": cfg.model,
        "num_classes": int(state["num_classes"]), "in_channels": int(state["in_channels"]),
        "image_size": [int(size[0]), int(size[-1])],
        "id2label": {str(i): c for i, c in enumerate(classes)},
        "label2id": {c: i for i, c in enumerate(classes)},
        "normalization": state.get("normalization"), "model_kwargs": cfg.extra or {},
        "train_config": cfg.to_dict(), "epoch": int(state.get("epoch", 0)),
    }
    weights = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    tmp = out / f".{WEIGHTS_NAME}.{os.getpid()}.tmp"
    try:  # atomic: a reader sees the old file or the new one
        save_file(weights, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, out / WEIGHTS_NAME)
    finally:
        tmp.unlink(missing_ok=True)
    text = json.dumps(config, indent=2) + "\n"
    (out / f".{CONFIG_NAME}.tmp").write_text(text)
    os.replace(out / f".{CONFIG_NAME}.tmp", out / CONFIG_NAME)
    return out


def folder_checkpoint(folder: str | os.PathLike, map_location: Any = "cpu"):
    """An exported folder as ``model_from_checkpoint`` returns a checkpoint:
    ``(model in eval mode, TrainConfig, checkpoint-like dict)``."""
    from cnnlab.train.config import TrainConfig

    device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
    net, meta = load_folder(folder, device=str(device))
    try:
        cfg = TrainConfig.from_dict(meta.get("train_config") or {"model": meta["architecture"]})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{folder} holds an unusable train_config ({e}); "
                              "re-export the checkpoint") from None
    cfg.out_dir = None
    labels = meta.get("id2label") or {}
    classes = [str(labels[str(i)]) for i in range(len(labels))] if all(
        str(i) in labels for i in range(len(labels))) else []
    state = {"config": cfg.to_dict(), "num_classes": meta["num_classes"],
             "in_channels": meta["in_channels"], "image_size": meta["image_size"],
             "classes": classes if len(classes) == meta["num_classes"] else [],
             "normalization": meta.get("normalization"), "epoch": meta.get("epoch", 0),
             "model": net.state_dict()}
    return net, cfg, state


def _quiet():
    """The exporters print progress and warn about absent torchvision ops: hush them."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    logger = logging.getLogger("torch.onnx")
    old = logger.level
    logger.setLevel(logging.ERROR)
    stack.callback(logger.setLevel, old)
    return stack


def export_onnx(net: torch.nn.Module, state: dict[str, Any], out: Path, *, cfg: Any = None,
                verify: bool = True) -> dict[str, Any]:
    """Write ``net`` as ONNX with a dynamic batch; check it with onnxruntime."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the export extra: pip install 'cnnlab[export]' "
                          "(onnx, onnxruntime, onnxscript)") from None
    size = state.get("image_size") or [cfg.resize, cfg.resize]
    example = torch.zeros(2, int(state["in_channels"]), int(size[0]), int(size[-1]))
    net = net.cpu().eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    dynamo = _has_dynamo_exporter()
    try:
        with _quiet():
            if dynamo:
                batch = torch.export.Dim("batch", min=1, max=1 << 20)
                torch.onnx.export(net, (example,), str(tmp), dynamo=True,
                                  input_names=["images"], output_names=["logits"],
                                  dynamic_shapes=({0: batch},), external_data=False)
            else:
                torch.onnx.export(net, (example,), str(tmp), input_names=["images"],
                                  output_names=["logits"],
                                  dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    result = {"path": out, "format": "onnx", "dynamo": dynamo, "images": 0,
              "max_abs_diff": None}
    if verify:
        X = sample_images(cfg, state)
        result.update(images=len(X), max_abs_diff=check_onnx(out, net, X))
    return result


def _has_dynamo_exporter() -> bool:
    import inspect

    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return "dynamo" in inspect.signature(torch.onnx.export).parameters


def sample_images(cfg: Any, state: dict[str, Any], n: int = VERIFY_IMAGES) -> torch.Tensor:
    """``n`` real test images of the checkpoint's dataset, as the model saw them in training."""
    from cnnlab.data import DataModule

    size = state.get("image_size") or [cfg.resize, cfg.resize]
    dm = DataModule(cfg.dataset, batch_size=n, resize=(int(size[0]), int(size[-1])),
                    root=cfg.data_dir, normalize=cfg.normalize, num_train=1,
                    num_val=None)
    X, _ = next(iter(dm.val_dataloader()))
    return X


def check_onnx(path: Path, net: torch.nn.Module, X: torch.Tensor) -> float:
    """Max |logit difference| between onnxruntime on ``path`` and ``net`` on ``X``;
    CheckpointError when they differ by more than float rounding."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X.numpy()})[0]
    with torch.no_grad():
        want = net(X).float().numpy()
    diff = float(np.abs(got - want).max())
    if got.shape != want.shape or not np.allclose(got, want, atol=ATOL, rtol=RTOL):
        raise CheckpointError(f"the ONNX file {path} gives logits off by up to {diff:.3g} from "
                              "PyTorch's on real test images; this model does not export "
                              "faithfully (please report it)")
    return diff
