"""Keep the memory that freed tensors held inside the process, for the next tensors of the same size.

glibc returns every large block to the operating system when it is freed: blocks above its mmap
threshold (128 KiB, rising to at most 32 MiB) are unmapped, and the top of the heap is trimmed.
A tracking step allocates its activations afresh every frame, so each step faults all of them
back in page by page, zero-filled by the kernel: at B=16 on `sam2.1_hiera_t` (256 px) that is
about 160,000 page faults per step. Raising both thresholds makes freed blocks stay in the heap
and be reused. Only the console entry points (processes we own) call this; a library import
never changes its host's allocator. The module also reads what the process holds and its peak,
for the memory benchmark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import resource
import sys

__all__ = ["freed_memory_reused", "heap_in_use_bytes", "peak_resident_bytes", "release_free_memory", "reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_reused = False


class _MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2 (malloc.h, glibc >= 2.33)
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache  # find_library runs ldconfig: once per process, not per frame of the memory bench
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a no-op
    except (OSError, AttributeError):
        return None
    return libc


def heap_in_use_bytes() -> int | None:
    """Bytes the process's allocations hold now (glibc: in use in the heap plus mapped blocks), or None
    where the C library cannot say. Unlike the resident set it leaves out the free memory the allocator
    keeps, so it grows only when something is held (a leak), not when the heap fragments."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def peak_resident_bytes() -> int:
    """The process's resident-set peak so far, free heap memory the allocator keeps included (what the
    operating system sees; Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reuse_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Let glibc keep freed blocks up to `threshold_bytes` for reuse instead of handing them back.

    Returns False, changing nothing, where the C library is not glibc (macOS, musl, Windows).
    The cost is that the process's resident memory stays at its peak until it exits.
    """
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    global _reused
    _reused = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold_bytes))
    return _reused


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the operating system (glibc's `malloc_trim`), wherever they
    lie, not only at its top; the allocator's settings stay as they are. Memory freed in scattered
    holes (a feature cache dropping old frames while a step's activations come and go around them)
    then no longer counts in the resident set. Returns False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    libc.malloc_trim(0)
    return True


def freed_memory_reused() -> bool:
    """Whether this process keeps freed memory (`reuse_freed_memory` succeeded), for reports of speed."""
    return _reused
