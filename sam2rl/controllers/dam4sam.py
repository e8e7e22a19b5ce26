"""DAM4SAM: recent-appearance memory (RAM) and distractor-resolving memory (DRM)."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.controllers.geometry import box_iou_inclusive, largest_component, mask_to_box
from sam2rl.tracker import DISCARD, Memories, MemoryBank, Prediction

__all__ = ["Dam4SamController"]


def _median(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Row-wise median of the valid entries, averaging the middle two (numpy's median)."""
    count = valid.sum(dim=1)
    ordered = torch.where(valid, values, torch.full_like(values, float("inf"))).sort(dim=1).values
    low = ((count - 1).clamp(min=0) // 2)[:, None]
    high = (count // 2).clamp(max=values.shape[1] - 1)[:, None]
    median = (ordered.gather(1, low) + ordered.gather(1, high))[:, 0] / 2
    return torch.where(count > 0, median, torch.full_like(median, float("nan")))


@register_controller("dam4sam")
class Dam4SamController(Controller):
    """DAM4SAM (Videnovic, Lukezic, Kristan, "A Distractor-Aware Memory for Visual Object Tracking
    with SAM2", CVPR 2025, arXiv 2411.17576), re-implemented from github.com/jovanavidenovic/DAM4SAM
    `dam4sam_tracker.py` (`DAM4SAMTracker.track`: DRM rule) and the authors' batched version
    github.com/alanlukezic/d4sm `tracking_wrapper_mot.py` (`DAM4SAMMOT.track`: RAM and DRM
    bookkeeping: `update_delta = 5`, `max_ram = 3`, `max_drm = 3`, `use_last = True`).

    RAM (recent slots, FIFO, temporal encoding): updated only when the predicted mask is not
    empty; the newest frame is always in it, and every `update_delta`-th frame (5, counted from
    the prompt frame) stays: if the newest RAM frame is such a frame the new frame is appended
    (evicting the oldest when `ram_size` (3) slots are full), otherwise it replaces the newest.
    DRM (anchors: t_pos 0, the temporal encoding SAM 2 gives conditioning frames, the prompt is the first): the frame becomes an
    anchor (action R + 1) when SAM 2's chosen candidate has predicted IoU > `drm_iou_threshold`
    (0.8), its area is within [`area_ratio_low`, `area_ratio_high`] ([0.8, 1.2]) of the median of
    the last `area_median_count` (10) non-empty areas among the last `area_history` (300)
    tracked frames (the current one included; not on the first tracked frame), more than
    `drm_min_gap` (5) frames after the last anchor added, and an alternative candidate shows a
    distractor: alternative minus chosen mask, largest 8-connected component, united with the
    chosen mask; if the minimum box IoU between the chosen mask's box and these boxes is
    <= `distractor_box_iou` (0.7). At most 1 + `drm_size` (3) anchors, the prompt included.

    The bank must have the anchor slots: DAM4SAM needs `TrackerSettings(max_anchors=4)`
    (`Dam4SamController.max_anchors`); with fewer the rule adds what fits and no more. It never
    adds an anchor that `bank.action_mask(allow_anchor=True)` forbids.

    Deviations, and why:
      * When the DRM is full the original evicts its oldest non-prompt frame; the bank has no
        "replace anchor" operation, so this rule stops adding anchors instead.
      * The original puts a DRM frame in the DRM *and* (as the newest frame) in the RAM; one
        action per frame cannot do both, so the frame goes to the DRM only and the RAM keeps
        its previous newest frame until the next frame.
      * Masks, areas and boxes are measured at model resolution (`high_res_masks > 0`), not at
        video resolution; areas enter only as ratios.
      * RAM is `ram_size` slots as in the paper; the batched d4sm version lets the RAM borrow
        DRM slots that are still free (memory total 7).
      * The original tracker only records object pointers of frames with a visible target; the
        tracker's pointer history is not a controller decision.
    """

    heuristic = True

    max_anchors = 4
    """Anchor slots DAM4SAM needs: the prompt + 3 DRM frames (`TrackerSettings(max_anchors=...)`)."""

    def __init__(self, *, ram_size: int = 3, update_delta: int = 5, drm_size: int = 3,
                 drm_iou_threshold: float = 0.8, area_ratio_low: float = 0.8, area_ratio_high: float = 1.2,
                 area_history: int = 300, area_median_count: int = 10, drm_min_gap: int = 5,
                 distractor_box_iou: float = 0.7) -> None:
        self.ram_size = int(ram_size)
        self.update_delta = int(update_delta)
        self.drm_size = int(drm_size)
        self.drm_iou_threshold = float(drm_iou_threshold)
        self.area_ratio_low = float(area_ratio_low)
        self.area_ratio_high = float(area_ratio_high)
        self.area_history = int(area_history)
        self.area_median_count = int(area_median_count)
        self.drm_min_gap = int(drm_min_gap)
        self.distractor_box_iou = float(distractor_box_iou)
        self._batch: int | None = None

    def reset(self, batch_size: int) -> None:
        self._batch = batch_size
        self.areas = torch.zeros(batch_size, self.area_history)  # newest last; 0 = empty mask
        self.tracked = torch.zeros(batch_size, dtype=torch.long)  # frames seen since the prompt
        self.last_added = torch.full((batch_size,), -1, dtype=torch.long)  # frame of the last DRM add

    def _check_batch(self, batch: int) -> None:
        if self._batch is None:
            self.reset(batch)
        elif batch != self._batch:
            raise ValueError(f"dam4sam: reset for {self._batch} tracks, got a batch of {batch}")

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        batch = candidate.batch_size[0]
        self._check_batch(batch)
        device = candidate.frame.device
        rows = torch.arange(batch, device=device)
        masks = prediction.high_res_masks > 0  # [B, M, S, S]
        chosen_index = prediction.sam_choice  # DAM4SAM outputs SAM 2's choice
        chosen = masks[rows, chosen_index]
        pixels = chosen.flatten(1).sum(dim=1)
        visible = pixels > 0
        frame = candidate.frame

        # area ratio to the median of the last non-empty areas (current frame included)
        self.areas = torch.cat([self.areas[:, 1:], pixels.float().cpu()[:, None]], dim=1)
        self.tracked = self.tracked + 1
        nonzero = self.areas > 0
        newest_rank = nonzero.flip(1).long().cumsum(1).flip(1)  # 1 for the newest non-empty area
        median = _median(self.areas, nonzero & (newest_rank <= self.area_median_count)).to(device)
        ratio = torch.where((self.tracked.to(device) > 1) & visible, pixels.float() / median,
                            torch.full_like(median, -1.0))

        iou = prediction.ious.float().max(dim=1).values
        last = self.last_added.to(device)
        gate = ((iou > self.drm_iou_threshold) & (ratio >= self.area_ratio_low) & (ratio <= self.area_ratio_high)
                & visible & ((frame - last > self.drm_min_gap) | (last == -1)))
        room = bank.action_mask(allow_anchor=True)[:, bank.anchor_action]
        room = room & (bank.anchors.valid.sum(dim=1) < 1 + self.drm_size)
        add = gate & room
        if bool(add.any()):
            idx = add.nonzero()[:, 0]
            add = add.index_put((idx,), self._distractor(masks[idx], chosen_index[idx]))
        self.last_added = torch.where(add, frame, last).cpu()

        ram = self._ram_action(bank)
        discard = torch.full_like(ram, DISCARD)
        anchor = torch.full_like(ram, bank.anchor_action)
        return torch.where(add, anchor, torch.where(visible, ram, discard))

    def _distractor(self, masks: torch.Tensor, chosen_index: torch.Tensor) -> torch.Tensor:
        """[n, M, S, S] candidate masks, [n] chosen index -> [n] bool: an alternative shows a distractor."""
        count, num_candidates = masks.shape[:2]
        if num_candidates < 2:
            return torch.zeros(count, dtype=torch.bool, device=masks.device)
        rows = torch.arange(count, device=masks.device)
        chosen = masks[rows, chosen_index]
        others = torch.arange(num_candidates, device=masks.device).expand(count, -1)
        others = others[others != chosen_index[:, None]].view(count, num_candidates - 1)
        alternatives = masks[rows[:, None], others] & ~chosen[:, None]  # [n, M-1, S, S]
        present = alternatives.flatten(2).any(dim=2)
        alternatives = largest_component(alternatives.flatten(0, 1)).view_as(alternatives) | chosen[:, None]
        box_iou = box_iou_inclusive(mask_to_box(chosen)[:, None], mask_to_box(alternatives))  # [n, M-1]
        box_iou = torch.where(present, box_iou, torch.full_like(box_iou, float("inf")))
        return present.any(dim=1) & (box_iou.min(dim=1).values <= self.distractor_box_iou)

    def _ram_action(self, bank: MemoryBank) -> torch.Tensor:
        """[B] write action of the RAM rule (`use_last`), for frames with a visible target."""
        recent = bank.recent
        valid = recent.valid
        newest = bank.newest_slot()
        oldest = torch.where(valid, recent.frame, torch.full_like(recent.frame, 1 << 40)).argmin(dim=1)
        first_free = (~valid).long().argmax(dim=1)
        count = valid.sum(dim=1)
        capacity = min(self.ram_size, bank.num_recent)
        rows = torch.arange(valid.shape[0], device=valid.device)
        offset = recent.frame[rows, newest] - bank.anchors.frame[:, 0]  # from the prompt frame
        stride_frame = offset % self.update_delta == 0
        append = torch.where(count < capacity, first_free, oldest)
        slot = torch.where(count == 0, first_free, torch.where(stride_frame, append, newest))
        return slot + 1
