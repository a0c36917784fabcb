"""Start-up: keep ``torch._dynamo`` unimported until something compiles.

``torch.optim`` imports ``torch._dynamo`` (the compiler's front end: about as long again
as ``import torch``) in a run that never compiles, in two places:

* ``Optimizer.add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict``
  are decorated with ``torch._disable_dynamo`` (torch/_compile.py), whose wrapper
  ``inner`` imports ``torch._dynamo`` on its first call to build the disabled
  function, which it caches as ``fn.__dynamo_disable``;
* every built-in optimizer's ``step`` is decorated with
  ``_use_grad_for_differentiable`` (torch/optim/optimizer.py), whose ``_use_grad``
  imports ``torch._dynamo`` on each call for two ``graph_break()`` calls, which do
  nothing outside a compiled region.

:func:`defer_dynamo` makes both wait for ``torch._dynamo``: it caches a stand-in as
``fn.__dynamo_disable`` that calls ``fn`` itself, and gives each ``_use_grad`` a body
that sets the grad mode and calls ``step`` without the graph breaks. While
``torch._dynamo`` is not imported nothing can be compiling, so the calls are the
same calls. As soon as it is imported (``torch.compile``, ``torch.export``, a custom
op, the user) and before anything can be traced, :func:`restore_dynamo` gives torch
its own functions back (an import hook on ``torch._dynamo``; the stand-ins also check
``sys.modules`` on each call), so a run that compiles keeps torch's behaviour.

``_use_grad`` gets the new body through its ``__code__`` (the same function object, so
the classes, the profiling wrapper around ``step`` and ``__wrapped__`` are unchanged;
``inspect.getsource`` shows this module's body until the restore). It touches only
what is exactly torch's (the code objects of ``inner`` and ``_use_grad``, their closure
variables, nothing cached yet), else does nothing; ``CNNLAB_LAZY_DYNAMO=0`` turns it off.

Example:
    >>> import torch
    >>> from cnnlab.train.startup import defer_dynamo
    >>> _ = defer_dynamo()
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    >>> opt.zero_grad()
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["ENV", "defer_dynamo", "restore_dynamo"]

ENV = "CNNLAB_LAZY_DYNAMO"  # "0": let torch.optim import torch._dynamo as it does
_ATTR = "__dynamo_disable"  # where torch/_compile.py's inner caches the disabled fn
_DYNAMO = "torch._dynamo"
_seeded: list[Callable[..., Any]] = []  # decorated functions holding a _Deferred
_swapped: list[tuple[types.FunctionType, types.CodeType]] = []  # (_use_grad, its code)


class _Deferred:
    """``fn`` itself until ``torch._dynamo`` is imported; then torch's disabled ``fn``."""

    __slots__ = ("fn", "recursive")

    def __init__(self, fn: Callable[..., Any], recursive: bool) -> None:
        self.fn, self.recursive = fn, recursive

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _DYNAMO not in sys.modules:
            return self.fn(*args, **kwargs)
        restore_dynamo()
        import torch._dynamo

        # what torch/_compile.py's inner does on its first call
        disabled = torch._dynamo.disable(self.fn, self.recursive, wrapping=False)
        setattr(self.fn, _ATTR, disabled)
        return disabled(*args, **kwargs)


def _eager_use_grad_code() -> types.CodeType:
    """The body given to each ``_use_grad``: torch's, less the import and the graph
    breaks while ``torch._dynamo`` is not imported. Its globals are
    torch/optim/optimizer.py's, which has ``torch``; ``func`` is the closure's step."""
    func: Any = None

    def _use_grad(*args: Any, **kwargs: Any) -> Any:
        # None unless torch._dynamo is imported (a fallback: restore_dynamo runs first)
        dynamo = __import__("sys").modules.get("torch._dynamo")
        prev_grad = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(args[0].defaults["differentiable"])
            if dynamo is not None:
                dynamo.graph_break()
            ret = func(*args, **kwargs)
        finally:
            if dynamo is not None:
                dynamo.graph_break()
            torch.set_grad_enabled(prev_grad)
        return ret

    return _use_grad.__code__


def _disable_wrappers() -> list[tuple[Callable[..., Any], bool]]:
    """(fn, recursive) of each ``torch._disable_dynamo`` wrapper on ``Optimizer`` that is
    exactly torch's ``inner`` with nothing cached."""
    try:
        code = torch._disable_dynamo(lambda: None).__code__
    except Exception:
        return []
    if code.co_freevars != ("fn", "recursive"):
        return []
    found = []
    for value in vars(torch.optim.Optimizer).values():
        if getattr(value, "__code__", None) is not code or not value.__closure__:
            continue
        fn, recursive = (c.cell_contents for c in value.__closure__)
        if getattr(value, "__wrapped__", None) is fn and callable(fn) \
                and isinstance(recursive, bool) and getattr(fn, _ATTR, None) is None:
            found.append((fn, recursive))
    return found


def _use_grads() -> list[types.FunctionType]:
    """Each ``_use_grad`` of the built-in optimizers' ``step`` (through the profiling
    wrapper ``Optimizer.__init__`` puts around it), if it is exactly torch's."""
    try:
        from torch.optim import optimizer as optim_module

        code = optim_module._use_grad_for_differentiable(lambda self: None).__code__
    except Exception:
        return []
    if code.co_freevars != ("func",) or "torch" not in vars(optim_module):
        return []
    found: list[types.FunctionType] = []
    classes = [torch.optim.Optimizer]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        f = vars(cls).get("step")
        for _ in range(3):  # step -> profiling wrapper -> _use_grad -> the step itself
            if isinstance(f, types.FunctionType) and f.__code__ is code \
                    and f.__globals__ is vars(optim_module) and f not in found:
                found.append(f)
                break
            f = getattr(f, "__wrapped__", None)
    return found


class _RestoreOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Gives torch its functions back as soon as ``torch._dynamo`` has been executed,
    before anything can use it; the module keeps its own spec and loader."""

    def __init__(self) -> None:
        self.loader: Any = None

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _DYNAMO:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            restore_dynamo()  # an unusual torch: nothing deferred from here on
            return None
        self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # type: ignore[union-attr]
        restore_dynamo()  # torch's own functions, before torch._dynamo's code runs
        self.loader.exec_module(module)


_hook = _RestoreOnImport()


def defer_dynamo() -> int:
    """Put the stand-ins in place (see the module's docstring); return how many.

    0 when ``CNNLAB_LAZY_DYNAMO=0``, when ``torch._dynamo`` is already imported, when
    they are in place already, or when torch's functions are not the expected ones.
    """
    if os.environ.get(ENV, "1") == "0" or _DYNAMO in sys.modules or _seeded or _swapped:
        return 0
    eager = _eager_use_grad_code()
    if eager.co_freevars != ("func",):
        return 0
    for fn, recursive in _disable_wrappers():
        setattr(fn, _ATTR, _Deferred(fn, recursive))
        _seeded.append(fn)
    for f in _use_grads():
        _swapped.append((f, f.__code__))
        f.__code__ = eager
    if _seeded or _swapped:
        sys.meta_path.insert(0, _hook)
    return len(_seeded) + len(_swapped)


def restore_dynamo() -> None:
    """Remove the stand-ins: each function is torch's own again."""
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)
    while _seeded:
        fn = _seeded.pop()
        if isinstance(getattr(fn, _ATTR, None), _Deferred):
            delattr(fn, _ATTR)
    while _swapped:
        f, code = _swapped.pop()
        f.__code__ = code
