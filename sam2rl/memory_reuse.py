"""Keep the memory that freed tensors held inside the process, for the next tensors of the same size.

glibc returns every large block to the operating system when it is freed: blocks above its mmap
threshold (128 KiB, rising to at most 32 MiB) are unmapped, and the top of the heap is trimmed.
A tracking step allocates its activations afresh every frame, so each step faults all of them
back in page by page, zero-filled by the kernel: at B=16 on `sam2.1_hiera_t` (256 px) that is
about 160,000 page faults per step. Raising both thresholds makes freed blocks stay in the heap
and be reused. Only the console entry points (processes we own) call this; a library import
never changes its host's allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["freed_memory_reused", "reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_reused = False


def reuse_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Let glibc keep freed blocks up to `threshold_bytes` for reuse instead of handing them back.

    Returns False, changing nothing, where the C library is not glibc (macOS, musl, Windows).
    The cost is that the process's resident memory stays at its peak until it exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a no-op
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    global _reused
    _reused = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold_bytes))
    return _reused


def freed_memory_reused() -> bool:
    """Whether this process keeps freed memory (`reuse_freed_memory` succeeded), for reports of speed."""
    return _reused
