"""SAM2Long with one pathway: quality-filtered memory, a per-frame rule (the tree search is `pathways`)."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.controllers.quality import gated_action
from sam2rl.tracker import Memories, MemoryBank, Prediction

__all__ = ["Sam2LongController"]


@register_controller("sam2long")
class Sam2LongController(Controller):
    """SAM2Long with one pathway (P = 1): SAM 2's candidate and SAM2Long's memory selection.

    A frame's memory passes when its predicted IoU > `iou_threshold` (0.1, `iou_thre`) and its
    object score logit > 0; the non-conditioning memory is the newest passing frames plus,
    always, the previous frame (`keep_last_frame=True`, as the original; see
    `sam2rl.controllers.quality`); `keep_last_frame=False` gives the plain "write if it passes,
    else discard". With P = 1 SAM2Long's branch choice is SAM 2's (highest predicted IoU, both
    in the confident and the uncertain case), so `choose` is inherited.
    Whether the newest memory failed the gate is read from the bank (`iou`, `object_score`), so
    the rule needs no state and follows banks that are copied between pathways.

    Deviations: SAM2Long also scales the memory-attention keys of each memory frame and object
    pointer by the rank of its object score (0.95..1.05, `memory_attention.py`) and takes object
    pointers only from the selected frames; neither is a bank decision (pointers follow the
    tracker's `pointer_source`). The multi-pathway search is `sam2rl.controllers.pathways`.

    Source: Ding et al., "SAM2Long: Enhancing SAM 2 for Long Video Segmentation with a
    Training-Free Memory Tree" (arXiv 2410.16268), github.com/Mark12Ding/SAM2Long:
    `sam2/sam2_video_predictor.py` (`_run_single_frame_inference`: pathways, cumulative scores,
    uncertainty handling), `sam2/modeling/sam2_base.py` (`_prepare_memory_conditioned_features`:
    memory selection with `iou_thre`; `track_step`), `tools/video_inference.py` (published
    defaults `num_pathway=3`, `iou_thre=0.1`, `uncertainty=2`).
    """

    heuristic = True

    def __init__(self, *, iou_threshold: float = 0.1, keep_last_frame: bool = True) -> None:
        self.iou_threshold = float(iou_threshold)
        self.keep_last_frame = bool(keep_last_frame)

    def passes(self, iou: torch.Tensor, object_score: torch.Tensor) -> torch.Tensor:
        """[B] whether a frame's memory is reliable enough to keep: IoU above threshold, object present."""
        return (iou > self.iou_threshold) & (object_score > 0)

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        keep = self.passes(candidate.iou, candidate.object_score)
        newest = bank.newest_slot()
        rows = torch.arange(newest.shape[0], device=newest.device)
        previous_failed = ~self.passes(bank.recent.iou[rows, newest], bank.recent.object_score[rows, newest])
        return gated_action(bank, keep, previous_failed, self.keep_last_frame)
