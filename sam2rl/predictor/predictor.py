"""`SAM2RLVideoPredictor`: sam2's `SAM2VideoPredictor` interface with a memory controller.

    predictor = SAM2RLVideoPredictor(tracker, sam2rl.load_agent("agent.pt", tracker))
    state = predictor.init_state("video_frames/")
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, mask_logits in predictor.propagate_in_video(state):
        ...

The state is sam2's own `inference_state` and every method but `propagate_in_video` is sam2's own
code, run on the tracker's model: prompts, clicks added to earlier ones, corrections on tracked
frames, removing objects. Propagation is ours (`propagation`): all objects in one batch per set of
prompted frames, the controller deciding each frame's memory; under FIFO it gives sam2's masks.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import torch
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_video_predictor import SAM2VideoPredictor

from sam2rl.controllers import Controller, FifoController
from sam2rl.predictor.features import VideoFeatures
from sam2rl.predictor.propagation import FEATURES, processing_order, propagate
from sam2rl.tracker import FeatureCache, Tracker

__all__ = ["SAM2RLVideoPredictor", "sam2_predictor"]

Masks = tuple[int, list[int], torch.Tensor]
"""(frame_idx, obj_ids, [N, 1, H, W] logits of every object at video resolution), as sam2 returns them."""


def sam2_predictor(model: SAM2Base) -> SAM2VideoPredictor:
    """`model` as sam2's `SAM2VideoPredictor` with that class's default options: the same modules and
    weights (shared, not copied), so the predictor's bookkeeping runs as sam2's own code."""
    if isinstance(model, SAM2VideoPredictor):
        return model
    predictor = SAM2VideoPredictor.__new__(SAM2VideoPredictor)
    predictor.__dict__.update(model.__dict__)  # submodules, parameters and hooks: the same objects
    for name, option in inspect.signature(SAM2VideoPredictor.__init__).parameters.items():
        if option.default is not inspect.Parameter.empty:
            setattr(predictor, name, option.default)
    predictor.training = False
    return predictor


class SAM2RLVideoPredictor:
    """Prompt objects on any frames, then propagate forward or backward; `controller` decides what the
    memory bank keeps (SAM 2's FIFO by default, or any built-in rule or trained agent)."""

    def __init__(self, tracker: Tracker, controller: Controller | None = None):
        self.tracker = tracker
        self.controller = FifoController() if controller is None else controller
        self.sam2 = sam2_predictor(tracker.model)

    @torch.inference_mode()
    def init_state(self, video_path: str, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   async_loading_frames: bool = False) -> dict[str, Any]:
        """Load a folder of JPEG frames (or an MP4) as sam2 does, with its options; frames are encoded
        when a prompt or a pass first needs them, and kept (on the CPU with `offload_state_to_cpu`)."""
        state = self.sam2.init_state(video_path, offload_video_to_cpu, offload_state_to_cpu, async_loading_frames)
        _, backbone = state["cached_features"][0]  # sam2 encodes frame 0 to warm up: keep it
        state[FEATURES] = VideoFeatures(self.tracker, state["images"], FeatureCache.from_backbone(self.tracker.model, backbone),
                                        state["storage_device"])
        return state

    def add_new_points_or_box(self, state: dict, frame_idx: int, obj_id: int, points: Any = None, labels: Any = None,
                              clear_old_points: bool = True, normalize_coords: bool = True, box: Any = None) -> Masks:
        """Clicks (labels 1 positive, 0 negative) and/or a box [x0, y0, x1, y1] in video pixels (in [0, 1]
        with `normalize_coords=False`); `clear_old_points=False` adds them to the frame's earlier clicks.
        On a frame already tracked they correct its mask, conditioned on the memories (sam2's rule)."""
        return self.sam2.add_new_points_or_box(state, frame_idx, obj_id, points, labels, clear_old_points,
                                               normalize_coords, box)

    def add_new_points(self, *args: Any, **kwargs: Any) -> Masks:
        """sam2's old name of `add_new_points_or_box`."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, state: dict, frame_idx: int, obj_id: int, mask: Any) -> Masks:
        """Prompt `obj_id` with a [H, W] mask on `frame_idx` (replacing the frame's clicks)."""
        return self.sam2.add_new_mask(state, frame_idx, obj_id, mask)

    def clear_all_prompts_in_frame(self, state: dict, frame_idx: int, obj_id: int,
                                   need_output: bool = True) -> Masks | None:
        """Forget `obj_id`'s prompts on `frame_idx` (a propagated prompt stays as a tracked memory)."""
        return self.sam2.clear_all_prompts_in_frame(state, frame_idx, obj_id, need_output)

    def remove_object(self, state: dict, obj_id: int, strict: bool = False,
                      need_output: bool = True) -> tuple[list[int], list[tuple[int, torch.Tensor]]]:
        """Drop `obj_id` and all it left in the state; returns (obj_ids, [(frame_idx, masks)] of its
        prompted frames)."""
        return self.sam2.remove_object(state, obj_id, strict, need_output)

    def reset_state(self, state: dict) -> None:
        """Forget every prompt, object and tracked frame (the video and its features stay)."""
        self.sam2.reset_state(state)

    @torch.inference_mode()
    def propagate_in_video(self, state: dict, start_frame_idx: int | None = None,
                           max_frame_num_to_track: int | None = None, reverse: bool = False) -> Iterator[Masks]:
        """Yield (frame_idx, obj_ids, [N, 1, H, W] mask logits) for each frame from `start_frame_idx`
        (default: the first prompted frame) for at most `max_frame_num_to_track` more frames, forward
        or (`reverse`) backward.

        Every object is tracked on every frame, each from all its prompts (anchors of its bank) and
        what earlier passes tracked next to the start; on a prompted frame it shows the prompt's mask.
        Objects prompted on the same frames form one batch with its own copy of the controller."""
        self.sam2.propagate_in_video_preflight(state)
        order = processing_order(state, start_frame_idx, max_frame_num_to_track, reverse)
        yield from propagate(self.sam2, self.tracker, self.controller, state, order, reverse)
