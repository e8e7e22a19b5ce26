"""Where the tracker meets a dataset video: its image features (cached once per video) and its
ground truth at the model's input size, as the oracle, the search and the environment read it."""

from __future__ import annotations

from pathlib import Path

import torch

from sam2rl.datasets import Track, VideoSequence
from sam2rl.tracker.core import Tracker
from sam2rl.tracker.features import FeatureCache
from sam2rl.tracker.prediction import resize_prompt_mask

__all__ = ["ground_truth_masks", "video_features"]


def video_features(tracker: Tracker, video: VideoSequence, cache_dir: str | Path | None = None,
                   chunk: int = 8) -> FeatureCache:
    """Features of every frame of `video`, loaded lazily; reused from `cache_dir` when the video
    bytes, model config, weights, input size, dtype and autocast all match."""
    settings = tracker.settings
    path = None
    if cache_dir is not None and tracker.spec is not None:
        key = FeatureCache.key(video.content_hash(), *tracker.identity.values(), str(settings.feature_dtype),
                               f"autocast={settings.autocast}")  # the encoder ran in bfloat16 or not
        path = Path(cache_dir) / f"{video.name}-{key}.pt"
        if path.is_file():
            return FeatureCache.load(path, tracker.device)
    cache = FeatureCache.build(tracker.model, lambda t: video.frame(t, tracker.image_size), video.num_frames,
                               dtype=settings.feature_dtype, chunk=chunk, autocast=settings.autocast)
    if path is not None:
        cache.save(path)
    return cache


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
