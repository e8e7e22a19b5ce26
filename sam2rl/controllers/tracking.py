"""Track every object of a video with a controller: the frame loop driven by a memory rule."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller, ControllerError
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.tracker import Features, RunRecorder, Tracker, TrackRun, resize_prompt_mask, rollout, video_features

__all__ = ["track_video"]


@torch.inference_mode()
def track_video(tracker: Tracker, video: VideoSequence, controller: Controller, tracks: list[Track] | None = None,
                features: Features | None = None) -> list[TrackRun]:
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
    features = video_features(tracker, video) if features is None else features
    device = tracker.device
    runs: list[TrackRun] = []
    for group in group_by_prompt_frame(tracks):
        recorder = RunRecorder(video)
        batch = len(group)
        controller.reset(batch)
        start = torch.full((batch,), group[0].prompt_frame, dtype=torch.long, device=device)
        total = torch.full((batch,), video.num_frames, device=device)
        controller.begin_episode(start, total)
        prompts = video.prompt_masks(group).to(device)
        low, bank = tracker.start(features.gather(start), resize_prompt_mask(prompts, tracker.image_size), start)
        recorder.prompt(low, bank)
        frame = group[0].prompt_frame + 1
        try:
            for tracked in rollout(tracker, features, bank, start, total, choose=controller.choose, act=controller.act):
                recorder.add(tracked.step)
                frame += 1
        except (ValueError, IndexError) as error:
            raise ControllerError(f"controller {controller.name!r} failed on frame {frame} of sequence "
                                  f"{video.name!r}: {error}") from error
        runs += recorder.runs(group)
    return runs
