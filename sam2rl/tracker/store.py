"""Image features on demand, within a memory budget: a long or high-resolution video never has
all its frames' features in memory at once.

A `FeatureStore` encodes a frame the first time it is read (with the rest of its chunk, as the
eager `FeatureCache.build` would, so the values are the same bits) and keeps it in the tiers of
a `FeatureMemory`, least recently used first out: the tracker's device, then host memory, then
(write-through, when the store has a folder) per-frame files a later run reads instead of
encoding. A frame that no tier holds is encoded again. Every store of a run can share one
`FeatureMemory`, so the budget bounds all videos together; `FeatureViews` reads several videos'
stores as one frame axis without copying them.
"""

from __future__ import annotations

import itertools
import math
import pickle
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from sam2.modeling.sam2_base import SAM2Base

from sam2rl.atomic import write_torch
from sam2rl.memory_reuse import off_heap_copy
from sam2rl.tracker.checkpoint import CheckpointError
from sam2rl.tracker.features import FeatureCache, Features, FrameFeatures

__all__ = ["FeatureBudget", "FeatureMemory", "FeatureStore", "FeatureViews"]

_MIB = 2**20
_Key = tuple[int, int]  # (store, frame)


@dataclass(frozen=True)
class FeatureBudget:
    """How much memory cached image features may take, in MiB: on the tracker's device, and on the
    host for frames pushed off the device. On a CPU tracker the two are one memory, whose capacity
    is their sum. Frames beyond both are re-read from disk (a store with a folder) or re-encoded.
    A frame takes `FeatureStore.bytes_per_frame` (about 4 S^2 values: 4 MiB at 512 px in float32)."""

    device_mib: float = 2048.0
    host_mib: float = 8192.0

    def __post_init__(self) -> None:
        if not (self.device_mib >= 0 and self.host_mib >= 0):  # also refuses nan
            raise ValueError(f"feature budget: MiB must be >= 0, got device {self.device_mib}, host {self.host_mib}")

    @classmethod
    def unbounded(cls) -> FeatureBudget:
        """No limit on either tier: every frame stays once encoded."""
        return cls(math.inf, math.inf)


class _Tier:
    """Frames on one device, least recently used first, within `capacity` bytes. On the host each
    level is copied out of the heap (`off_heap_copy`): frames kept and dropped in their own order
    would otherwise fragment it, and the resident set would grow with the video's length."""

    def __init__(self, device: torch.device, capacity: float):
        self.device, self.capacity, self.used = device, capacity, 0
        self.frames: OrderedDict[_Key, list[torch.Tensor]] = OrderedDict()

    def add(self, key: _Key, levels: list[torch.Tensor]) -> list[tuple[_Key, list[torch.Tensor]]]:
        """Keep `levels` (moved here); returns what no longer fits, oldest first."""
        self.pop(key)
        host = self.device.type == "cpu"
        self.frames[key] = [off_heap_copy(x) if host else x.to(self.device) for x in levels]
        self.used += _nbytes(levels)
        evicted = []
        while self.used > self.capacity:
            old, value = self.frames.popitem(last=False)
            self.used -= _nbytes(value)
            evicted.append((old, value))
        return evicted

    def pop(self, key: _Key) -> list[torch.Tensor] | None:
        value = self.frames.pop(key, None)
        if value is not None:
            self.used -= _nbytes(value)
        return value


def _nbytes(levels: list[torch.Tensor]) -> int:
    return sum(x.numel() * x.element_size() for x in levels)


