"""Track every object of a video with a controller, keeping what evaluation and plots need."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import torch

from sam2rl.controllers import Controller, build_controller, make_controller
from sam2rl.controllers.sam2long import track_video_sam2long
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.errors import InputError
from sam2rl.tracker import (
    FeatureCache, Memories, MemoryBank, Prediction, Tracker, resize_prompt_mask, to_video_resolution,
)

__all__ = ["ControllerError", "PathwaySearch", "TrackRun", "make_eval_controller", "track_video"]


class ControllerError(InputError, ValueError):
    """A controller's decision broke the tracker (e.g. an action outside [0, N]); names the
    controller, the sequence and the frame."""


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


@torch.inference_mode()
def track_video(tracker: Tracker, video: VideoSequence, controller: Controller, tracks: list[Track] | None = None,
                features: FeatureCache | None = None) -> list[TrackRun]:
    """Run `controller` on the tracks of `video` (all its objects by default).

    Tracks prompted on the same frame go through the tracker as one batch. A controller with its
    own whole-video search (a `track_video` method, e.g. `PathwaySearch`) runs that instead.
    A ValueError or IndexError raised while applying the controller's choice or action is
    re-raised as `ControllerError` naming the controller, the sequence and the frame.
    """
    search = getattr(controller, "track_video", None)
    if callable(search):
        return search(tracker, video, tracks=tracks, features=features)
    tracks = video.tracks() if tracks is None else tracks
    features = tracker.video_features(video) if features is None else features
    device = tracker.device
    runs: list[TrackRun] = []
    for group in group_by_prompt_frame(tracks):
        start = group[0].prompt_frame
        began = time.perf_counter()
        batch = len(group)
        controller.reset(batch)
        frame = torch.full((batch,), start, dtype=torch.long, device=device)
        total = torch.full((batch,), video.num_frames, device=device)
        controller.begin_episode(frame, total)
        prompts = video.prompt_masks(group).to(device)
        low, bank = tracker.start(features.gather(frame), resize_prompt_mask(prompts, tracker.image_size), frame)
        masks = [to_video_resolution(low, video.height, video.width)[:, 0] > 0]
        scores, ious = [bank.anchors.object_score[:, 0]], [bank.anchors.iou[:, 0]]
        timeline, actions = [bank.slot_frames()], []
        for t in range(start + 1, video.num_frames):
            frame = torch.full_like(frame, t)
            try:
                step = tracker.step(features.gather(frame), bank, frame, total, controller.choose, controller.act)
            except (ValueError, IndexError) as error:
                raise ControllerError(f"controller {controller.name!r} failed on frame {t} of sequence "
                                      f"{video.name!r}: {error}") from error
            bank = step.bank
            masks.append(to_video_resolution(step.prediction.mask_logits(step.choice), video.height, video.width)[:, 0] > 0)
            scores.append(step.prediction.object_score)
            ious.append(step.candidate.iou)
            timeline.append(bank.slot_frames())
            actions.append(step.action)
        stacked = [torch.stack(x, dim=1).cpu() for x in (masks, scores, ious, timeline)]  # one copy (and wait) per batch
        acts = torch.stack(actions, dim=1).cpu() if actions else torch.zeros(batch, 0, dtype=torch.long)
        seconds = (time.perf_counter() - began) / batch
        for i, track in enumerate(group):
            runs.append(TrackRun(track, stacked[0][i], stacked[1][i], stacked[2][i], stacked[3][i], acts[i], seconds))
    return runs


class PathwaySearch(Controller):
    """`sam2long:P`: SAM2Long's memory-tree search with P pathways (`track_video_sam2long`).

    Not a per-step rule: the search keeps P banks per track and picks the best pathway at the
    end of the video, so it only runs through `track_video` (which calls `track_video` here).
    Plain `sam2long` is the one-pathway rule (`Sam2LongController`).
    """

    name = "sam2long:P"

    def __init__(self, num_pathways: int = 3, *, iou_threshold: float = 0.1, uncertainty: float = 2.0) -> None:
        if num_pathways < 1:
            raise ValueError(f"sam2long:P needs P >= 1 pathways, got {num_pathways}")
        self.num_pathways = int(num_pathways)
        self.iou_threshold = float(iou_threshold)
        self.uncertainty = float(uncertainty)
        self.name = f"sam2long:{self.num_pathways}"

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} searches whole videos; run it with track_video, not step by step")

    def track_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                    features: FeatureCache | None = None) -> list[TrackRun]:
        return track_video_sam2long(tracker, video, num_pathways=self.num_pathways, iou_threshold=self.iou_threshold,
                                    uncertainty=self.uncertainty, tracks=tracks, features=features)


def make_eval_controller(name: str, **options: object) -> Controller:
    """`make_controller` plus `sam2long:P` (SAM2Long's P-pathway search, `PathwaySearch`)."""
    if name.startswith("sam2long:"):
        count = name.removeprefix("sam2long:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"controller {name!r}: P in sam2long:P must be a positive integer "
                             "(e.g. sam2long:3 for SAM2Long's three-pathway search)")
        return build_controller(name, partial(PathwaySearch, int(count)), options)
    return make_controller(name, **options)
