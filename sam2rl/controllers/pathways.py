"""SAM2Long's memory-tree search: P pathways per track, each with its own bank (`sam2long:P`).

Not a per-step rule: the search keeps P banks per track and picks the best pathway at the end of
the video, so it runs as a whole-video controller (`PathwaySearch.track_video`). Plain `sam2long`
is the one-pathway rule (`sam2rl.controllers.sam2long`). Source: as `Sam2LongController`.
"""

from __future__ import annotations

from functools import partial

import torch

from sam2rl.controllers.base import Controller, ControllerError
from sam2rl.controllers.registry import register_prefix
from sam2rl.controllers.sam2long import Sam2LongController
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.tracker import (
    Features, Memories, MemoryBank, Prediction, RunRecorder, Step, Tracker, TrackRun, resize_prompt_mask, rollout,
    video_features,
)

__all__ = ["PathwaySearch", "select_pathways", "track_video_sam2long"]


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
                         features: Features | None = None) -> list[TrackRun]:
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
    """
    if num_pathways < 1:
        raise ValueError(f"num_pathways must be >= 1, got {num_pathways}")
    rule = Sam2LongController(iou_threshold=iou_threshold)
    tracks = video.tracks() if tracks is None else tracks
    features = video_features(tracker, video) if features is None else features
    device = tracker.device
    pathways = num_pathways
    runs: list[TrackRun] = []
    for group in group_by_prompt_frame(tracks):
        recorder = RunRecorder(video)
        first, batch = group[0].prompt_frame, len(group)
        start = torch.full((batch,), first, dtype=torch.long, device=device)
        total = torch.full((batch,), video.num_frames, device=device)
        prompts = video.prompt_masks(group).to(device)
        low, bank = tracker.start(features.gather(start), resize_prompt_mask(prompts, tracker.image_size), start)
        recorder.prompt(low, bank)
        # rows: track n, slot k at row n * P + k (the first tracked frame has one row per track)
        parents: list[torch.Tensor] = []  # per frame after the first: the parent slot of each slot
        score = torch.zeros(batch, pathways, dtype=torch.float64)
        slots = torch.arange(batch)[:, None] * pathways
        total_p = torch.full((batch * pathways,), video.num_frames, device=device)

        def pathway_step(frame: torch.Tensor, bank: MemoryBank) -> Step:
            if int(frame[0]) == first + 1:  # first tracked frame: one pathway, SAM 2's choice
                return tracker.step(features.gather(frame), bank, frame, total, act=rule.act)
            if bank.batch_size[0] == batch:  # then P copies of it
                bank = bank[torch.arange(batch, device=device).repeat_interleave(pathways)]
            frames = frame.repeat_interleave(pathways)
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
            parents.append(parent_slot)
            parent_rows = (slots + parent_slot).flatten().to(device)
            chosen = choice.flatten().to(device)
            picked_prediction = prediction[parent_rows]
            candidate = tracker.remember(feats, picked_prediction, chosen, frames)
            parent_bank = bank[parent_rows]
            action = rule.act(picked_prediction, candidate, parent_bank)
            new_bank = parent_bank.apply(candidate, action).push_pointer(candidate.obj_ptr, candidate.frame)
            return Step(picked_prediction, chosen, candidate, action, new_bank)

        tracked = 0
        for frame in rollout(tracker, features, bank, start, total, step=pathway_step):
            recorder.add(frame.step)
            tracked += 1
        best = torch.tensor([_best_rows(n, tracked, parents, pathways) for n in range(batch)], dtype=torch.long)
        runs += recorder.runs(group, rows=[torch.arange(batch), *best.reshape(batch, tracked).T])
    return runs


def _best_rows(track: int, num_tracked: int, parents: list[torch.Tensor], pathways: int) -> list[int]:
    """Record row of each of `num_tracked` frames along the final best pathway (slot 0 at the last frame)."""
    rows: list[int] = []
    slot = 0
    for index in range(num_tracked - 1, 0, -1):  # tracked frame `index` was chosen with parents[index - 1]
        rows.append(track * pathways + slot)
        slot = int(parents[index - 1][track, slot])
    if num_tracked:
        rows.append(track)  # first tracked frame: one row per track
    return rows[::-1]


class PathwaySearch(Controller):
    """`sam2long:P`: SAM2Long's memory-tree search with P pathways (`track_video_sam2long`).

    Not a per-step rule: it only runs through `track_video`, which calls `track_video` here.
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
                    features: Features | None = None) -> list[TrackRun]:
        return track_video_sam2long(tracker, video, num_pathways=self.num_pathways, iou_threshold=self.iou_threshold,
                                    uncertainty=self.uncertainty, tracks=tracks, features=features)


def _pathway_search(count: str) -> partial[PathwaySearch]:
    if not count.isdigit() or int(count) < 1:
        raise ControllerError(f"controller 'sam2long:{count}': P in sam2long:P must be a positive integer "
                              "(e.g. sam2long:3 for SAM2Long's three-pathway search)")
    return partial(PathwaySearch, int(count))


register_prefix("sam2long:", _pathway_search)
