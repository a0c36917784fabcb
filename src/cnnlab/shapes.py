"""Output sizes and receptive fields, with the formulas filled in (d2l 7.3, 7.6, 8.6).

:func:`explain` answers "what size comes out of this layer?" for one convolution or
pooling window, showing the arithmetic per dimension. :func:`explain_model` walks a
network in forward order and reports, for every layer, its output size and the
receptive field of one output unit: its size ``r``, the ``jump`` (distance in input
pixels between neighbouring units) and ``start`` (input coordinate of the centre of
the first unit's field; pixel ``i`` has its centre at ``i``). The recurrence is the
standard one (Araujo et al., "Computing Receptive Fields of CNNs", Distill 2019)::

    r_out     = r_in + (k - 1) * d * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k - 1) / 2 * d - p) * jump_in

Example:
    >>> print(explain((8, 8), (3, 5), padding=(0, 1), stride=(3, 4)))
    h: floor((8 + 2*0 - 1*(3-1) - 1)/3) + 1 = floor(5/3) + 1 = 2   (n=8 k=3 p=0 s=3 d=1)
    w: floor((8 + 2*1 - 1*(5-1) - 1)/4) + 1 = floor(5/4) + 1 = 2   (n=8 k=5 p=1 s=4 d=1)
    output: 2x2   from floor((n + 2p - d(k-1) - 1)/s) + 1 per dimension
    >>> explain(8, 3, padding=1, stride=2).output_size
    (4, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.ops.shape import nonnegative_pair, output_side, positive_pair

GENERAL_FORMULA = "floor((n + 2p - d(k-1) - 1)/s) + 1"
RF_FORMULAS = (
    "r_out = r_in + (k-1)*d*jump_in",
    "jump_out = jump_in*s",
    "start_out = start_in + ((k-1)/2*d - p)*jump_in",
)
_DIM_NAMES = ("h", "w")


def _pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; checks the type and the lower bound (0 or 1), naming the argument."""
    return positive_pair(value, name) if minimum else nonnegative_pair(value, name)


@dataclass(frozen=True)
class DimExplanation:
    """One spatial dimension of :func:`explain`: the inputs and the filled-in formula."""

    name: str  # "h" or "w"
    n: int  # input size, pixels
    k: int  # kernel size
    p: int  # padding on each side
    s: int  # stride
    d: int  # dilation
    numerator: int  # n + 2p - d(k-1) - 1
    out: int  # output size, pixels

    @property
    def formula(self) -> str:
        """The formula with this dimension's numbers substituted, ending with the result."""
        filled = f"floor(({self.n} + 2*{self.p} - {self.d}*({self.k}-1) - 1)/{self.s}) + 1"
        return f"{filled} = floor({self.numerator}/{self.s}) + 1 = {self.out}"

    def __str__(self) -> str:
        args = f"n={self.n} k={self.k} p={self.p} s={self.s} d={self.d}"
        return f"{self.name}: {self.formula}   ({args})"


@dataclass(frozen=True)
class ShapeExplanation:
    """What :func:`explain` returns: one :class:`DimExplanation` per dimension."""

    dims: tuple[DimExplanation, ...]

    @property
    def output_size(self) -> tuple[int, ...]:
        return tuple(d.out for d in self.dims)

    def __str__(self) -> str:
        lines = [str(d) for d in self.dims]
        size = "x".join(str(v) for v in self.output_size)
        lines.append(f"output: {size}   from {GENERAL_FORMULA} per dimension")
        return "\n".join(lines)


