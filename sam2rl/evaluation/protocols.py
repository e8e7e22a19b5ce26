"""Evaluation protocols: which masks are scored, over which frames, and which figures come out.

* ``sam2rl`` (default; SAM2RL's measure): each object's mask as tracked, scored over its own
  frames by :func:`sam2rl.metrics.score_track`: tracking quality (the headline), J, F and J&F
  means over frames 1..T-1, presence.
* ``davis2017`` (what published SAM 2 numbers use): the objects of a sequence made
  non-overlapping as sam2's ``tools/vos_inference.py`` writes them, then J and F mean, recall
  and decay as the DAVIS 2017 toolkit computes them on those masks (frames 1..N-2 of the video,
  :func:`sam2rl.metrics.davis2017_scores`). Quality and presence stay in the rows, on the same
  masks, so the gain over FIFO is still there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sam2rl.datasets import VideoSequence
from sam2rl.metrics import boundary_f, davis2017_scores, iou, presence_accuracy, score_track, summarise_track
from sam2rl.tracker import TrackRun, to_video_resolution

__all__ = ["NON_OVERLAP", "PROTOCOLS", "non_overlapping", "non_overlapping_runs", "protocol_of", "score_run",
           "summary_keys"]

PROTOCOLS: dict[str, tuple[str, ...]] = {  # the figures each one summarises, in table order
    "sam2rl": ("quality", "j_mean", "f_mean", "jf_mean", "presence"),
    "davis2017": ("quality", "j_mean", "j_recall", "j_decay", "f_mean", "f_recall", "f_decay", "jf_mean",
                  "presence"),
}
NON_OVERLAP = {"sam2rl": False, "davis2017": True}
"""Whether each protocol makes a sequence's masks non-overlapping unless told otherwise."""


def summary_keys(protocol: str) -> tuple[str, ...]:
    """The figures `protocol` reports per track, sequence and overall; a ValueError names the choices."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def protocol_of(results: dict) -> str:
    """The protocol an `evaluate` result was scored under (results from before protocols: sam2rl)."""
    return results.get("protocol", "sam2rl")


def non_overlapping(scores: Tensor, threshold: float = 0.0) -> Tensor:
    """Bool masks ``[N, ..., H, W]`` of N objects (in sam2's object order) sharing no pixel.

    sam2's rule (``SAM2Base._apply_non_overlapping_constraints``, then ``> score_thresh`` as
    ``tools/vos_inference.py``): at each pixel only the object with the highest score keeps it
    (the first on ties, as ``torch.argmax``); the others' scores are clamped to at most -10.
    ``scores`` are logits, or bool masks read as 1 / 0: a pixel several objects claim then goes
    to the first of them, which is sam2's answer when their logits there are equal.
    """
    s = scores.to(torch.float32) if scores.dtype == torch.bool else scores
    order = torch.arange(s.shape[0], device=s.device).view(-1, *([1] * (s.ndim - 1)))
    own = s.argmax(dim=0, keepdim=True) == order
    return torch.where(own, s, s.clamp(max=-10.0)) > threshold


def non_overlapping_runs(runs: Sequence[TrackRun]) -> list[TrackRun]:
    """One sequence's runs with :func:`non_overlapping` applied frame by frame, objects in id order
    (the order ``vos_inference.py`` adds them in); runs keep their order, masks are copied when changed."""
    ordered = sorted(runs, key=lambda run: run.track.object_id)
    masks = {id(run): run.masks for run in runs}
    for t in range(max((run.frames.stop for run in runs), default=0)):
        live = [run for run in ordered if t in run.frames]
        if len(live) < 2:
            continue
        frame = torch.stack([masks[id(run)][t - run.track.prompt_frame] for run in live])
        if all(run.logits is not None for run in live):  # sam2's rule on the logits themselves
            low = torch.stack([run.logits[t - run.track.prompt_frame] for run in live]).float()
            kept = non_overlapping(to_video_resolution(low, *frame.shape[-2:])[:, 0])
        else:  # masks alone: a pixel several objects claim goes to the lowest id
            kept = non_overlapping(frame)
        for run, old, new in zip(live, frame, kept):
            if not torch.equal(old, new):
                if masks[id(run)] is run.masks:
                    masks[id(run)] = run.masks.clone()
                masks[id(run)][t - run.track.prompt_frame] = new
    return [dataclasses.replace(run, masks=masks[id(run)]) for run in runs]


def score_run(video: VideoSequence, run: TrackRun, protocol: str, skip_first: int = 7) -> dict[str, Any]:
    """One run's figures under `protocol` (`summary_keys`) with its per-frame curves, for a results row."""
    summary_keys(protocol)  # a known one
    gt, annotated = video.object_masks(run.track.object_id, run.frames)
    if protocol == "sam2rl":
        return score_track(run.masks, gt, skip_first=skip_first, annotated=annotated).to_dict()
    # float64 as the toolkit's numpy; rounded to float32, J is bit for bit what score_track computes
    j = iou(run.masks, gt, dtype=torch.float64)
    f = boundary_f(run.masks, gt, dtype=torch.float64)
    own = summarise_track(j.float(), f.float(), presence_accuracy(run.masks, gt), skip_first, annotated)
    if run.track.prompt_frame > 0:  # the written masks hold no object before its prompt; the toolkit scores them
        gt_before, annotated_before = video.object_masks(run.track.object_id, range(run.track.prompt_frame))
        empty = torch.zeros_like(gt_before)
        j = torch.cat([iou(empty, gt_before, dtype=torch.float64), j])
        f = torch.cat([boundary_f(empty, gt_before, dtype=torch.float64), f])
        annotated = torch.cat([annotated_before, annotated])
    if j.shape[0] != video.num_frames:
        raise ValueError(f"{video.name}: object {run.track.object_id}'s run covers {run.frames}, "
                         f"not up to the video's last frame {video.num_frames - 1}")
    return {**own.to_dict(), **davis2017_scores(j, f, annotated).to_dict()}  # J, F, J&F: the toolkit's
