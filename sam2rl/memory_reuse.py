"""Keep the memory that freed tensors held inside the process, for the next tensors of the same size.

glibc returns every large block to the operating system when it is freed: blocks above its mmap
threshold (128 KiB, rising to at most 32 MiB) are unmapped, and the top of the heap is trimmed.
A tracking step allocates its activations afresh every frame, so each step faults all of them
back in page by page, zero-filled by the kernel: at B=16 on `sam2.1_hiera_t` (256 px) that is
about 160,000 page faults per step. Raising both thresholds to 128 MiB makes freed blocks up to
that size stay in the heap and be reused (that step's largest are 64 MiB); larger ones, such as
the image encoder's at 512 px, are still mapped afresh, since kept in the heap they fragmented it:
over 400 frames at 512 px a 1 GiB threshold grew the resident set by 380 MiB with nothing more
held. Only the console entry points (processes we own) call this; a library import never changes
its host's allocator. Long-lived tensors that come and go in a different order (cached features)
are kept outside the heap (`off_heap_copy`), so they do not fragment it. The module also reads
what the process holds and its peak, for the memory benchmark.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import mmap
import resource
import sys
import weakref

import torch

__all__ = ["OFF_HEAP_MIN_BYTES", "freed_memory_reused", "held_bytes", "kept_free_bytes", "off_heap_copy",
           "peak_resident_bytes", "reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_GLIBC_MAX_TRIM_THRESHOLD = 2 * (32 << 20)  # glibc's dynamic trim threshold: twice the mmap threshold, at most 32 MiB
_reused = False
_trim_threshold = 0  # set by reuse_freed_memory
_off_heap_bytes = 0  # in live off_heap_copy maps


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
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


def held_bytes() -> int | None:
    """Bytes the process's allocations hold now: glibc's heap in use, its mapped blocks and the live
    `off_heap_copy` maps; None where the C library cannot say. Unlike the resident set it leaves out
    the free memory the allocator keeps, so it grows only when something is held (a leak), not when
    the heap fragments."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd) + _off_heap_bytes


def peak_resident_bytes() -> int:
    """The process's resident-set peak so far, free heap memory the allocator keeps included (what the
    operating system sees; Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reuse_freed_memory(threshold_bytes: int = 128 << 20) -> bool:
    """Let glibc keep freed blocks up to `threshold_bytes` for reuse instead of handing them back.

    Returns False, changing nothing, where the C library is not glibc (macOS, musl, Windows).
    The cost is that the process's resident memory stays at its peak until it exits.
    """
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    global _reused, _trim_threshold
    _reused = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold_bytes))
    _trim_threshold = threshold_bytes if _reused else 0
    return _reused


def kept_free_bytes() -> int:
    """The most free memory glibc keeps at the top of its heap instead of trimming it: the threshold
    `reuse_freed_memory` set, else glibc's own dynamic maximum (64 MiB on 64-bit); 0 where the C
    library is not glibc (its allocator's habits are not known here).

    A resident set read at one moment holds anything from none to all of it, so a bound on the
    resident set that is measured early (the memory benchmark's) adds it: a later frame may find the
    heap's top fuller than the early one did, with nothing more held.
    """
    if _glibc() is None:
        return 0
    return _trim_threshold if _reused else _GLIBC_MAX_TRIM_THRESHOLD


OFF_HEAP_MIN_BYTES = 1 << 18
"""Smaller tensors stay in the heap: they leave small holes, and one map each could reach the kernel's
limit on a process's maps (65,530 by default); at 256 KiB the default feature budget (10 GiB) needs
at most 40,960."""


def off_heap_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy of `tensor`; one of `OFF_HEAP_MIN_BYTES` or more in its own anonymous
    memory map, unmapped when the copy is freed.

    A feature cache keeps frames for a long time and drops them in its own order while every step's
    activations come and go around them: in the heap, each kept frame pins the holes beside it, and a
    long video's resident set grows with its length (512 px, 300 frames, nothing dropped: by 2.2 times
    what was kept). Outside the heap a dropped frame goes back to the operating system whole. Where
    no map can be made, the copy stays in the heap.
    """
    global _off_heap_bytes
    tensor = tensor.detach()
    size = tensor.numel() * tensor.element_size()
    buffer = None
    if size >= OFF_HEAP_MIN_BYTES:
        with contextlib.suppress(OSError):  # no map to be had: a heap copy
            buffer = mmap.mmap(-1, size)  # anonymous, page-aligned, zero-filled; the tensor keeps it alive
    if buffer is None:
        return torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor)
    _off_heap_bytes += size
    weakref.finalize(buffer, _unmapped, size)
    return torch.frombuffer(buffer, dtype=tensor.dtype, count=tensor.numel()).view(tensor.shape).copy_(tensor)


def _unmapped(size: int) -> None:
    global _off_heap_bytes
    _off_heap_bytes -= size


def freed_memory_reused() -> bool:
    """Whether this process keeps freed memory (`reuse_freed_memory` succeeded), for reports of speed."""
    return _reused
