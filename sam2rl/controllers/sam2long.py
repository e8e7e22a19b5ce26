"""SAM2Long: quality-filtered memory (one pathway) and the multi-pathway memory-tree search."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from sam2rl.controllers.base import Controller, register_controller
from sam2rl.controllers.quality import gated_action
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.tracker import (
    FeatureCache, Memories, MemoryBank, Prediction, Tracker, resize_prompt_mask, to_video_resolution,
)

if TYPE_CHECKING:
    from sam2rl.evaluation.tracking import TrackRun

__all__ = ["Sam2LongController", "select_pathways", "track_video_sam2long"]


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
    tracker's `pointer_source`). The multi-pathway search is `track_video_sam2long`.

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


def select_pathways(scores: list[list[float]], ious: list[list[float]], object_scores: list[float],
                    num_pathways: int, uncertainty: float) -> list[tuple[int, int, float]]:
    """SAM2Long's branch selection for one track: `num_pathways` (pathway, candidate, score).

    scores[p][j]: cumulative score of candidate j of pathway p (parent score + log(iou + 1e-5));
    ious[p][j]: its predicted IoU; object_scores[p]: the pathway's object-score logit.
    Confident (max |logit| > `uncertainty`): the top scores. Uncertain: the best scores whose
    IoU rounded to 2 decimals (negated when the object is absent) differs, then, if too few,
    each missing pathway's best branch. Ties keep pathway-major order (Python's stable sort).
    Slot 0 is always the best cumulative score.
    """
    entries = []
    for p, (row_scores, row_ious) in enumerate(zip(scores, ious)):
        for j, (score, iou) in enumerate(zip(row_scores, row_ious)):
            entries.append((p, j, score, iou if object_scores[p] > 0 else -iou))
    ranked = sorted(entries, key=lambda e: e[2], reverse=True)
    if max(abs(s) for s in object_scores) > uncertainty:
        top = ranked[:num_pathways]
    else:
        top, seen = [], set()
        for entry in ranked:
            value = round(entry[3], 2)
            if value not in seen:
                top.append(entry)
                seen.add(value)
            if len(top) == num_pathways:
                break
        if len(top) < num_pathways:  # most masks overlap: prefer branches of other pathways
            used = {entry[0] for entry in top}
            for p in range(len(scores)):
                if p not in used:
                    top.append(next(e for e in ranked if e[0] == p))
                if len(top) == num_pathways:
                    break
    return [(p, j, score) for p, j, score, _ in top]


@torch.inference_mode()
def track_video_sam2long(tracker: Tracker, video: VideoSequence, num_pathways: int = 3, iou_threshold: float = 0.1,
                         uncertainty: float = 2.0, tracks: list[Track] | None = None,
                         features: FeatureCache | None = None) -> list[TrackRun]:
    """SAM2Long's memory-tree search over the tracks of `video`; the same `TrackRun`s as `track_video`.

    Each track keeps `num_pathways` (P) pathways, each with its own memory bank (P rows per track
    in one batch, banks copied with tensorclass indexing). Per frame every pathway predicts its M
    candidates; of the P*M branches, P are kept (`select_pathways`) with cumulative score
    parent + log(predicted IoU + 1e-5); a kept branch's memory is encoded from its candidate and
    goes into a copy of its parent's bank by the P = 1 rule (`Sam2LongController`,
    `iou_threshold`). As in SAM2Long the first tracked frame is a single pathway (SAM 2's choice)
    with score 0 for all P, and the output is the history of the pathway with the best cumulative
    score at the end of the video (slot 0), backtracked through its parents; `actions`,
    `predicted_iou`, `object_score` and `bank_frames` are that pathway's.
    Thresholds: `iou_threshold` 0.1 (`iou_thre`), `uncertainty` 2 (object-score logit magnitude
    below which the selection prefers diverse branches), `num_pathways` 3 (`num_pathway`).

    Source: as `Sam2LongController` above.
    """
    from sam2rl.evaluation.tracking import TrackRun

    if num_pathways < 1:
        raise ValueError(f"num_pathways must be >= 1, got {num_pathways}")
    rule = Sam2LongController(iou_threshold=iou_threshold)
    tracks = video.tracks() if tracks is None else tracks
    features = tracker.video_features(video) if features is None else features
    device = tracker.device
    pathways = num_pathways
    runs: list[TrackRun] = []
    for group in group_by_prompt_frame(tracks):
        start = group[0].prompt_frame
        began = time.perf_counter()
        batch = len(group)
        frame = torch.full((batch,), start, dtype=torch.long, device=device)
        total = torch.full((batch,), video.num_frames, device=device)
        prompts = video.prompt_masks(group).to(device)
        low, bank = tracker.start(features.gather(frame), resize_prompt_mask(prompts, tracker.image_size), frame)
        prompt = {"logits": low.cpu(), "score": bank.anchors.object_score[:, 0].cpu(),
                  "iou": bank.anchors.iou[:, 0].cpu(), "bank": bank.slot_frames().cpu()}
        # per tracked frame, per row (track n, slot k at row n * P + k; the first tracked frame
        # has one row per track): what the branch produced, and the parent slot of each slot
        history: list[dict[str, torch.Tensor]] = []
        parents: list[torch.Tensor] = []
        score = torch.zeros(batch, pathways, dtype=torch.float64)
        if start + 1 < video.num_frames:  # first tracked frame: one pathway, SAM 2's choice
            step = tracker.step(features.gather(frame + 1), bank, frame + 1, total, act=rule.act)
            history.append(_record(step.prediction, step.choice, step.candidate, step.action, step.bank))
            bank = step.bank[torch.arange(batch, device=device).repeat_interleave(pathways)]
        total_p = torch.full((batch * pathways,), video.num_frames, device=device)
        slots = torch.arange(batch)[:, None] * pathways
        for t in range(start + 2, video.num_frames):
            frames = torch.full((batch * pathways,), t, dtype=torch.long, device=device)
            feats = features.gather(frames)
            prediction = tracker.predict(feats, bank, frames, total_p)
            num_candidates = prediction.ious.shape[1]
            ious = prediction.ious.view(batch, pathways, num_candidates).cpu()
            objects = prediction.object_score.view(batch, pathways).cpu()
            branch = score[:, :, None] + torch.log(ious.double() + 1e-5)
            parent_slot = torch.empty(batch, pathways, dtype=torch.long)
            choice = torch.empty(batch, pathways, dtype=torch.long)
            for n in range(batch):
                picked = select_pathways(branch[n].tolist(), ious[n].tolist(), objects[n].tolist(), pathways, uncertainty)
                for k, (p, j, s) in enumerate(picked):
                    parent_slot[n, k], choice[n, k], score[n, k] = p, j, s
            parent_rows = (slots + parent_slot).flatten().to(device)
            chosen = choice.flatten().to(device)
            picked_prediction = prediction[parent_rows]
            candidate = tracker.remember(feats, picked_prediction, chosen, frames)
            parent_bank = bank[parent_rows]
            action = rule.act(picked_prediction, candidate, parent_bank)
            bank = parent_bank.apply(candidate, action).push_pointer(candidate.obj_ptr, candidate.frame)
            history.append(_record(picked_prediction, chosen, candidate, action, bank))
            parents.append(parent_slot)
        seconds = (time.perf_counter() - began) / batch
        for n, track in enumerate(group):
            rows = _best_rows(n, history, parents, pathways)
            masks = [to_video_resolution(prompt["logits"][n:n + 1], video.height, video.width)[0, 0] > 0]
            scores, ious_out, banks = [prompt["score"][n]], [prompt["iou"][n]], [prompt["bank"][n]]
            actions = []
            for record, row in zip(history, rows):
                masks.append(to_video_resolution(record["logits"][row:row + 1], video.height, video.width)[0, 0] > 0)
                scores.append(record["score"][row])
                ious_out.append(record["iou"][row])
                banks.append(record["bank"][row])
                actions.append(record["action"][row])
            acts = torch.stack(actions) if actions else torch.zeros(0, dtype=torch.long)
            runs.append(TrackRun(track, torch.stack(masks), torch.stack(scores), torch.stack(ious_out),
                                 torch.stack(banks), acts, seconds))
    return runs


def _record(prediction: Prediction, choice: torch.Tensor, candidate: Memories, action: torch.Tensor,
            bank: MemoryBank) -> dict[str, torch.Tensor]:
    return {"logits": prediction.mask_logits(choice).float().cpu(), "score": prediction.object_score.cpu(),
            "iou": candidate.iou.cpu(), "bank": bank.slot_frames().cpu(), "action": action.cpu()}


def _best_rows(track: int, history: list[dict[str, torch.Tensor]], parents: list[torch.Tensor],
               pathways: int) -> list[int]:
    """Record row of each tracked frame along the final best pathway (slot 0 at the last frame)."""
    rows: list[int] = []
    slot = 0
    for index in range(len(history) - 1, 0, -1):  # history[index] was chosen with parents[index - 1]
        rows.append(track * pathways + slot)
        slot = int(parents[index - 1][track, slot])
    if history:
        rows.append(track)  # first tracked frame: one row per track
    return rows[::-1]
