"""Listing a video's frame and annotation files and matching them, cheaply (names and image headers).

Frames are ordered by the number in their name, as sam2's own loader orders them, and a frame's
index is its position in that order: numbering may skip (YouTube-VOS keeps every 5th frame) or
start anywhere. Each frame keeps its name (stem) so outputs can be named after it. Annotations
are matched to frames by number, so a sparse set (masks on some frames only) maps to the right
indices, and one that matches no frame is an error naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from sam2rl.datasets.vos import DatasetError

__all__ = ["FRAME_EXTS", "MASK_EXTS", "check_mask_mode", "match_annotations", "numbered_files", "read_header"]

# Same extensions sam2's load_video_frames_from_jpg_images accepts, so both see the same frames.
FRAME_EXTS = (".jpg", ".jpeg", ".JPG", ".JPEG")
MASK_EXTS = (".png", ".PNG")


def numbered_files(folder: Path, exts: Sequence[str], what: str) -> list[tuple[int, Path]]:
    """``<int>.<ext>`` files of `folder` as (number, path), sorted by number, as sam2 orders frames."""
    out: dict[int, Path] = {}
    for entry in os.listdir(folder):
        stem, ext = os.path.splitext(entry)
        if ext not in exts:
            continue
        path = folder / entry
        try:
            number = int(stem)
        except ValueError:
            raise DatasetError(
                f"{what} file {path} has a non-numeric name; expected '<frame number>{ext}'"
            ) from None
        if number in out:
            raise DatasetError(
                f"{what} files {out[number]} and {path} both have frame number {number}"
            )
        out[number] = path
    return sorted(out.items())


def match_annotations(
    sequence: str, frames: Sequence[tuple[int, Path]], masks: Sequence[tuple[int, Path]]
) -> dict[int, Path]:
    """Frame index -> annotation file, matching frame numbers; an annotation without a frame is an error."""
    index_of = {number: t for t, (number, _) in enumerate(frames)}
    out: dict[int, Path] = {}
    for number, path in masks:
        t = index_of.get(number)
        if t is None:
            folder = frames[0][1].parent
            raise DatasetError(
                f"annotation {path} has frame number {number}, but sequence {sequence!r} has no "
                f"frame with that number in {folder} (its {len(frames)} frames run "
                f"{frames[0][1].name}..{frames[-1][1].name})"
            )
        out[t] = path
    return out


def read_header(path: Path, what: str) -> tuple[tuple[int, int], str]:
    """Return ((width, height), mode) without decoding pixels, to validate cheaply."""
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except Exception as e:  # PIL raises a variety of types for corrupt/non-image files
        raise DatasetError(f"cannot read {what} {path}: {e}") from e


def check_mask_mode(path: Path, mode: str) -> None:
    """Reject mask encodings whose object ids we would have to guess."""
    if mode not in ("P", "L", "1"):
        raise DatasetError(
            f"annotation {path} has PIL mode {mode!r}; expected a palette ('P') PNG of "
            "object ids or a grayscale ('L') 0/255 PNG"
        )
