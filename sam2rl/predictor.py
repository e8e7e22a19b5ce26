"""`SAM2RLVideoPredictor`: sam2's `SAM2VideoPredictor` interface with a memory controller.

    predictor = SAM2RLVideoPredictor(tracker, sam2rl.load_agent("agent.pt", tracker))
    state = predictor.init_state("video_frames/")
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, mask_logits in predictor.propagate_in_video(state):
        ...
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from sam2.utils.misc import load_video_frames

from sam2rl.controllers import Controller, FifoController
from sam2rl.tracker import Memories, Tracker, resize_prompt_mask, rollout, to_video_resolution

__all__ = ["SAM2RLVideoPredictor"]


class SAM2RLVideoPredictor:
    """Prompt objects on frames, then propagate forward; `controller` decides what the memory
    bank keeps (SAM 2's FIFO by default, or any built-in rule or trained agent)."""

    def __init__(self, tracker: Tracker, controller: Controller | None = None):
        self.tracker = tracker
        self.controller = FifoController() if controller is None else controller

    @torch.inference_mode()
    def init_state(self, video_path: str) -> dict[str, Any]:
        """Load a folder of JPEG frames (as sam2 does) and encode every frame once."""
        images, height, width = load_video_frames(video_path=video_path, image_size=self.tracker.image_size,
                                                  offload_video_to_cpu=True, compute_device=torch.device("cpu"))
        return {"features": self.tracker.encode_frames(images), "num_frames": len(images),
                "video_height": height, "video_width": width, "prompts": {}}

    def _output(self, state: dict, frame_idx: int, low: torch.Tensor, anchor: Memories,
                obj_id: int) -> tuple[int, list[int], torch.Tensor]:
        earlier = state["prompts"].get(obj_id, (frame_idx,))[0]
        if earlier != frame_idx:  # a new prompt on the same frame replaces the old one, as in sam2
            raise ValueError(f"object {obj_id} is already prompted on frame {earlier}, not {frame_idx}: this predictor "
                             "takes one prompt frame per object (init_state starts over)")
        state["prompts"][obj_id] = (frame_idx, anchor, low)
        masks = to_video_resolution(low, state["video_height"], state["video_width"])
        return frame_idx, [obj_id], masks

    @torch.inference_mode()
    def add_new_mask(self, state: dict, frame_idx: int, obj_id: int, mask: Any) -> tuple[int, list[int], torch.Tensor]:
        """Prompt `obj_id` with a [H, W] mask on `frame_idx`; returns (frame_idx, [obj_id], logits)."""
        mask = torch.as_tensor(mask, dtype=torch.bool)[None]
        frame = torch.tensor([frame_idx], device=self.tracker.device)
        low, anchor = self.tracker.prompt(state["features"].gather(frame),
                                          resize_prompt_mask(mask, self.tracker.image_size).to(self.tracker.device), frame)
        return self._output(state, frame_idx, low, anchor, obj_id)

    @torch.inference_mode()
    def add_new_points_or_box(self, state: dict, frame_idx: int, obj_id: int, points: Any = None, labels: Any = None,
                              box: Any = None, normalize_coords: bool = True) -> tuple[int, list[int], torch.Tensor]:
        """Prompt with clicks (labels 1 positive, 0 negative) and/or a box [x0, y0, x1, y1], in
        video pixels (in [0, 1] with `normalize_coords=False`), as sam2's predictor takes them."""
        if (points is None) != (labels is None):
            raise ValueError("points and labels must be given together")
        if points is None and box is None:
            raise ValueError("give points and labels, or a box")
        coords = torch.zeros(0, 2) if points is None else torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
        kinds = torch.zeros(0, dtype=torch.int32) if labels is None else torch.as_tensor(labels, dtype=torch.int32).reshape(-1)
        if box is not None:  # SAM encodes a box as two corner points with labels 2 and 3, first
            coords = torch.cat([torch.as_tensor(box, dtype=torch.float32).reshape(2, 2), coords])
            kinds = torch.cat([torch.tensor([2, 3], dtype=torch.int32), kinds])
        if normalize_coords:
            coords = coords / torch.tensor([state["video_width"], state["video_height"]])
        coords = coords * self.tracker.image_size
        frame = torch.tensor([frame_idx], device=self.tracker.device)
        low, anchor = self.tracker.prompt_points(state["features"].gather(frame), coords[None], kinds[None], frame)
        return self._output(state, frame_idx, low, anchor, obj_id)

    @torch.inference_mode()
    def propagate_in_video(self, state: dict) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """Yield (frame_idx, obj_ids, [N, 1, H, W] mask logits) from the first prompted frame on.

        Objects prompted on the same frame are tracked as one batch, each batch with its own
        copy of the controller; objects not yet prompted on a frame get empty masks (-1024)."""
        if not state["prompts"]:
            raise RuntimeError("no prompts: call add_new_mask or add_new_points_or_box first")
        tracker = self.tracker
        obj_ids = sorted(state["prompts"])
        height, width, total = state["video_height"], state["video_width"], state["num_frames"]
        groups = {}
        for obj_id in obj_ids:
            groups.setdefault(state["prompts"][obj_id][0], []).append(obj_id)
        running = {}
        for t in range(min(groups), total):
            out = torch.full((len(obj_ids), 1, height, width), -1024.0)
            if t in groups:
                ids = groups[t]
                bank = tracker.anchored_bank(torch.cat([state["prompts"][i][1] for i in ids]))
                controller = copy.deepcopy(self.controller)
                controller.reset(len(ids))
                frame = torch.full((len(ids),), t, dtype=torch.long, device=tracker.device)
                controller.begin_episode(frame, torch.full_like(frame, total))
                running[t] = (ids, rollout(tracker, state["features"], bank, frame, torch.full_like(frame, total),
                                           choose=controller.choose, act=controller.act))
                for i in ids:  # the prompt frame shows the prompt's own mask
                    low = state["prompts"][i][2]
                    out[obj_ids.index(i)] = to_video_resolution(low, height, width)[0].cpu()
            for start, (ids, frames) in running.items():
                if start == t:
                    continue
                step = next(frames).step
                logits = to_video_resolution(step.prediction.mask_logits(step.choice), height, width).cpu()
                for row, i in enumerate(ids):
                    out[obj_ids.index(i)] = logits[row]
            yield t, obj_ids, out
