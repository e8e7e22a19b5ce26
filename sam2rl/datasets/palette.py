"""The DAVIS / PASCAL VOC colour palette for object-id PNGs."""

from __future__ import annotations

__all__ = ["davis_palette"]


def davis_palette() -> list[int]:
    """Flat RGB list of 256 colours (bit-interleaved VOC colour map), as DAVIS annotations use."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette
