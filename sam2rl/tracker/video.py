"""Where the tracker meets a dataset video: its image features (encoded on demand, once while they
fit the budget) and its ground truth at the model's input size, as the oracle, the search and the
environment read it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from sam2rl.datasets import Track, VideoSequence
from sam2rl.tracker.core import Tracker
from sam2rl.tracker.prediction import resize_prompt_mask
from sam2rl.tracker.store import FeatureMemory, FeatureStore

__all__ = ["feature_folder", "ground_truth_masks", "video_features"]


def feature_folder(tracker: Tracker, video: VideoSequence, cache_dir: str | Path) -> Path | None:
    """`cache_dir/<video>-<key>/`, the folder of `video`'s frame features: the key changes with the
    video bytes, model config, weights, input size, dtype and autocast. None for a tracker built
    from a bare model (no identity to key on)."""
    if tracker.spec is None:
        return None
    settings = tracker.settings
    parts = (video.content_hash(), *tracker.identity.values(), str(settings.feature_dtype),
             f"autocast={settings.autocast}")  # the encoder ran in bfloat16 or not
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
    return Path(cache_dir) / f"{video.name}-{key}"


def video_features(tracker: Tracker, video: VideoSequence, cache_dir: str | Path | None = None,
                   memory: FeatureMemory | None = None, chunk: int = 8) -> FeatureStore:
    """The features of `video`'s frames, encoded when first read and kept in `memory` (shared by
    every store given it; default: a `FeatureBudget()` of its own); with `cache_dir`, also written
    frame by frame to `feature_folder` and read back from it by later runs."""
    settings = tracker.settings
    folder = None if cache_dir is None else feature_folder(tracker, video, cache_dir)
    return FeatureStore(tracker.model, lambda t: video.frame(t, tracker.image_size), video.num_frames,
                        dtype=settings.feature_dtype, autocast=settings.autocast, chunk=chunk,
                        memory=memory if memory is not None else FeatureMemory(device=tracker.device), folder=folder)


def ground_truth_masks(video: VideoSequence, tracks: list[Track], image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, T, S, S] bool masks at model input size, [B, T] bool annotated) for `tracks`.

    Downsampled as prompts are (`resize_prompt_mask`: antialiased bilinear, >= 0.5).
    Frames without an annotation file are all-False and marked not annotated.
    """
    masks = torch.zeros(len(tracks), video.num_frames, image_size, image_size, dtype=torch.bool)
    annotated = torch.zeros(len(tracks), video.num_frames, dtype=torch.bool)
    for t in range(video.num_frames):
        ids = video.mask(t)
        if ids is None:
            continue
        objects = torch.stack([torch.from_numpy(ids == track.object_id) for track in tracks])
        masks[:, t] = resize_prompt_mask(objects, image_size)[:, 0] > 0.5
        annotated[:, t] = True
    return masks, annotated
