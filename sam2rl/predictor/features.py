"""Image features of the predictor's video, encoded frame by frame as propagation reaches them.

sam2's predictor re-encodes every frame it visits (it keeps one); we encode each frame the first
time a pass needs it and keep it, so a second pass (reverse, or after a correction) encodes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from sam2rl.tracker import FeatureBudget, FeatureCache, FeatureMemory, FeatureStore, FrameFeatures, Tracker

__all__ = ["VideoFeatures"]


class VideoFeatures(FeatureStore):
    """A `FeatureStore` over sam2's frames (`images`: a tensor, or its asynchronous loader) that
    encodes one frame per image-encoder call, as sam2's predictor does, and keeps every frame: on
    the tracker's device, or on the host when `storage` (sam2's `offload_state_to_cpu`) is the CPU.
    `first` is frame 0, which sam2 encodes to warm up. `reversed()` reads frame T-1-t for t, the
    time of a pass that tracks backwards (see `propagation`)."""

    def __init__(self, tracker: Tracker, images: Sequence[torch.Tensor], first: FeatureCache,
                 storage: torch.device):
        offloaded = torch.device(storage).type == "cpu" and tracker.device.type != "cpu"
        budget = FeatureBudget(0.0, float("inf")) if offloaded else FeatureBudget.unbounded()
        super().__init__(tracker.model, lambda t: images[t], len(images), dtype=tracker.settings.feature_dtype,
                         autocast=tracker.settings.autocast, chunk=1, memory=FeatureMemory(budget, tracker.device))
        self.reverse = False
        self.keep(0, first)

    def reversed(self) -> VideoFeatures:
        """The same features (shared, not copied) read in reverse time."""
        view = copy.copy(self)
        view.reverse = not self.reverse
        return view

    def gather(self, index: torch.Tensor) -> FrameFeatures:
        return super().gather(self.num_frames - 1 - index if self.reverse else index)
