"""The optional native kernels: ``kernels.c``, ``conv.c`` and ``avx512.c``, compiled
once per machine into one library, loaded with ctypes and reached only through the
PyTorch custom ops of :mod:`cnnlab.native.ops`.

Why C: some hot loops of cnnlab are memory-bound passes that PyTorch can only
express as several full passes over a large tensor (the uint8 -> float resize of a
whole batch, as two matrix products, writes the large output several times instead
of once); the small convolutions of LeNet-sized layers run far below the CPU's rate
in oneDNN. The C files have no PyTorch headers, so they build in seconds with the
system's C compiler (``cc``; Debian: ``apt-get install gcc``)
into the user cache (``~/.cache/cnnlab/native``, or ``$CNNLAB_CACHE``), named by
the sources' hash and the machine, and written atomically. They use AVX2 intrinsics,
so they are built on x86-64 Linux only; elsewhere :func:`status` says why and the
PyTorch paths run. The library is compiled for the machine it runs on (``-march=native``),
so where the CPU reports AVX-512 it also holds ``avx512.c``'s kernels (LeNet's first
convolution, its second's forward and weight gradient, the sigmoid + 2x2 average pool), which then
run instead of their AVX2 versions; :func:`status` names the path.

The boundary (:mod:`cnnlab.native.ops`): every call into C is one of the custom ops
``torch.ops.cnnlab.*`` (defined with ``torch.library``, with fake kernels for
``torch.compile`` and registered gradients); one function there checks device, dtype,
contiguity and sizes before any address is handed to C. Every op computes its result
with PyTorch when the library is missing (no compiler, failed build, not x86-64,
``CNNLAB_NATIVE=0``) or a kernel declines (unsupported sizes, out of memory).

Example:
    >>> from cnnlab import native
    >>> lib = native.load()  # None where the kernels cannot be built here
    >>> lib is None or lib.cnnlab_native_version() >= 2
    True
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

__all__ = ["load", "available", "status", "X86_64"]

# avx512.c: AVX-512 versions of kernels.c's and conv.c's kernels (built where the CPU has it)
SOURCES = tuple(Path(__file__).with_name(f) for f in ("kernels.c", "conv.c", "avx512.c"))
HEADERS = (Path(__file__).with_name("alloc.h"),)  # part of the build's hash, not compiled
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_why = "not loaded yet"

# The machines the kernels are written for (AVX/AVX2 intrinsics; the library is
# compiled with -march=native, and entry points without AVX2 decline at run time).
X86_64 = ("x86_64", "amd64")

# Pointer arguments are declared void* and passed as plain addresses
# (cnnlab.native.ops._ptr, after its checks): a ctypes.cast per argument costs
# microseconds, a tenth of a millisecond over a LeNet step's pointers.
_i32p = _f32p = _u8p = ctypes.c_void_p
_SIGNATURES = {
    "cnnlab_native_version": ([], ctypes.c_int),
    "cnnlab_native_avx512": ([], ctypes.c_int),
    "cnnlab_resample_u8": ([_u8p, _f32p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
                            ctypes.c_int, ctypes.c_int, _i32p, _f32p, ctypes.c_int,
                            _i32p, _f32p, ctypes.c_int, ctypes.c_float, ctypes.c_float],
                           ctypes.c_int),
    "cnnlab_sigmoid_avgpool_fwd": ([_f32p, _f32p, _f32p, ctypes.c_int64, ctypes.c_int,
                                    ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "cnnlab_sigmoid_avgpool_bwd": ([_f32p, _f32p, _f32p, ctypes.c_int64, ctypes.c_int,
                                    ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "cnnlab_conv_fwd": ([_f32p, _f32p, _f32p, _f32p, ctypes.c_int64, ctypes.c_int,
                         ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int],
                        ctypes.c_int),
    "cnnlab_conv_wgrad": ([_f32p, _f32p, _f32p, _f32p, ctypes.c_int64, ctypes.c_int,
                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int],
                          ctypes.c_int),
    "cnnlab_conv_dgrad": ([_f32p, _f32p, _f32p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
}


def _cache_dir() -> Path:
    base = os.environ.get("CNNLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cnnlab")
    return Path(base) / "native"


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _build(cc: str, target: Path, defines: tuple[str, ...] = ()) -> None:
    """Compile SOURCES into ``target`` (temp file in the same folder, then rename).
    ``defines``: extra ``-D`` macros (tests: ``CNNLAB_TEST_NO_MEMORY``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    # -march=native: the library is built on, and cached for, this machine only (the
    # cache name carries the CPU's identity); -fopenmp links libgomp, which resolves
    # to the copy torch has already loaded.
    cmd = [cc, "-O3", "-march=native", "-ffp-contract=fast", "-fopenmp", "-shared", "-fPIC",
           "-std=c99", *(f"-D{d}" for d in defines), *map(str, SOURCES), "-o", tmp]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise OSError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cpu_id() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    model += line
    except OSError:
        pass
    return hashlib.sha256(f"{platform.machine()}{model}".encode()).hexdigest()[:12]


def _open(path: Path) -> ctypes.CDLL:
    """Load a built library and declare its entry points' C signatures."""
    lib = ctypes.CDLL(str(path))
    for name, (args, res) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def load() -> ctypes.CDLL | None:
    """The compiled library, building it on first use; None where that is not possible."""
    global _lib, _tried, _why
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("CNNLAB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
            _why = "disabled by CNNLAB_NATIVE=0"
            return None
        if platform.machine().lower() not in X86_64:
            _why = (f"native kernels are x86-64 only (this is {platform.machine() or 'unknown'}"
                    "); the PyTorch paths run")
            return None
        if platform.system() != "Linux":
            _why = f"native kernels are built on Linux only (this is {platform.system()})"
            return None
        digest = hashlib.sha256(b"".join(s.read_bytes() for s in (*SOURCES, *HEADERS))
                                ).hexdigest()[:16]
        cpu = _cpu_id()
        target = _cache_dir() / f"cnnlab_native-{digest}-{cpu}.so"
        try:
            if not target.exists():
                cc = _compiler()
                if cc is None:
                    _why = "no C compiler found (install gcc, or set CC)"
                    return None
                _build(cc, target)
                for old in target.parent.glob(f"cnnlab_native-*-{cpu}.so"):
                    if old != target:  # builds of earlier sources
                        old.unlink(missing_ok=True)
            lib = _open(target)
        except (OSError, subprocess.SubprocessError, AttributeError) as e:
            _why = f"native kernels unavailable: {e}"
            return None
        # avx512.c's kernels are in the build when this machine's compiler targets
        # AVX-512 (-march=native): the CPU's own report chooses the path
        simd = "AVX-512" if lib.cnnlab_native_avx512() else "AVX2"
        _lib, _why = lib, f"loaded {target} ({simd})"
        return _lib


def available() -> bool:
    """Whether the native kernels can be used (builds them on first call)."""
    return load() is not None


def status() -> str:
    """One line: where the library was loaded from, or why it was not."""
    load()
    return _why