class FeatureMemory:
    """The memory tiers that the stores sharing it keep their frames in (see `FeatureBudget`)."""

    def __init__(self, budget: FeatureBudget | None = None, device: torch.device | str = "cpu"):
        self.budget = budget = budget or FeatureBudget()
        self.device = torch.device(device)
        if self.device.type == "cpu":
            self.tiers = [_Tier(self.device, (budget.device_mib + budget.host_mib) * _MIB)]
        else:
            self.tiers = [_Tier(self.device, budget.device_mib * _MIB), _Tier(torch.device("cpu"), budget.host_mib * _MIB)]

    @property
    def used_bytes(self) -> int:
        return sum(tier.used for tier in self.tiers)

    def get(self, key: _Key) -> list[torch.Tensor] | None:
        """A frame's levels on the device, or None when no tier holds it; a host frame moves up when
        it fits on the device."""
        top = self.tiers[0]
        if key in top.frames:
            top.frames.move_to_end(key)
            return top.frames[key]
        for tier in self.tiers[1:]:
            levels = tier.pop(key)
            if levels is not None:
                self.put(key, levels)
                on_top = top.frames.get(key)
                return on_top if on_top is not None else [x.to(self.device) for x in levels]
        return None

    def put(self, key: _Key, levels: list[torch.Tensor]) -> None:
        """Keep a frame on the first tier it fits in; what it pushes out goes down a tier, then is dropped."""
        for tier in self.tiers:
            tier.pop(key)
        moving = [(key, levels)]
        for tier in self.tiers:
            pushed = []
            for item in moving:
                if _nbytes(item[1]) <= tier.capacity:
                    pushed += tier.add(*item)
                else:  # larger than the whole tier: straight to the next
                    pushed.append(item)
            moving = pushed

    def forget(self, store: int) -> None:
        """Drop every frame of one store (it is gone)."""
        for tier in self.tiers:
            for key in [k for k in tier.frames if k[0] == store]:
                tier.pop(key)


class FeatureStore:
    """The image features of one video's `num_frames` frames, encoded on demand.

    `frames(t)` gives frame t at the model's input size ([3, S, S]). A read frame missing from
    `memory` is read from `folder` (when given and it has the frame) or encoded with its whole
    chunk [t // chunk * chunk, + chunk), then kept in `memory`, and written to `folder`. `gather`
    reads like `FeatureCache.gather`, and gives the same values as `FeatureCache.build` with the
    same `chunk`. `encoded_frames` and `read_frames` count the frames encoded and read from disk.
    """

    _ids = itertools.count()

    def __init__(self, model: SAM2Base, frames: Callable[[int], torch.Tensor], num_frames: int, *,
                 dtype: torch.dtype = torch.float32, autocast: bool = False, chunk: int = 8,
                 memory: FeatureMemory | None = None, folder: str | Path | None = None):
        self.model, self.frames, self.num_frames = model, frames, int(num_frames)
        self.dtype, self.autocast, self.chunk = dtype, autocast, int(chunk)
        self.device: torch.device = model.device
        self.memory = memory if memory is not None else FeatureMemory(device=self.device)
        if self.memory.device != self.device:
            raise ValueError(f"feature store on {self.device}: its memory is on {self.memory.device}")
        self.folder = None if folder is None else Path(folder)
        self.pos_top: torch.Tensor | None = None  # [C, H, W], the same for every frame
        self.encoded_frames = 0
        self.read_frames = 0
        self._bytes_per_frame: int | None = None
        self._id = next(self._ids)
        weakref.finalize(self, self.memory.forget, self._id)  # a store's frames go with it

    @property
    def bytes_per_frame(self) -> int:
        """Bytes one frame's levels take (frame 0 is read if no frame has been)."""
        if self._bytes_per_frame is None:
            self.gather(torch.zeros(1, dtype=torch.long))
        assert self._bytes_per_frame is not None
        return self._bytes_per_frame

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        """Features of frame index[b] for each track b."""
        index = index.to(self.device)
        unique, inverse = torch.unique(index, return_inverse=True)
        wanted = unique.tolist() or [0]  # no rows: frame 0 gives the levels' shapes
        if not 0 <= wanted[0] <= wanted[-1] < self.num_frames:
            raise IndexError(f"frames {wanted[0]}..{wanted[-1]} of a video of {self.num_frames} frames")
        held: dict[int, list[torch.Tensor]] = {}  # this gather's frames, whatever the tiers evict meanwhile
        for t in wanted:
            if t not in held:
                held[t] = self._fetch(t, held)
        if self.pos_top is None:
            self._load_pos(wanted[0])
        assert self.pos_top is not None
        levels = [torch.stack([held[t][i] for t in wanted])[inverse].float() for i in range(len(held[wanted[0]]))]
        pos = self.pos_top.flatten(1).t()[:, None, :].expand(-1, index.numel(), -1).float()
        return FrameFeatures(levels=levels, pos_top=pos)

    def keep(self, frame: int, features: FeatureCache) -> None:
        """Take frame `frame`'s features encoded elsewhere (one frame, e.g. sam2's warm-up)."""
        if self.pos_top is None:
            self.pos_top = features.pos_top.to(self.device).float()
        self._store(frame, [x[0].to(self.dtype) for x in features.levels])

    # -- tiers ---------------------------------------------------------------------------------

    def _fetch(self, t: int, held: dict[int, list[torch.Tensor]]) -> list[torch.Tensor]:
        levels = self.memory.get((self._id, t))
        if levels is None:
            levels = self._read(t)
        if levels is None:
            for frame, encoded in self._encode(t).items():
                if frame not in held:  # the chunk's other frames this gather wants
                    held[frame] = encoded
            levels = held[t]
        return levels

    @torch.inference_mode()
    def _encode(self, t: int) -> dict[int, list[torch.Tensor]]:
        start = t // self.chunk * self.chunk
        stop = min(start + self.chunk, self.num_frames)
        part = FeatureCache.build(self.model, lambda i: self.frames(start + i), stop - start, dtype=self.dtype,
                                  chunk=stop - start, autocast=self.autocast)
        self.encoded_frames += stop - start
        if self.pos_top is None:
            self.pos_top = part.pos_top
            if self.folder is not None:  # before any frame file, so a folder with frames has it
                write_torch(self.folder / "pos.pt", part.pos_top.cpu())
        out = {}
        for i, frame in enumerate(range(start, stop)):
            out[frame] = [x[i].clone() for x in part.levels]  # not a view: it would hold the whole chunk
            self._store(frame, out[frame])
        return out

    def _store(self, frame: int, levels: list[torch.Tensor]) -> None:
        self._bytes_per_frame = _nbytes(levels)
        self.memory.put((self._id, frame), levels)
        if self.folder is not None and not self._path(frame).is_file():
            write_torch(self._path(frame), [x.cpu() for x in levels])

    def _path(self, frame: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{frame:06d}.pt"

    def _read(self, t: int) -> list[torch.Tensor] | None:
        if self.folder is None or not self._path(t).is_file():
            return None
        levels = [x.to(self.device) for x in _load(self._path(t))]
        self.read_frames += 1
        self._bytes_per_frame = _nbytes(levels)
        self.memory.put((self._id, t), levels)
        return levels

    def _load_pos(self, frame: int) -> None:
        path = None if self.folder is None else self.folder / "pos.pt"
        if path is not None and path.is_file():
            self.pos_top = _load(path).to(self.device).float()
        else:  # frames read from a folder without it: encoding one chunk gives it
            self._encode(frame)


def _load(path: Path) -> object:
    """A file of a store's folder; one that cannot be read is named in a `CheckpointError`."""
    try:  # read on the CPU: a failure here is the file's, not the device's
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"feature cache {path}: cannot be read ({error}); delete it to rebuild it") from error


