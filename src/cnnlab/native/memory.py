"""Keep freed CPU memory for reuse instead of handing it back to the kernel every step.

Why: glibc's malloc serves large blocks (from 128 KiB, a threshold it raises as
blocks are freed) with fresh ``mmap`` pages and returns memory above a trim
threshold to the kernel when it is freed. A CPU training step allocates and frees
the same activation tensors (a few MB each) every time, so the next step touches
fresh pages again: each first touch is a page fault that zeroes 4 KiB. With the two
limits below a LeNet step takes a handful of faults instead of hundreds
(benchmarks/results/lenet.md). GPU training has the same idea in PyTorch's caching
allocator; on CPU, PyTorch leaves it to the C library (or to jemalloc/tcmalloc
preloaded with ``LD_PRELOAD``).

The cost: memory freed by the process is kept (up to ``trim_threshold`` at the top
of the heap) rather than returned, so its resident size stays at its peak, as a
training run's does anyway.

Example:
    >>> from cnnlab.accel import keep_freed_memory  # re-exported from cnnlab.native.memory
    >>> keep_freed_memory() in (True, False)  # False where the C library is not glibc
    True
"""

from __future__ import annotations

import ctypes
import platform

__all__ = ["keep_freed_memory"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_done: bool | None = None


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Set glibc's malloc to serve blocks up to ``mmap_threshold`` bytes (32 MiB, the
    most glibc allows) from its heap and to keep up to ``trim_threshold`` bytes of freed
    heap; return whether it applied (False where the C library is not glibc).

    Process-wide and idempotent: the first call decides, later calls return its result.
    ``cnnlab.train.Trainer`` calls it for CPU runs.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = (mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
             and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1)
    return _done
