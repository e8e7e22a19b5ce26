"""Image features of the predictor's video, encoded frame by frame as propagation reaches them.

sam2's predictor re-encodes every frame it visits (it keeps one); we encode each frame the first
time a pass needs it and keep it, so a second pass (reverse, or after a correction) encodes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from sam2.modeling.sam2_base import SAM2Base

from sam2rl.tracker import FeatureCache, FrameFeatures, Tracker

__all__ = ["VideoFeatures"]


class VideoFeatures(FeatureCache):
    """A `FeatureCache` over a whole video whose frames are encoded on first read, one image-encoder
    call per frame as in sam2's predictor; `reversed()` reads frame T-1-t for t, the time of a pass
    that tracks backwards (see `propagation`)."""

    def __init__(self, tracker: Tracker, images: Sequence[torch.Tensor], first: FeatureCache,
                 storage: torch.device):
        dtype = tracker.settings.feature_dtype
        levels = [torch.empty(len(images), *x.shape[1:], dtype=dtype, device=storage) for x in first.levels]
        super().__init__(levels, first.pos_top.to(storage))
        self.model: SAM2Base = tracker.model
        self.autocast = tracker.settings.autocast
        self.images = images  # sam2's frames: a tensor, or its asynchronous loader
        self.encoded = torch.zeros(len(images), dtype=torch.bool)
        self.reverse = False
        self._keep(0, first)

    def reversed(self) -> VideoFeatures:
        """The same features (shared, not copied) read in reverse time."""
        view = copy.copy(self)
        view.reverse = not self.reverse
        return view

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        frames = self.num_frames - 1 - index if self.reverse else index
        wanted = frames.cpu()
        for t in wanted[~self.encoded[wanted]].unique().tolist():
            self._keep(t, FeatureCache.build(self.model, lambda _: self.images[t], 1, dtype=self.levels[0].dtype,
                                             chunk=1, autocast=self.autocast))
        features = super().gather(frames)
        device = self.model.device
        return FrameFeatures([x.to(device) for x in features.levels], features.pos_top.to(device))

    def _keep(self, frame: int, features: FeatureCache) -> None:
        for stored, level in zip(self.levels, features.levels):
            stored[frame] = level[0].to(stored.dtype)
        self.encoded[frame] = True
