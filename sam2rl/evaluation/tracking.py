"""Track every object of a video with a controller, keeping what evaluation and plots need."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import groupby

import torch

from sam2rl.controllers import Controller
from sam2rl.datasets import Track, VideoSequence
from sam2rl.tracker import FeatureCache, Tracker, resize_prompt_mask, to_video_resolution

__all__ = ["TrackRun", "track_video"]


@dataclass
class TrackRun:
    """One object tracked from its prompt frame to the end of the video."""

    track: Track
    masks: torch.Tensor  # [T', H, W] bool at video resolution, T' = frames from the prompt on
    object_score: torch.Tensor  # [T'] presence logit (prompt frame: from the mask)
    predicted_iou: torch.Tensor  # [T'] predicted IoU of the chosen candidate
    bank_frames: torch.Tensor  # [T', A + R] frames held in the bank after each frame (-1 empty)
    actions: torch.Tensor  # [T'-1] the controller's action after each tracked frame
    seconds: float  # tracking time of the batch this track was in, per track

    @property
    def frames(self) -> range:
        return range(self.track.prompt_frame, self.track.prompt_frame + self.masks.shape[0])


def _bank_frames(bank) -> torch.Tensor:
    frames = torch.cat([bank.anchors.frame, bank.recent.frame], dim=1)
    valid = torch.cat([bank.anchors.valid, bank.recent.valid], dim=1)
    return torch.where(valid, frames, torch.full_like(frames, -1)).cpu()


@torch.inference_mode()
def track_video(tracker: Tracker, video: VideoSequence, controller: Controller, tracks: list[Track] | None = None,
                features: FeatureCache | None = None) -> list[TrackRun]:
    """Run `controller` on the tracks of `video` (all its objects by default).

    Tracks prompted on the same frame go through the tracker as one batch.
    """
    tracks = video.tracks() if tracks is None else tracks
    features = tracker.video_features(video) if features is None else features
    device = tracker.device
    runs: list[TrackRun] = []
    for start, group in groupby(sorted(tracks, key=lambda tr: tr.prompt_frame), key=lambda tr: tr.prompt_frame):
        group = list(group)
        began = time.perf_counter()
        batch = len(group)
        controller.reset(batch)
        frame = torch.full((batch,), start, dtype=torch.long, device=device)
        total = torch.full((batch,), video.num_frames, device=device)
        controller.begin_episode(frame, total)
        prompts = torch.stack([torch.from_numpy(video.object_mask(start, tr.object_id)) for tr in group]).to(device)
        low, bank = tracker.start(features.gather(frame), resize_prompt_mask(prompts, tracker.image_size), frame)
        masks = [to_video_resolution(low, video.height, video.width)[:, 0] > 0]
        scores, ious = [bank.anchors.object_score[:, 0]], [bank.anchors.iou[:, 0]]
        timeline, actions = [_bank_frames(bank)], []
        for t in range(start + 1, video.num_frames):
            frame = torch.full_like(frame, t)
            step = tracker.step(features.gather(frame), bank, frame, total, controller.choose, controller.act)
            bank = step.bank
            masks.append(to_video_resolution(step.prediction.mask_logits(step.choice), video.height, video.width)[:, 0] > 0)
            scores.append(step.prediction.object_score)
            ious.append(step.candidate.iou)
            timeline.append(_bank_frames(bank))
            actions.append(step.action)
        seconds = (time.perf_counter() - began) / batch
        stacked = [torch.stack(x, dim=1).cpu() for x in (masks, scores, ious, timeline)]
        acts = torch.stack(actions, dim=1).cpu() if actions else torch.zeros(batch, 0, dtype=torch.long)
        for i, track in enumerate(group):
            runs.append(TrackRun(track, stacked[0][i], stacked[1][i], stacked[2][i], stacked[3][i], acts[i], seconds))
    return runs
