"""One pass of `SAM2RLVideoPredictor.propagate_in_video`: sam2's frame order and outputs, our batched
tracker and memory controller in between.

A reverse pass runs in the pass's own time u = T-1-t: the tracker, the bank and the controller see a
forward pass over the reversed video, so ages and distances are positive in the tracking direction,
as SAM 2's `track_in_reverse` measures them, and nothing below needs a direction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from sam2.sam2_video_predictor import SAM2VideoPredictor

from sam2rl.controllers import Controller
from sam2rl.predictor.features import VideoFeatures
from sam2rl.predictor.outputs import bank_before, tracked_output
from sam2rl.tracker import MemoryBank, Step, TrackedFrame, Tracker, rollout

__all__ = ["FEATURES", "processing_order", "propagate"]

FEATURES = "sam2rl_features"
"""Our key in sam2's `inference_state`: the video's `VideoFeatures`."""


def processing_order(state: dict, start_frame_idx: int | None, max_frame_num_to_track: int | None,
                     reverse: bool) -> range:
    """The frames a pass visits, as `SAM2VideoPredictor.propagate_in_video` picks them: from the first
    prompted frame by default, at most `max_frame_num_to_track` frames after the start (none backwards
    from frame 0)."""
    if start_frame_idx is None:
        start_frame_idx = min(t for out in state["output_dict_per_obj"].values() for t in out["cond_frame_outputs"])
    span = state["num_frames"] if max_frame_num_to_track is None else max_frame_num_to_track
    if reverse:
        return range(start_frame_idx, max(start_frame_idx - span, 0) - 1, -1) if start_frame_idx > 0 else range(0)
    return range(start_frame_idx, min(start_frame_idx + span, state["num_frames"] - 1) + 1)


class _Batch:
    """Objects whose prompts show on the same frames of the pass: tracked together (one bank row each)
    by one copy of the controller, which does not see those frames (SAM 2 tracks none of them)."""

    def __init__(self, objects: list[int], prompted: frozenset[int], controller: Controller):
        self.objects = objects  # sam2's object indices
        self.prompted = prompted  # frames of the pass where they show their prompts' outputs
        self.controller = controller
        self.bank: MemoryBank | None = None
        self.frames: Iterator[TrackedFrame] | None = None  # the rollout of the current run of tracked frames

    def track(self, tracker: Tracker, state: dict, features: VideoFeatures, frame: int,
              flip: Callable[[int], int]) -> Step:
        """Track pass-time `frame` (continuing the run of frames before it, or starting a new one)."""
        count, total = len(self.objects), state["num_frames"]
        start = torch.full((count,), frame - 1, dtype=torch.long, device=tracker.device)
        if self.bank is None:  # first tracked frame of the pass: the bank as SAM 2 would read it here
            self.bank = bank_before(tracker, [state["output_dict_per_obj"][i] for i in self.objects], frame, flip)
            self.controller.reset(count)
            self.controller.begin_episode(start, torch.full_like(start, total))
        if self.frames is None:
            self.frames = rollout(tracker, features, self.bank, start, torch.full_like(start, total),
                                  choose=self.controller.choose, act=self.controller.act)
        step = next(self.frames).step
        self.bank = step.bank
        return step


def propagate(sam2: SAM2VideoPredictor, tracker: Tracker, controller: Controller, state: dict, order: range,
              reverse: bool) -> Iterator[tuple[int, list[int], torch.Tensor]]:
    """Yield (frame_idx, obj_ids, video-resolution logits of every object) for each frame of `order`,
    storing each tracked frame's output in `state` as sam2 does (after its preflight)."""
    outputs = state["output_dict_per_obj"]
    total = state["num_frames"]
    flip: Callable[[int], int] = (lambda t: total - 1 - t) if reverse else (lambda t: t)  # video frame <-> pass time
    features = state[FEATURES].reversed() if reverse else state[FEATURES]
    prompts = max(len(out["cond_frame_outputs"]) for out in outputs.values())
    own = max(tracker.settings.max_anchors, controller.max_anchors) - 1  # anchor slots the rule may fill
    tracker = tracker.with_settings(max_anchors=own + prompts, anchors_in_window=True)
    groups: dict[frozenset[int], list[int]] = {}
    for i, out in sorted(outputs.items()):
        groups.setdefault(frozenset(t for t in out["cond_frame_outputs"] if t in order), []).append(i)
    batches = [_Batch(objects, prompted, copy.deepcopy(controller)) for prompted, objects in groups.items()]
    pos_enc = state["constants"]["maskmem_pos_enc"]
    for t in order:
        masks: list[torch.Tensor | None] = [None] * len(outputs)
        for batch in batches:
            if t in batch.prompted:  # the prompt's own output, as sam2 shows it
                batch.frames = None
                for i in batch.objects:
                    masks[i] = outputs[i]["cond_frame_outputs"][t]["pred_masks"]
                continue
            step = batch.track(tracker, state, features, flip(t), flip)
            for row, i in enumerate(batch.objects):
                outputs[i]["non_cond_frame_outputs"][t] = tracked_output(step, row, pos_enc, state["storage_device"])
                masks[i] = outputs[i]["non_cond_frame_outputs"][t]["pred_masks"]
        for tracked in state["frames_tracked_per_obj"].values():
            tracked[t] = {"reverse": reverse}
        _, video_res_masks = sam2._get_orig_video_res_output(state, torch.cat(masks))
        yield t, state["obj_ids"], video_res_masks
