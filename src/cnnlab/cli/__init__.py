"""The `cnnlab` command line.

Each command group lives in its own module of this package and adds its
sub-commands through ``register(subparsers)``; every handler takes the parsed
``argparse.Namespace`` and returns an exit code. Bad input (any
:class:`cnnlab.errors.CnnlabError`, ``ValueError`` or ``FileNotFoundError``)
prints one line and exits with code 2; ``--debug`` shows the traceback.

Example:
    >>> from cnnlab.cli import main
    >>> main(["shape", "--input", "8,8", "--kernel", "3,5", "--padding", "0,1",
    ...       "--stride", "3,4"])  # doctest: +ELLIPSIS
    h: ...
    0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnnlab.errors import CnnlabError

# command modules, in the order their commands appear in --help
_MODULES = ("train", "lr_find", "export", "data", "models", "shape", "viz", "demo", "explore")


class UsageError(Exception):
    """Raised instead of argparse's own exit so that usage errors exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse hook
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every sub-command registered."""
    parser = _Parser(
        prog="cnnlab",
        description="CNNs from d2l chapters 7-8: train, inspect and reproduce on Fashion-MNIST.",
        epilog="Run `cnnlab COMMAND --help` for each command's options.",
    )
    from cnnlab import __version__

    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _MODULES:
        importlib.import_module(f"cnnlab.cli.{name}").register(sub)
    return parser


def run() -> NoReturn:
    """The `cnnlab` console script and `python -m cnnlab`: :func:`main`, then exit quickly."""
    quick_exit(main())


def quick_exit(code: int) -> NoReturn:
    """Exit with ``code`` without tearing the interpreter down.

    Unloading torch's ~2000 modules and its C++ state at exit costs a visible share of
    a short command, and by now every file is written and closed. What an ordinary
    exit does that matters still happens: atexit handlers (TensorBoard, logging,
    multiprocessing) run and buffered output is flushed; a live non-daemon thread
    (a user's callback's) gets the ordinary exit, which waits for it.
    """
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        sys.exit(code)
    import atexit
    import os

    try:
        atexit._run_exitfuncs()  # prints and skips a handler that fails, as exit does
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing to flush
                pass
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cnnlab` console script. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv or argv == ["--debug"] else 2
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGHUP during training (train.signals)
        print(str(e) or "interrupted", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    except BrokenPipeError:  # `cnnlab models | head`: the reader left; not an error to print
        import os

        try:  # no second BrokenPipeError when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a real file (captured, notebook)
            pass
        return 141  # 128 + SIGPIPE, what the shell reports for other programs
    except (CnnlabError, ValueError, OSError) as e:
        # OSError: a full disk, a read-only or missing folder, a path that is a file...
        # what the user's machine said, with the path, in one line
        if debug:
            raise
        if not isinstance(e, CnnlabError) and _out_of_memory(e):
            return _print_out_of_memory(e)
        if isinstance(getattr(e, "signum", None), int):  # train.signals.Preempted: saved
            print(f"cnnlab: {e}", file=sys.stderr)
            return 128 + e.signum
        if isinstance(e, OSError) and not isinstance(e, CnnlabError) and e.strerror:
            msg = f"{e.filename + ': ' if e.filename else ''}{e.strerror}{_os_hint(e)}"
        else:
            kind = "error" if isinstance(e, CnnlabError) else type(e).__name__
            msg = f"{kind}: {str(e) or repr(e)}"
            msg = msg[len("error: "):] if kind == "error" else msg
            if parser is not None:  # library errors name parameters (resize=): say flags
                from cnnlab.cli._common import cli_flags

                msg = cli_flags(msg, parser, argv)
        print(f"cnnlab: error: {' '.join(msg.split())}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not bad input: still one line; --debug shows where
        if debug:
            raise
        first = " ".join(str(e).split())[:300]
        if _out_of_memory(e):
            return _print_out_of_memory(e)
        print(f"cnnlab: internal error: {type(e).__name__}: {first} (run again with --debug "
              "for the traceback and report it)", file=sys.stderr)
        return 1


# What allocators say when a size does not fit: torch's CPU allocator ("DefaultCPUAllocator:
# can't allocate memory" in 2.13, "not enough memory" before), CUDA's "out of memory",
# torch's size arithmetic for absurd shapes, numpy's "Unable to allocate", C++'s bad_alloc
# and the OS's ENOMEM ("Cannot allocate memory").
_OOM_WORDS = ("out of memory", "not enough memory", "can't allocate memory",
              "cannot allocate memory", "defaultcpuallocator", "unable to allocate",
              "storage size calculation overflowed", "bad_alloc", "array is too big",
              "memory allocation failed")


def _out_of_memory(e: BaseException) -> bool:
    import errno

    if isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno == errno.ENOMEM):
        return True
    text = str(e).lower()
    return any(w in text for w in _OOM_WORDS)


def _print_out_of_memory(e: BaseException) -> int:
    # too large a --batch-size, --resize or model for this machine: the user's to fix
    detail = " ".join(str(e).split())
    # torch's own text starts with "[enforce fail at alloc_cpu.cpp:...]": keep what it says
    detail = detail.split("] ", 1)[-1] if detail.startswith("[") else detail
    detail = f" ({detail[:120]})" if detail else ""
    print(f"cnnlab: error: out of memory{detail}; use a smaller --batch-size or --resize, "
          "or a smaller model", file=sys.stderr)
    return 2


def _os_hint(e: OSError) -> str:
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "; free some disk space or write elsewhere (--out DIR)"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "; that place is not writable for you, write elsewhere (--out DIR)"
    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return "; check the path"
    return ""