class FeatureViews:
    """Several videos' features as one frame axis: frame t of video i is `offsets[i] + t`. Nothing
    is copied: each read goes to its video's features."""

    def __init__(self, videos: Sequence[Features]):
        if not videos:
            raise ValueError("FeatureViews needs at least one video's features")
        self.videos = list(videos)
        lengths = [v.num_frames for v in self.videos]
        self.offsets = [0, *itertools.accumulate(lengths)][:-1]
        self.num_frames = sum(lengths)
        self.device: torch.device = self.videos[0].device
        self._starts = torch.tensor(self.offsets)

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        """Features of frame index[b] (on the joint axis) for each track b."""
        flat = index.cpu()
        video = torch.bucketize(flat, self._starts, right=True) - 1
        local = flat - self._starts[video]
        used = video.unique().tolist()
        if len(used) == 1:  # the usual case: one video's frames
            return self.videos[used[0]].gather(local.to(index.device))
        rows = [(video == v).nonzero()[:, 0] for v in used]
        parts = [self.videos[v].gather(local[r].to(index.device)) for v, r in zip(used, rows)]
        order = torch.argsort(torch.cat(rows)).to(self.device)  # back to the rows' order
        levels = [torch.cat([p.levels[i] for p in parts])[order] for i in range(len(parts[0].levels))]
        return FrameFeatures(levels=levels, pos_top=torch.cat([p.pos_top for p in parts], dim=1)[:, order])

