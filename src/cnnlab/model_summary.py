"""A layer table for any ``nn.Module``: output shapes, parameters, MACs, activation memory.

``summary(model, input_shape)`` runs one forward pass on zeros (in eval mode,
without gradients, on the model's device; a model built on the ``meta`` device
costs no compute at all) with hooks on every submodule. At ``depth=1`` the rows
are the model's top-level children (a VGG block or a ResNet stage is one row),
which is what the book's ``layer_summary`` printed; a larger depth expands nested
modules. MACs (multiply-accumulates) are counted for convolutions (grouped too:
output elements x in_channels/groups x kernel area) and linear layers (output
elements x in_features); batch norm, pooling and activations count 0 (their cost
is a few operations per element, negligible beside those). Counts cover the whole
input batch.

Example:
    >>> import cnnlab
    >>> s = cnnlab.summary(cnnlab.create_model("lenet"), (1, 1, 28, 28))
    >>> s.layer_shapes()[:3]
    [('Conv2d', (1, 6, 28, 28)), ('Sigmoid', (1, 6, 28, 28)), ('AvgPool2d', (1, 6, 14, 14))]
    >>> s.total_params, s.total_macs
    (61706, 416520)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.guards import check_int, check_memory


@dataclass
class SummaryRow:
    """One call of one module during the forward pass."""

    name: str  # dotted path in the model ("stage2.0.conv1")
    type: str  # class name ("Conv2d")
    depth: int  # 1 for top-level children
    output_shape: tuple | list | None  # a tuple of ints, a list of those (several outputs), None
    params: int  # parameters of this module and its children (0 on repeated calls)
    macs: int  # multiply-accumulates of this call, children included


@dataclass
class Summary:
    """What :func:`summary` measured; ``print(s)`` shows the table."""

    model_name: str
    input_shape: tuple[int, ...]
    depth: int
    rows: list[SummaryRow] = field(default_factory=list)  # rows up to ``depth``, in call order
    all_rows: list[SummaryRow] = field(default_factory=list)  # every module call
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0
    activation_bytes: int = 0  # outputs of every leaf module (kept for backward, roughly)
    param_bytes: int = 0
    input_bytes: int = 0

    def layer_shapes(self) -> list[tuple[str, tuple | list | None]]:
        """``(class name, output shape)`` per row, as the book's ``layer_summary`` printed."""
        return [(r.type, r.output_shape) for r in self.rows]

    def expand(self, depth: int) -> Summary:
        """The same measurements shown down to ``depth`` levels of nesting."""
        rows = [r for r in self.all_rows if r.depth <= depth]
        return Summary(**{**self.__dict__, "depth": depth, "rows": rows})

    def __str__(self) -> str:
        head = ("Layer (type)", "Output shape", "Params", "MACs")
        body = [("  " * (r.depth - 1) + f"{r.name} ({r.type})", _shape_text(r.output_shape),
                 f"{r.params:,}" if r.params else "-", f"{r.macs:,}" if r.macs else "-")
                for r in self.rows]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(4)]

        def fmt(line: Sequence[str]) -> str:
            return (f"{line[0]:<{widths[0]}}  {line[1]:<{widths[1]}}  "
                    f"{line[2]:>{widths[2]}}  {line[3]:>{widths[3]}}")

        rule = "-" * len(fmt(head))
        mb = 1024 ** 2
        lines = [f"{self.model_name} on input {list(self.input_shape)}", rule, fmt(head), rule,
                 *map(fmt, body), rule,
                 f"Total params: {self.total_params:,}",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                 f"Total MACs: {self.total_macs:,} ({_si(self.total_macs)})",
                 f"Input size: {self.input_bytes / mb:.2f} MB",
                 f"Activation memory (forward outputs): {self.activation_bytes / mb:.2f} MB",
                 f"Params size: {self.param_bytes / mb:.2f} MB",
                 f"Estimated total: "
                 f"{(self.input_bytes + self.activation_bytes + self.param_bytes) / mb:.2f} MB",
                 rule]
        return "\n".join(lines)


