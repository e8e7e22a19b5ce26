"""One video of a VOS dataset (:class:`VideoSequence`) and the objects tracked in it (:class:`Track`).

Frames are preprocessed by SAM 2's own loader so that features computed from them are
the features SAM 2 would compute itself; they are decoded lazily so that long videos do
not sit in memory. Construction validates the sequence cheaply (file listings and image
headers only) so that a broken dataset fails before hours of training, not during them.
Masks follow the conventions in :mod:`sam2rl.datasets.vos`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sam2.utils.misc import _load_img_as_tensor

from sam2rl.datasets.files import FRAME_EXTS, MASK_EXTS, check_mask_mode, match_annotations, numbered_files, read_header
from sam2rl.datasets.vos import VOID_ID, DatasetError, normalize_image

__all__ = ["Track", "VideoSequence", "group_by_prompt_frame"]


@dataclass(frozen=True)
class Track:
    """One object to segment: prompted with its mask on ``prompt_frame``, tracked after."""

    sequence: str
    object_id: int
    prompt_frame: int


def group_by_prompt_frame(tracks: Sequence[Track]) -> list[list[Track]]:
    """Tracks grouped by prompt frame, earliest first: each group starts together, as one batch."""
    ordered = sorted(tracks, key=lambda track: track.prompt_frame)
    return [list(group) for _, group in groupby(ordered, key=lambda track: track.prompt_frame)]


class VideoSequence:
    """One video with its (possibly sparse) annotations, decoded only on demand.

    Frame ``t`` is the ``t``-th frame file in numeric order (numbering may skip or start
    anywhere); ``frame_names[t]`` is its file's stem, which outputs reuse. Frames and
    annotations may live under different roots (e.g. YouTube-VOS ``valid_all_frames``).
    """

    def __init__(self, name: str, frame_dir: str | Path, annotation_dir: str | Path) -> None:
        self.name: str = name
        self.frame_dir = Path(frame_dir)
        self.annotation_dir = Path(annotation_dir)

        if not self.frame_dir.is_dir():
            raise DatasetError(f"sequence {name!r}: frame folder {self.frame_dir} does not exist")
        frames = numbered_files(self.frame_dir, FRAME_EXTS, "frame")
        if not frames:
            raise DatasetError(
                f"sequence {name!r} has no frames: no .jpg files in {self.frame_dir}"
            )
        self.frame_paths: list[Path] = [p for _, p in frames]
        self.frame_names: list[str] = [p.stem for p in self.frame_paths]

        (width, height), _ = read_header(self.frame_paths[0], "frame")
        self.width: int = width
        self.height: int = height

        if not self.annotation_dir.is_dir():
            raise DatasetError(
                f"sequence {name!r} has no annotations: folder {self.annotation_dir} "
                "does not exist"
            )
        masks = numbered_files(self.annotation_dir, MASK_EXTS, "annotation")
        if not masks:
            raise DatasetError(
                f"sequence {name!r} has no annotations: no .png files in {self.annotation_dir}"
            )
        self._mask_by_index: dict[int, Path] = match_annotations(name, frames, masks)
        for path in self._mask_by_index.values():
            size, mode = read_header(path, "annotation")
            if size != (self.width, self.height):
                raise DatasetError(
                    f"annotation {path} is {size[0]}x{size[1]} (WxH) but its sequence's frames "
                    f"are {self.width}x{self.height} ({self.frame_paths[0]})"
                )
            check_mask_mode(path, mode)
        self.mask_paths: list[Path] = [p for _, p in masks]

        self._object_ids: list[int] | None = None
        self._first_seen: dict[int, int] | None = None
        self._content_hash: str | None = None

    def __repr__(self) -> str:
        return (
            f"VideoSequence({self.name!r}, frames={self.num_frames}, "
            f"annotated={len(self.mask_paths)}, {self.width}x{self.height})"
        )

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    def _check_index(self, t: int) -> None:
        if not 0 <= t < self.num_frames:
            raise IndexError(
                f"frame index {t} out of range for sequence {self.name!r} "
                f"with {self.num_frames} frames"
            )

    def frame(self, t: int, image_size: int) -> torch.Tensor:
        """Frame ``t`` as SAM 2 would see it: sam2's loader, then float32 ImageNet normalisation.

        Returns float32 ``[3, image_size, image_size]``, bit-identical to the matching slice of
        ``sam2.utils.misc.load_video_frames`` (CPU).
        """
        self._check_index(t)
        path = self.frame_paths[t]
        try:
            img, h, w = _load_img_as_tensor(str(path), image_size)
        except Exception as e:
            raise DatasetError(f"cannot read frame {path} of sequence {self.name!r}: {e}") from e
        if (w, h) != (self.width, self.height):
            raise DatasetError(
                f"frame {path} is {w}x{h} (WxH) but sequence {self.name!r} is "
                f"{self.width}x{self.height} (from {self.frame_paths[0]})"
            )
        return normalize_image(img)

    def frames(self, image_size: int) -> torch.Tensor:
        """All frames stacked, for short clips and tests; float32 ``[T, 3, S, S]``."""
        out = torch.empty(self.num_frames, 3, image_size, image_size, dtype=torch.float32)
        for t in range(self.num_frames):
            out[t] = self.frame(t, image_size)
        return out

    def mask(self, t: int) -> np.ndarray | None:
        """Object-id map of frame ``t`` at original resolution (uint8 ``[H, W]``, 0 = background).

        ``None`` when frame ``t`` has no annotation file, which sparse datasets rely on.
        Palette value 255 (DAVIS void) reads as 0; grayscale masks read as id 1 where > 127.
        """
        self._check_index(t)
        path = self._mask_by_index.get(t)
        if path is None:
            return None
        return self._decode_mask(path)[0]

    def _decode_mask(self, path: Path) -> tuple[np.ndarray, bool]:
        """Decode one annotation to an id map; also report whether it held void pixels."""
        try:
            with Image.open(path) as im:
                mode = im.mode
                arr = np.array(im)
        except Exception as e:
            raise DatasetError(f"cannot read annotation {path}: {e}") from e
        check_mask_mode(path, mode)
        if arr.shape != (self.height, self.width):
            raise DatasetError(
                f"annotation {path} is {arr.shape[1]}x{arr.shape[0]} (WxH) but sequence "
                f"{self.name!r} is {self.width}x{self.height}"
            )
        if mode == "P":
            ids = arr.astype(np.uint8, copy=True)
            void = ids == VOID_ID
            had_void = bool(void.any())
            ids[void] = 0
            return ids, had_void
        if mode == "1":
            return arr.astype(np.uint8), False
        return (arr > 127).astype(np.uint8), False

    def object_mask(self, t: int, object_id: int) -> np.ndarray | None:
        """Boolean ``[H, W]`` mask of one object, the form SAM 2 prompts and metrics take."""
        ids = self.mask(t)
        if ids is None:
            return None
        return ids == object_id

    def prompt_masks(self, tracks: Sequence[Track]) -> torch.Tensor:
        """Bool ``[B, H, W]``: each track's mask on its prompt frame (what it is prompted with)."""
        masks = [self.object_mask(track.prompt_frame, track.object_id) for track in tracks]
        missing = [track for track, mask in zip(tracks, masks) if mask is None]
        if missing:
            raise DatasetError(f"{self.name}: no annotation on the prompt frame of {missing[0]}")
        return torch.stack([torch.from_numpy(mask) for mask in masks])

    def object_masks(self, object_id: int, frames: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth of one object over `frames` (all by default): bool ``[T, H, W]`` masks,
        empty where a frame has no annotation, and bool ``[T]`` saying which frames have one."""
        frames = range(self.num_frames) if frames is None else frames
        masks, annotated = [], []
        for t in frames:
            mask = self.object_mask(t, object_id)
            annotated.append(mask is not None)
            masks.append(torch.zeros(self.height, self.width, dtype=torch.bool) if mask is None else torch.from_numpy(mask))
        return torch.stack(masks), torch.tensor(annotated)

    def _scan_objects(self) -> None:
        """Decode every annotation once to find which objects exist and where they start."""
        first_seen: dict[int, int] = {}
        saw_void = False
        for t in sorted(self._mask_by_index):
            ids, had_void = self._decode_mask(self._mask_by_index[t])
            saw_void = saw_void or had_void
            for oid in np.unique(ids).tolist():
                if oid != 0 and oid not in first_seen:
                    first_seen[int(oid)] = t
        if not first_seen:
            hint = (
                f" (palette value {VOID_ID} is read as void/background)" if saw_void else ""
            )
            raise DatasetError(
                f"sequence {self.name!r}: no object appears in any annotation in "
                f"{self.annotation_dir}; all {len(self._mask_by_index)} masks are "
                f"background{hint}"
            )
        self._first_seen = first_seen
        self._object_ids = sorted(first_seen)

    @property
    def object_ids(self) -> list[int]:
        """Sorted ids present in any annotation; computed on first use and cached."""
        if self._object_ids is None:
            self._scan_objects()
        assert self._object_ids is not None
        return list(self._object_ids)

    def tracks(self) -> list[Track]:
        """One track per object, prompted on the first annotated frame where it appears."""
        if self._first_seen is None:
            self._scan_objects()
        assert self._first_seen is not None
        return [Track(self.name, oid, self._first_seen[oid]) for oid in sorted(self._first_seen)]

    def content_hash(self) -> str:
        """sha256 of the frame bytes, so feature caches survive renames but not edited frames.

        Each file contributes its byte length (8 bytes, big-endian) followed by its bytes, in
        frame order, so that moving bytes across a frame boundary changes the hash.
        """
        if self._content_hash is None:
            h = hashlib.sha256()
            for path in self.frame_paths:
                try:
                    h.update(path.stat().st_size.to_bytes(8, "big"))
                    with open(path, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            h.update(chunk)
                except OSError as e:
                    raise DatasetError(f"cannot read frame {path}: {e}") from e
            self._content_hash = h.hexdigest()
        return self._content_hash