def explain(input_size: int | Sequence[int], kernel_size: int | Sequence[int],
            padding: int | Sequence[int] = 0, stride: int | Sequence[int] = 1,
            dilation: int | Sequence[int] = 1) -> ShapeExplanation:
    """Output size of a convolution or pooling window, with the arithmetic per dimension.

    Uses ``floor((n + 2p - d(k-1) - 1)/s) + 1``, which for ``d = 1`` is the book's
    ``floor((n - k + 2p + s)/s)`` (d2l 7.3). A kernel that does not fit into the padded
    input is a :class:`ConfigError`.

    Example:
        >>> explain((8, 8), (5, 3), padding=(2, 1)).output_size
        (8, 8)
        >>> explain(28, 5, padding=2).dims[0].formula
        'floor((28 + 2*2 - 1*(5-1) - 1)/1) + 1 = floor(27/1) + 1 = 28'
    """
    n = _pair(input_size, "input_size", 1)
    k = _pair(kernel_size, "kernel_size", 1)
    p = _pair(padding, "padding", 0)
    s = _pair(stride, "stride", 1)
    d = _pair(dilation, "dilation", 1)
    dims = []
    for i, name in enumerate(_DIM_NAMES):
        numerator = n[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
        if numerator < 0:
            raise ConfigError(
                f"{name}: the kernel spans {d[i] * (k[i] - 1) + 1} pixels (k={k[i]}, d={d[i]}) "
                f"but the padded input has only {n[i] + 2 * p[i]} (n={n[i]}, p={p[i]}); "
                "use a smaller kernel or more padding")
        dims.append(DimExplanation(name, n[i], k[i], p[i], s[i], d[i], numerator,
                                   output_side(n[i], k[i], p[i], s[i], d[i])))
    return ShapeExplanation(tuple(dims))


# ---------------------------------------------------------------- receptive fields

@dataclass(frozen=True)
class LayerRow:
    """One leaf module of :func:`explain_model`, in the order the forward pass ran it.

    ``rf``/``jump``/``start`` are per dimension (h, w), in input pixels. For layers
    that mix every position (Flatten, Linear) they are ``None``: the field is the whole
    input. ``branch`` marks a layer off the main path (e.g. a residual 1x1 shortcut).
    """

    name: str
    type: str
    output_shape: tuple[int, ...]  # without the batch dimension
    rf: tuple[int, int] | None
    jump: tuple[int, int] | None
    start: tuple[float, float] | None
    kernel: tuple[int, int] | None = None  # (k, s, p, d) per dim only for conv/pool
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    branch: bool = False
    input_size: tuple[int, int] | None = None  # spatial size entering this layer
    rf_in: tuple[int, int] | None = None  # the field entering this layer
    jump_in: tuple[int, int] | None = None
    start_in: tuple[float, float] | None = None

    def derivation(self) -> str:
        """For a conv/pool row: the output size and field formulas filled in (height)."""
        if not self.spatial or self.rf is None or self.input_size is None:
            return ""
        n, k, p, s, d = (self.input_size[0], self.kernel[0], self.padding[0], self.stride[0],
                         self.dilation[0])
        r0, j0, st0 = self.rf_in[0], self.jump_in[0], self.start_in[0]
        size = (f"n = floor(({n} + 2*{p} - {d}*({k}-1) - 1)/{s}) + 1 = "
                f"{self.output_shape[-2]}")
        return (f"{self.name}: {size}; rf = {r0} + ({k}-1)*{d}*{j0} = {self.rf[0]}; "
                f"jump = {j0}*{s} = {self.jump[0]}; start = {_num(st0)} + "
                f"(({k}-1)/2*{d} - {p})*{j0} = {_num(self.start[0])}")

    @property
    def spatial(self) -> bool:
        """Whether this layer changes the receptive field (a conv or pooling window)."""
        return self.kernel is not None


@dataclass(frozen=True)
class ModelExplanation:
    """What :func:`explain_model` returns: the rows and notes about how they were found."""

    input_size: tuple[int, int]
    rows: tuple[LayerRow, ...]
    branching: bool  # the network is not a chain; rf is reported along the main path
    notes: tuple[str, ...] = field(default=())

    @property
    def final(self) -> LayerRow:
        """The last row that still has spatial positions (the deepest receptive field)."""
        spatial = [r for r in self.rows if r.rf is not None and not r.branch]
        return spatial[-1]

    def table(self, only_spatial: bool = False) -> str:
        """A fixed-width table, one line per layer."""
        head = f"{'layer':<28} {'type':<18} {'output':<16} {'rf':>9} {'jump':>9} {'start':>12}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            if only_spatial and not r.spatial:
                continue
            out = "x".join(str(v) for v in r.output_shape)
            if r.rf is None:
                rf = jump = "all"
                start = "-"
            else:
                rf, jump, start = _hw(r.rf), _hw(r.jump), _hw(r.start)
            name = ("  (branch) " if r.branch else "") + r.name
            lines.append(f"{name:<28} {r.type:<18} {out:<16} {rf:>9} {jump:>9} {start:>12}")
        return "\n".join(lines)

    def derivations(self) -> str:
        """One line per conv/pool layer with the formulas filled in (height dimension)."""
        return "\n".join(r.derivation() for r in self.rows if r.spatial)

    def __str__(self) -> str:
        parts = [f"input: {self.input_size[0]}x{self.input_size[1]}", "  " + "; ".join(
            RF_FORMULAS), "  output size per layer: " + GENERAL_FORMULA, self.table(),
            "", "formulas filled in (height; rf_0 = 1, jump_0 = 1, start_0 = 0):",
            self.derivations()]
        parts += [f"note: {n}" for n in self.notes]
        return "\n".join(parts)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _hw(v: tuple) -> str:
    return _num(v[0]) if v[0] == v[1] else f"{_num(v[0])},{_num(v[1])}"


@dataclass
class _State:
    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    spatial_size: tuple[int, int]
    global_: bool = False  # spatial positions were mixed (Flatten/Linear)


def _window(module: nn.Module, in_hw: tuple[int, int], out_hw: tuple[int, int]):
    """(k, s, p, d) per dimension for conv/pool modules (cnnlab's Scratch ones too), else None."""
    if hasattr(module, "kernel_size") and hasattr(module, "stride"):
        k = _as_pair(module.kernel_size)
        s = _as_pair(module.stride if module.stride is not None else module.kernel_size)
        p = _as_pair(getattr(module, "padding", 0))
        d = _as_pair(getattr(module, "dilation", 1))
        return k, s, p, d
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        # adaptive pooling: the window each output sees spans ceil(n/out) inputs at
        # stride floor(n/out) (exact when out divides n, e.g. the global pool to 1x1)
        k = tuple(math.ceil(i / o) for i, o in zip(in_hw, out_hw))
        s = tuple(max(i // o, 1) for i, o in zip(in_hw, out_hw))
        return k, s, (0, 0), (1, 1)
    return None


def _as_pair(v) -> tuple[int, int]:
    if isinstance(v, str):  # padding="same"/"valid" of nn.Conv2d
        raise ConfigError(f"padding={v!r} is not supported by explain_model; use integer padding")
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _step(state: _State, k, s, p, d) -> tuple[tuple[int, int], tuple[int, int],
                                              tuple[float, float]]:
    rf = tuple(state.rf[i] + (k[i] - 1) * d[i] * state.jump[i] for i in range(2))
    jump = tuple(state.jump[i] * s[i] for i in range(2))
    start = tuple(state.start[i] + ((k[i] - 1) / 2 * d[i] - p[i]) * state.jump[i]
                  for i in range(2))
    return rf, jump, start  # type: ignore[return-value]


def explain_model(model: nn.Module | str, input_size: int | Sequence[int] | None = None,
                  in_channels: int | None = None) -> ModelExplanation:
    """Every layer's output size and receptive field, walking one forward pass.

    ``model`` is an ``nn.Module`` or a registered model name (``cnnlab models``);
    ``input_size`` is ``(H, W)`` (default: the model's book input size). Forward hooks
    on the leaf modules see them in execution order; each tensor remembers the field of
    the unit that made it, so a residual shortcut gets its own (smaller) field and the
    sum takes the larger one: for branching networks the field is the one along the
    main (longest) path, and the result says so.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.AvgPool2d(2))
        >>> [(r.output_shape, r.rf, r.jump) for r in explain_model(net, (28, 28)).rows]
        [((6, 28, 28), (5, 5), (1, 1)), ((6, 14, 14), (6, 6), (2, 2))]
    """
    if isinstance(model, str):
        from cnnlab.models import create_model, get_model_info

        info = get_model_info(model)
        hw = _pair(info.input_size if input_size is None else input_size, "input_size", 1)
        # models with a fixed flatten (LeNet, VGG) are built for a square input side
        size_kw = {"input_size": hw[0]} if hw[0] == hw[1] else {}
        model = create_model(model, in_channels=in_channels or 1, **size_kw)
        input_size = hw
    if input_size is None:
        raise ConfigError("input_size is needed for a model object; pass e.g. (28, 28)")
    hw = _pair(input_size, "input_size", 1)
    if in_channels is None:
        in_channels = next((m.in_channels for m in model.modules()
                            if hasattr(m, "in_channels") and hasattr(m, "kernel_size")), 1)

    # tensor id -> state; the tensors themselves are kept so that ids are not reused
    states: dict[int, _State] = {}
    keep: list[torch.Tensor] = []
    rows: list[LayerRow] = []
    uses: dict[int, int] = {}
    flags = {"branching": False}
    names = {m: n for n, m in model.named_modules()}
    root = _State((1, 1), (1, 1), (0.0, 0.0), hw)

    def lookup(x: torch.Tensor) -> _State:
        if id(x) in states:
            return states[id(x)]
        # made outside a module (x + y, torch.cat, F.relu): the field of a sum or a
        # concatenation is the largest field among the tensors of that spatial size
        same = [st for st in states.values()
                if not st.global_ and x.dim() == 4 and st.spatial_size == tuple(x.shape[-2:])]
        found = max(same, key=lambda st: st.rf) if same else list(states.values())[-1]
        states[id(x)] = found  # remember it, so that a second reader is seen as a fork
        keep.append(x)
        return found

    def hook(module: nn.Module, inputs, output) -> None:
        if not inputs or not isinstance(inputs[0], torch.Tensor) or not isinstance(
                output, torch.Tensor):
            return
        x = inputs[0]
        st = lookup(x)
        uses[id(x)] = uses.get(id(x), 0) + 1
        if uses[id(x)] > 1:  # a tensor read by two modules: the network forks here
            flags["branching"] = True
        out_hw = tuple(output.shape[-2:]) if output.dim() == 4 else st.spatial_size
        win = _window(module, st.spatial_size, out_hw) if x.dim() == 4 and not st.global_ \
            else None
        if win is not None:
            rf, jump, start = _step(st, *win)
            new = _State(rf, jump, start, out_hw)
        elif output.dim() == 4 and not st.global_:
            new = _State(st.rf, st.jump, st.start, out_hw)  # elementwise: BN, ReLU, dropout
        else:
            new = _State(st.rf, st.jump, st.start, st.spatial_size, global_=True)
        states[id(output)] = new
        uses[id(output)] = 0  # an in-place op (ReLU(inplace=True)) makes a new value
        keep.append(output)
        k, s, p, d = win if win is not None else (None,) * 4
        rows.append(LayerRow(
            name=names.get(module, "?"), type=type(module).__name__,
            output_shape=tuple(output.shape[1:]),
            rf=None if new.global_ else new.rf, jump=None if new.global_ else new.jump,
            start=None if new.global_ else new.start,
            kernel=k, stride=s, padding=p, dilation=d, input_size=st.spatial_size,
            rf_in=st.rf, jump_in=st.jump, start_in=st.start))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        x = torch.zeros(1, in_channels, *hw)
        states[id(x)] = root
        keep.append(x)
        with torch.no_grad():
            model(x)
    except RuntimeError as e:
        raise ConfigError(f"the model does not accept a {in_channels}x{hw[0]}x{hw[1]} input "
                          f"({str(e).splitlines()[0]}); pass a larger input_size=") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    rows = _mark_branches(rows)
    notes = []
    if flags["branching"]:
        notes.append("the network branches (residual or parallel paths): the receptive field "
                     "is the one along the main (longest) path; (branch) rows are shortcuts")
    return ModelExplanation(hw, tuple(rows), flags["branching"], tuple(notes))


def _mark_branches(rows: list[LayerRow]) -> list[LayerRow]:
    """Mark rows whose field is smaller than the field already reached before them
    (a shortcut run after the main path, e.g. d2l.Residual's conv3)."""
    out, best = [], 0
    for r in rows:
        if r.rf is not None and r.rf[0] < best:
            r = LayerRow(**{**r.__dict__, "branch": True})
        elif r.rf is not None:
            best = max(best, r.rf[0])
        out.append(r)
    return out