def summary(model: nn.Module, input_shape: Sequence[int], depth: int = 1) -> Summary:
    """Run ``model`` on zeros of ``input_shape`` and tabulate every module's output.

    Args:
        model: any module; its parameters' device and dtype are used for the input
            (build it under ``torch.device("meta")`` for shapes without compute).
        input_shape: the full input shape including the batch, e.g. ``(1, 1, 96, 96)``.
        depth: rows down to this nesting level (1 = top-level children).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
        >>> print(summary(net, (1, 1, 8, 8)).rows[0])  # doctest: +NORMALIZE_WHITESPACE
        SummaryRow(name='0', type='Conv2d', depth=1, output_shape=(1, 4, 6, 6), params=40,
                   macs=1296)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, (tuple, list, torch.Size)):
        raise ConfigError(f"input_shape must be a tuple like (1, 1, 28, 28), got {input_shape!r}")
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                        for s in shape):
        raise ConfigError(f"input_shape must be positive sizes like 1,1,28,28, got {input_shape}")
    shape = tuple(int(s) for s in shape)
    check_int("depth", depth)
    first = next(iter(list(model.parameters()) + list(model.buffers())), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    names = {m: n for n, m in model.named_modules()}
    rows: list[SummaryRow] = []
    open_rows: dict[int, list[int]] = {}  # id(module) -> indices of its unfinished rows
    seen: set[int] = set()
    leaf_bytes = [0]

    def pre_hook(module: nn.Module, args: tuple) -> None:
        name = names[module]
        params = 0 if id(module) in seen else sum(p.numel() for p in module.parameters())
        seen.add(id(module))
        rows.append(SummaryRow(name, type(module).__name__, name.count(".") + 1, None, params, 0))
        open_rows.setdefault(id(module), []).append(len(rows) - 1)

    def hook(module: nn.Module, args: tuple, output) -> None:
        index = open_rows[id(module)].pop()
        row = rows[index]
        row.output_shape = _shapes(output)
        macs = _macs(module, output)
        if macs:  # credit this call and every enclosing module call still open
            row.macs += macs
            for stack in open_rows.values():
                for i in stack:
                    rows[i].macs += macs
        if not any(True for _ in module.children()):
            leaf_bytes[0] += sum(t.numel() * t.element_size() for t in _tensors(output))

    handles = []
    for module, name in names.items():
        if name:  # the root is the table itself, not a row
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        # eval: BN uses running statistics, so a batch of one works (batch-norm LeNet)
        model.eval()
        if device.type != "meta":  # the input itself must fit, before it is allocated
            check_memory(math.prod(shape) * dtype.itemsize, f"an input of shape {shape}",
                         "pass a smaller input shape (B,C,H,W)")
        X = torch.zeros(shape, device=device, dtype=dtype)
        with torch.no_grad():
            out = model(X)
    except RuntimeError as e:  # wrong channels, too small an input: torch's text, one line
        if "allocate" in str(e) or "out of memory" in str(e):
            raise  # too large for this machine: the CLI says so (use a smaller input)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"the model does not accept input shape {tuple(shape)} ({first}); "
                          "pass the B,C,H,W it was built for") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    if not rows:  # a bare layer: show it as the only row
        rows.append(SummaryRow(type(model).__name__.lower(), type(model).__name__, 1,
                               _shapes(out), sum(p.numel() for p in model.parameters()),
                               _macs(model, out)))
        leaf_bytes[0] = sum(t.numel() * t.element_size() for t in _tensors(out))
    params = {id(p): p for p in model.parameters()}.values()
    result = Summary(
        model_name=_model_name(model),
        input_shape=shape,
        depth=depth,
        all_rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in rows if r.depth == 1),
        activation_bytes=leaf_bytes[0],
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        input_bytes=X.numel() * X.element_size(),
    )
    return result.expand(depth)


def _model_name(model: nn.Module) -> str:
    name = getattr(model, "name", None)  # cnnlab's LeNet/VGG keep their registry name
    return name if isinstance(name, str) else type(model).__name__


def _macs(module: nn.Module, output) -> int:
    if not isinstance(output, torch.Tensor):
        return 0
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    # nn.Conv2d and cnnlab's ScratchConv2d: weight (out, in / groups, kh, kw)
    if isinstance(weight, torch.Tensor) and weight.dim() == 4 and hasattr(module, "groups"):
        return output.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
    return 0


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for o in output for t in _tensors(o)]
    if isinstance(output, dict):
        return [t for o in output.values() for t in _tensors(o)]
    return []


def _shapes(output):
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    tensors = _tensors(output)
    return [tuple(t.shape) for t in tensors] if tensors else None


def _shape_text(shape) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, list):
        return ", ".join(str(list(s)) for s in shape)
    return str(list(shape))


def _si(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)
