"""sam2's per-frame outputs (its `output_dict_per_obj`) as our memory banks, and our tracked frames as
its outputs.

The predictor's state is sam2's own `inference_state`, so sam2's prompt methods (clicks added to
earlier ones, corrections on tracked frames, object removal) run unchanged on it; each pass reads its
banks from there and writes every tracked frame back, in sam2's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile

import torch
import torch.nn.functional as F

from sam2rl.tracker import Memories, MemoryBank, Step, Tracker

__all__ = ["IOU", "bank_before", "tracked_output"]

IOU = "sam2rl_iou"
"""Our one extra key in a tracked output: the chosen candidate's predicted IoU (sam2 keeps none, and a
prompt's memory counts as exact, 1, as `_use_mask_as_output` rates a mask prompt)."""

Output = dict[str, object]
"""One frame's output for one object, as sam2's predictor stores it (`_run_single_frame_inference`)."""


def _memory(output: Output, frame: int, tracker: Tracker) -> Memories:
    """[1] memory of a stored output, at `frame` in the pass's time."""
    device = tracker.device
    high = F.interpolate(output["pred_masks"].to(device).float(), size=(tracker.image_size,) * 2, mode="bilinear",
                         align_corners=False)
    return Memories(
        features=output["maskmem_features"].to(device, tracker.settings.bank_dtype),
        obj_ptr=output["obj_ptr"].to(device).float(), frame=torch.tensor([frame], device=device),
        object_score=output["object_score_logits"].to(device).float()[:, 0],
        iou=output.get(IOU, torch.ones(1)).to(device).float(), area=(high > 0).flatten(1).float().mean(dim=1),
        valid=torch.ones(1, dtype=torch.bool, device=device), batch_size=[1],
    )


def bank_before(tracker: Tracker, outputs: list[dict[str, dict[int, Output]]], first: int,
                flip: Callable[[int], int]) -> MemoryBank:
    """[B] banks for B objects (their sam2 `output_dict`s) as SAM 2 reads them on `first`, the first
    frame a pass tracks, in the pass's time (`flip` maps a video frame to pass time and back).

    Anchors: every conditioning output (prompt), in sam2's order. Recent slots: the tracked outputs of
    the R frames before `first` (a prompt among them holds its place, see
    `TrackerSettings.anchors_in_window`), up to a frame never tracked, past which the bank would number
    memories otherwise than SAM 2's distances. Pointers: the tracked outputs of the P frames before.
    """
    bank = tracker.new_bank(len(outputs))
    empty = bank.recent[0, :1]
    pointers, pointer_frame = bank.pointers.clone(), bank.pointer_frame.clone()
    anchors, recent = [], []
    for row, output in enumerate(outputs):
        cond, tracked = output["cond_frame_outputs"], output["non_cond_frame_outputs"]
        anchors.append([_memory(out, flip(t), tracker) for t, out in cond.items()])
        window = [u for u in range(first - 1, max(first - 1 - bank.num_recent, -1), -1) if flip(u) not in cond]
        held = takewhile(lambda u: flip(u) in tracked, window)  # up to the first frame never tracked
        recent.append([_memory(tracked[flip(u)], u, tracker) for u in held])
        past = [u for u in range(first - 1, max(first - 1 - pointers.shape[1], -1), -1) if flip(u) in tracked]
        for k, u in enumerate(past):
            pointers[row, k], pointer_frame[row, k] = tracked[flip(u)]["obj_ptr"][0], u

    def slots(items: list[Memories], count: int) -> Memories:
        if len(items) > count:
            raise ValueError(f"{len(items)} prompted frames for an object, but banks of {count} anchor slots")
        return torch.cat(items + [empty] * (count - len(items)))

    return MemoryBank(anchors=torch.stack([slots(a, bank.anchors.batch_size[1]) for a in anchors]),
                      recent=torch.stack([slots(r, bank.num_recent) for r in recent]),
                      pointers=pointers, pointer_frame=pointer_frame, batch_size=bank.batch_size)


def tracked_output(step: Step, row: int, maskmem_pos_enc: list[torch.Tensor], storage: torch.device) -> Output:
    """sam2's output of a frame we tracked, for object `row` of the batch (memory features on
    `storage`, as sam2 offloads them)."""
    candidate = step.candidate[row:row + 1]
    return {
        "maskmem_features": candidate.features.to(storage), "maskmem_pos_enc": maskmem_pos_enc,
        "pred_masks": step.prediction.mask_logits(step.choice)[row:row + 1].float().to(storage),
        "obj_ptr": candidate.obj_ptr, "object_score_logits": candidate.object_score[:, None], IOU: candidate.iou,
    }
