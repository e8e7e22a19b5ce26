"""SAMURAI: motion-aware candidate choice and quality-gated memory selection."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.controllers.geometry import box_iou_samurai, mask_to_box
from sam2rl.controllers.kalman import BoxKalmanFilter, xyah_to_xyxy, xyxy_to_xyah
from sam2rl.controllers.quality import gated_action
from sam2rl.tracker import Memories, MemoryBank, Prediction

__all__ = ["SamuraiController"]


@register_controller("samurai")
class SamuraiController(Controller):
    """SAMURAI (Yang et al., "SAMURAI: Adapting Segment Anything Model for Zero-Shot Visual
    Tracking with Motion-Aware Memory", arXiv 2411.11922), re-implemented from
    github.com/yangchris11/samurai: `sam2/sam2/modeling/sam2_base.py` (`_forward_sam_heads`,
    samurai_mode branch: candidate choice and Kalman filter; `_prepare_memory_conditioned_features`:
    memory selection; `track_step`: what is stored per frame) and `sam2/sam2/utils/kalman_filter.py`.

    Choice (`choose`), per track, with a constant-velocity Kalman filter on the box (x, y, a, h)
    of the chosen mask (boxes from `high_res_masks > 0`, inclusive pixel corners, empty -> 0s):
      * no filter yet, or `stable_frames == 0`: SAM 2's choice (highest predicted IoU); the filter
        is (re)initiated from its box; stable_frames += 1.
      * 0 < stable_frames < `stable_frames_threshold` (15): KF predict; SAM 2's choice; if its
        predicted IoU > `stable_ious_threshold` (0.3) KF update and stable_frames += 1, else
        stable_frames = 0.
      * afterwards: KF predict; kf_iou_j = IoU(KF box, box of candidate j) (0 for empty masks);
        choice = argmax `kf_score_weight` * kf_iou_j + (1 - `kf_score_weight`) * iou_j
        (`kf_score_weight` 0.15); if the choice's predicted IoU < 0.3 stable_frames = 0 (no
        update), else KF update with its box. Its kf_iou is the frame's motion score.
    Memory (`act`): a frame passes when predicted IoU > `memory_bank_iou_threshold` (0.5), object
    score logit > `memory_bank_obj_score_threshold` (0.0) and motion score >
    `memory_bank_kf_score_threshold` (0.0) (frames without a motion score, i.e. during the
    warm-up, pass that test). Passing frames are kept FIFO in the recent slots. With
    `keep_last_frame` (default, as the original) the previous frame is also always in memory,
    whether it passed or not (see `sam2rl.controllers.quality`); `keep_last_frame=False` is the
    plain rule "write if it passes, else discard".

    Deviations, and why:
      * The released code stores the motion score under `current_out["kf_ious"]` but reads
        `"kf_score"` when selecting memories, so there the motion test never applies; the paper
        (and this class, `motion_score_gate=True`) applies it. `motion_score_gate=False`
        reproduces the released code.
      * The original walks back only to frame 2 (`range(frame_idx - 1, 1, -1)`), so frame 1 is
        never a memory once it is no longer the previous frame; taken as an off-by-one for "skip
        the prompt frame 0" and not reproduced.
      * SAMURAI's configs also set `min_obj_score_logits: -1` (masks blanked only below -1, not
        0) and `kf_score_weight: 0.25`; the first is the tracker's mask head, outside a
        controller, and this class keeps the sam2_base.py/paper default 0.15.
      * The state is per track (batched tensors); SAMURAI tracks one object per model instance.
    `choose` must run before `act` on every frame (as `track_video` and `Tracker.step` do).
    """

    heuristic = True

    def __init__(self, *, memory_bank_iou_threshold: float = 0.5, memory_bank_obj_score_threshold: float = 0.0,
                 memory_bank_kf_score_threshold: float = 0.0, kf_score_weight: float = 0.15,
                 stable_frames_threshold: int = 15, stable_ious_threshold: float = 0.3,
                 motion_score_gate: bool = True, keep_last_frame: bool = True) -> None:
        self.memory_bank_iou_threshold = float(memory_bank_iou_threshold)
        self.memory_bank_obj_score_threshold = float(memory_bank_obj_score_threshold)
        self.memory_bank_kf_score_threshold = float(memory_bank_kf_score_threshold)
        self.kf_score_weight = float(kf_score_weight)
        self.stable_frames_threshold = int(stable_frames_threshold)
        self.stable_ious_threshold = float(stable_ious_threshold)
        self.motion_score_gate = bool(motion_score_gate)
        self.keep_last_frame = bool(keep_last_frame)
        self.kf = BoxKalmanFilter()
        self._batch: int | None = None

    def reset(self, batch_size: int) -> None:
        dtype = self.kf.dtype
        self._batch = batch_size
        self.kf_mean = torch.zeros(batch_size, 8, dtype=dtype)
        self.kf_covariance = torch.eye(8, dtype=dtype).expand(batch_size, 8, 8).clone()
        self.initialized = torch.zeros(batch_size, dtype=torch.bool)
        self.stable_frames = torch.zeros(batch_size, dtype=torch.long)
        self.kf_score = torch.full((batch_size,), float("nan"))  # motion score of this frame's choice
        self.previous_failed = torch.zeros(batch_size, dtype=torch.bool)

    def _check_batch(self, batch: int) -> None:
        if self._batch is None:
            self.reset(batch)
        elif batch != self._batch:
            raise ValueError(f"samurai: reset for {self._batch} tracks, got a batch of {batch}")

    def choose(self, prediction: Prediction, bank: MemoryBank) -> torch.Tensor:
        ious = prediction.ious.float()
        batch = ious.shape[0]
        self._check_batch(batch)
        device = ious.device
        kf = self.kf
        state = [x.to(device) for x in (self.kf_mean, self.kf_covariance, self.initialized, self.stable_frames)]
        mean, cov, initialized, stable = state
        rows = torch.arange(batch, device=device)

        boxes = mask_to_box(prediction.high_res_masks > 0).to(kf.dtype)  # [B, M, 4]
        init = ~initialized | (stable == 0)
        warm = ~init & (stable < self.stable_frames_threshold)
        motion = ~init & ~warm

        predicted_mean, predicted_cov = kf.predict(mean, cov)
        running = (warm | motion)
        mean = torch.where(running[:, None], predicted_mean, mean)
        cov = torch.where(running[:, None, None], predicted_cov, cov)

        kf_ious = box_iou_samurai(xyah_to_xyxy(mean[:, :4])[:, None], boxes).to(ious.dtype)  # [B, M]
        weighted = self.kf_score_weight * kf_ious + (1 - self.kf_score_weight) * ious
        choice = torch.where(motion, weighted.argmax(dim=1), prediction.sam_choice)
        chosen_iou = ious[rows, choice]
        measurement = xyxy_to_xyah(boxes[rows, choice])

        init_mean, init_cov = kf.initiate(measurement)
        do_update = (warm & (chosen_iou > self.stable_ious_threshold)) | (motion & ~(chosen_iou < self.stable_ious_threshold))
        new_mean = torch.where(init[:, None], init_mean, mean)
        new_cov = torch.where(init[:, None, None], init_cov, cov)
        if bool(do_update.any()):
            idx = do_update.nonzero()[:, 0]
            updated_mean, updated_cov = kf.update(mean[idx], cov[idx], measurement[idx])
            new_mean, new_cov = new_mean.index_copy(0, idx, updated_mean), new_cov.index_copy(0, idx, updated_cov)

        stable = torch.where(init, stable + 1,
                             torch.where(warm, torch.where(chosen_iou > self.stable_ious_threshold, stable + 1, 0),
                                         torch.where(chosen_iou < self.stable_ious_threshold, 0, stable)))
        self.kf_mean, self.kf_covariance = new_mean.cpu(), new_cov.cpu()
        self.initialized = torch.ones(batch, dtype=torch.bool)
        self.stable_frames = stable.cpu()
        self.kf_score = torch.where(motion, kf_ious[rows, choice], torch.full_like(chosen_iou, float("nan"))).cpu()
        return choice

    def passes(self, candidate: Memories) -> torch.Tensor:
        """[B] bool: the frame's memory passes SAMURAI's memory-bank gate."""
        keep = (candidate.iou > self.memory_bank_iou_threshold) & (candidate.object_score > self.memory_bank_obj_score_threshold)
        if self.motion_score_gate and self._batch is not None:
            score = self.kf_score.to(keep.device)
            keep = keep & (score.isnan() | (score > self.memory_bank_kf_score_threshold))
        return keep

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        self._check_batch(candidate.batch_size[0])
        keep = self.passes(candidate)
        action = gated_action(bank, keep, self.previous_failed, self.keep_last_frame)
        self.previous_failed = (~keep).cpu()
        return action
