"""Image-encoder features computed once per frame and shared by every episode on the video.

The image encoder is half or more of SAM 2's cost per frame and does not depend on the
memory, so training never runs it twice for a frame while the frame fits the feature budget
(`sam2rl.tracker.store`: a video's features on demand, in memory tiers and on disk).

Memory per frame: all three backbone levels the tracker reads, after the mask decoder's
high-resolution projections (as `SAM2Base.forward_image` returns them):
hidden/8 x (S/4)^2 + hidden/4 x (S/8)^2 + hidden x (S/16)^2 values, i.e. 4 S^2 values for
hidden = 256 (all official models): 1 MiB per frame at S = 256 and 16 MiB at S = 1024 in
float32, half that in bfloat16/float16. The nano model (hidden 128, S = 128) takes 128 KiB.
The positional encoding of the top level is the same for every frame and is kept once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch
from sam2.modeling.sam2_base import SAM2Base

__all__ = ["FeatureCache", "Features", "FrameFeatures"]


@dataclass
class FrameFeatures:
    """Backbone features of one frame for each of B tracks, in the layouts sam2's calls take."""

    levels: list[torch.Tensor]  # BCHW per level, high resolution first
    pos_top: torch.Tensor  # (HW)BC positional encoding of the top level

    @property
    def feat_sizes(self) -> list[tuple[int, int]]:
        return [(x.shape[-2], x.shape[-1]) for x in self.levels]

    @property
    def vision_feats(self) -> list[torch.Tensor]:
        """BCHW => (HW)BC, as `SAM2Base._prepare_backbone_features` flattens them."""
        return [x.flatten(2).permute(2, 0, 1) for x in self.levels]

    @property
    def top(self) -> torch.Tensor:
        return self.levels[-1]

    @property
    def high_res(self) -> list[torch.Tensor]:
        return self.levels[:-1]


class Features(Protocol):
    """What the frame loop reads image features from: a `FeatureCache` (every frame in memory), a
    `FeatureStore` (frames encoded on demand within a memory budget) or `FeatureViews` over several."""

    @property
    def num_frames(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        """Features of frame index[b] for each track b, on `device`, in float32."""
        ...


def bfloat16_autocast(device: torch.device, enabled: bool) -> AbstractContextManager:
    """The tracker's own mixed precision (`TrackerSettings.autocast`): bfloat16 on `device`'s type.
    When off it is no context at all: `torch.autocast(enabled=False)` would switch off a caller's
    (Lightning's bf16-mixed, say)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


class FeatureCache:
    """Backbone levels of T frames ([T, C_l, H_l, W_l] each), all in memory: a batch of frames
    (pretraining, `Tracker.encode_frames`); a video's features are a `FeatureStore` (`video_features`)."""

    def __init__(self, levels: list[torch.Tensor], pos_top: torch.Tensor):
        self.levels = levels  # stored in any dtype, handed out in float32 (the tracker's; autocast casts down)
        self.pos_top = pos_top  # [C, H, W]

    @property
    def num_frames(self) -> int:
        return self.levels[0].shape[0]

    @property
    def bytes_per_frame(self) -> int:
        return sum(x[0].numel() * x.element_size() for x in self.levels)

    @property
    def device(self) -> torch.device:
        return self.levels[0].device

    @classmethod
    @torch.inference_mode()
    def build(cls, model: SAM2Base, frames: Callable[[int], torch.Tensor] | torch.Tensor, num_frames: int | None = None,
              dtype: torch.dtype = torch.float32, chunk: int = 8, autocast: bool = False) -> FeatureCache:
        """Run the image encoder once per frame, `chunk` frames per call.

        `frames` is a [T, 3, S, S] tensor or a function t -> [3, S, S] (lazy loading).
        """
        get = (lambda t: frames[t]) if isinstance(frames, torch.Tensor) else frames
        total = len(frames) if num_frames is None else num_frames
        device = model.device
        levels: list[list[torch.Tensor]] = []
        pos_top = torch.empty(0)
        for start in range(0, total, chunk):
            batch = torch.stack([get(t) for t in range(start, min(start + chunk, total))]).to(device)
            with bfloat16_autocast(device, autocast):
                part = cls.from_backbone(model, model.forward_image(batch.float()))
            levels.append([f.to(dtype) for f in part.levels])
            pos_top = part.pos_top.float()
        stacked = [torch.cat([chunk_levels[i] for chunk_levels in levels]) for i in range(len(levels[0]))]
        return cls(stacked, pos_top)

    @classmethod
    def from_backbone(cls, model: SAM2Base, backbone_out: dict) -> FeatureCache:
        """The levels the tracker reads from `SAM2Base.forward_image` output (keeps autograd)."""
        return cls(backbone_out["backbone_fpn"][-model.num_feature_levels:], backbone_out["vision_pos_enc"][-1][0])

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        """Features of frame index[b] for each track b (index into this cache's frames)."""
        index = index.to(self.device)
        levels = [x[index].float() for x in self.levels]
        pos = self.pos_top.flatten(1).t()[:, None, :].expand(-1, index.numel(), -1).float()
        return FrameFeatures(levels=levels, pos_top=pos)
