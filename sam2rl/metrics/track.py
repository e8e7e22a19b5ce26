"""Per-track statistics: one object's per-frame J and F reduced to the figures a report shows.

Two families, on the same per-frame curves of :mod:`sam2rl.metrics.frame`:

* :class:`TrackScores` (:func:`score_track`): SAM2RL's tracking quality (mean IoU after the
  first frames, which every memory policy fills alike), DAVIS-style J, F, J&F means over the
  tracked frames, presence accuracy.
* :class:`Davis2017Scores` (:func:`davis2017_scores`): what the DAVIS 2017 toolkit
  (``davis2017-evaluation``, semi-supervised task) reports per object, so that numbers can be
  set beside published ones: J and F mean, recall and decay (``utils.db_statistics``) over
  the video's frames without its first and last (``evaluation.py``: ``[:, 1:-1]``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sam2rl.metrics.frame import MaskLike, _mask_pair, boundary_f, iou, presence_accuracy

__all__ = [
    "Davis2017Scores",
    "TrackScores",
    "davis2017_scores",
    "db_statistics",
    "score_track",
    "score_tracks",
    "summarise_track",
]


@dataclass
class TrackScores:
    """Scores of one tracked object over one video.

    Per-frame curves (``iou``, ``f``, ``jf``: float tensors ``[T]`` on CPU) are kept for
    plots; the summaries are plain floats. A summary over an empty frame set is NaN.
    """

    iou: Tensor
    f: Tensor
    jf: Tensor
    quality: float
    j_mean: float
    f_mean: float
    jf_mean: float
    presence: float
    num_frames: int

    def to_dict(self) -> dict[str, Any]:
        """Plain floats / lists / ints, ready for ``json.dump`` (NaN stays float NaN)."""
        return {
            "iou": [float(v) for v in self.iou.tolist()],
            "f": [float(v) for v in self.f.tolist()],
            "jf": [float(v) for v in self.jf.tolist()],
            "quality": float(self.quality),
            "j_mean": float(self.j_mean),
            "f_mean": float(self.f_mean),
            "jf_mean": float(self.jf_mean),
            "presence": float(self.presence),
            "num_frames": int(self.num_frames),
        }


def _masked_mean(values: Tensor, keep: Tensor) -> float:
    """Mean of ``values[keep]``; NaN when nothing is kept (rather than a misleading 0)."""
    if not bool(keep.any()):
        return float("nan")
    return float(values[keep].double().mean())


def _frame_flags(annotated: MaskLike | None, T: int) -> Tensor:
    """``annotated`` as a bool CPU tensor ``[T]`` (None: every frame has ground truth)."""
    if annotated is None:
        return torch.ones(T, dtype=torch.bool)
    if isinstance(annotated, np.ndarray):
        annotated = torch.from_numpy(np.ascontiguousarray(annotated))
    ann = torch.as_tensor(annotated).cpu()
    ann = (ann if ann.dtype == torch.bool else ann != 0).reshape(-1)
    if ann.shape[0] != T:
        raise ValueError(f"annotated has {ann.shape[0]} entries for a {T}-frame track")
    return ann


def summarise_track(
    j: Tensor,
    f: Tensor,
    presence: Tensor,
    skip_first: int = 7,
    annotated: MaskLike | None = None,
) -> TrackScores:
    """:class:`TrackScores` from per-frame ``[T]`` metrics already computed (CPU tensors), as
    :func:`score_track` defines them; lets a caller reuse curves it needs for other figures."""
    T = int(j.shape[0])
    if skip_first < 0:
        raise ValueError(f"skip_first must be >= 0, got {skip_first}")
    ann = _frame_flags(annotated, T)
    idx = torch.arange(T)
    jf = (j + f) / 2
    quality_keep = ann & ((idx >= skip_first) if T > skip_first else torch.ones_like(ann))
    davis_keep = ann & (idx >= 1)
    return TrackScores(
        iou=j,
        f=f,
        jf=jf,
        quality=_masked_mean(j, quality_keep),
        j_mean=_masked_mean(j, davis_keep),
        f_mean=_masked_mean(f, davis_keep),
        jf_mean=_masked_mean(jf, davis_keep),
        presence=_masked_mean(presence, ann),
        num_frames=T,
    )


def score_track(
    pred: MaskLike,
    gt: MaskLike,
    skip_first: int = 7,
    annotated: MaskLike | None = None,
    bound_th: float = 0.008,
) -> TrackScores:
    """Score one object's track: ``pred``, ``gt`` are ``[T, H, W]`` masks (frame 0 = prompt).

    * ``quality`` (SAM2RL tracking quality): mean IoU over frames ``skip_first..T-1``; the
      first frames are skipped because the memory bank is still filling there and all
      policies behave alike. If the track has ``T <= skip_first`` frames, all frames are
      used instead (so short tracks still get a score).
    * ``j_mean``, ``f_mean``, ``jf_mean`` (DAVIS style): means over frames ``1..T-1``; frame
      0 is the prompt frame, whose mask is given, so it says nothing about tracking. (The
      DAVIS-2017 toolkit additionally drops the last frame: see :func:`davis2017_scores`.)
    * ``presence``: mean :func:`presence_accuracy` over all frames.

    ``annotated`` (bool ``[T]``) restricts every summary to frames with ground truth
    (e.g. sparsely annotated SA-V / YouTube-VOS validation); per-frame curves are kept for
    all frames. Summaries over an empty frame set are NaN.
    """
    p, g = _mask_pair(pred, gt)
    if p.ndim != 3:
        raise ValueError(f"score_track expects [T, H, W] masks, got {tuple(p.shape)}")
    return score_tracks(p[None], g[None], skip_first, None if annotated is None else [annotated],
                        bound_th)[0]


def score_tracks(
    pred: MaskLike,
    gt: MaskLike,
    skip_first: int = 7,
    annotated: MaskLike | list[MaskLike] | None = None,
    bound_th: float = 0.008,
) -> list[TrackScores]:
    """:func:`score_track` for a batch of equal-length tracks ``[B, T, H, W]``.

    The per-frame metrics are computed in one batched call (on the masks' device);
    ``annotated`` is ``[B, T]`` (or a list of ``[T]``) or None.
    """
    p, g = _mask_pair(pred, gt)
    if p.ndim != 4:
        raise ValueError(f"score_tracks expects [B, T, H, W] masks, got {tuple(p.shape)}")
    B = p.shape[0]
    j = iou(p, g).cpu()
    f = boundary_f(p, g, bound_th).cpu()
    pres = presence_accuracy(p, g).cpu()
    if annotated is not None and len(annotated) != B:
        raise ValueError(f"annotated has {len(annotated)} rows for {B} tracks")
    return [
        summarise_track(j[b], f[b], pres[b], skip_first, None if annotated is None else annotated[b])
        for b in range(B)
    ]


# --------------------------------------------------------------------------- DAVIS 2017 toolkit


def db_statistics(values: Tensor | np.ndarray) -> tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame J or F: the toolkit's ``db_statistics``.

    Recall is the fraction of frames scoring over 0.5; decay is the mean over the first of
    four bins minus the mean over the last, the bins bounded by ``round(linspace(1, N, 5)) - 1``
    and each taking its right bound too (so they are not ``np.array_split``'s: neighbours share
    a frame). NaN frames stay out of the means but count as misses in the recall, as there.
    One difference: the toolkit keeps the bounds as uint8, which wraps from 256 frames on (257
    with NumPy < 2; its decay is then NaN or wrong); here they are exact. No frame: three NaNs.
    """
    v = values.double().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
    v = v.reshape(-1)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    bounds = (np.round(np.linspace(1, v.size, 5) + 1e-10) - 1).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # an all-NaN bin gives NaN
        mean = np.nanmean(v)
        recall = np.nanmean(v > 0.5)
        decay = np.nanmean(v[bounds[0] : bounds[1] + 1]) - np.nanmean(v[bounds[3] : bounds[4] + 1])
    return float(mean), float(recall), float(decay)


@dataclass
class Davis2017Scores:
    """One object's figures as the DAVIS 2017 toolkit reports them (NaN: no frame to score)."""

    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float
    jf_mean: float

    def to_dict(self) -> dict[str, float]:
        """Plain floats, ready for ``json.dump``."""
        return {key: float(value) for key, value in asdict(self).items()}


def davis2017_scores(j: Tensor, f: Tensor, annotated: MaskLike | None = None) -> Davis2017Scores:
    """The toolkit's per-object figures from J and F ``[N]`` on every frame of the video.

    The toolkit scores frames ``1..N-2``: the first frame is the given mask, and it drops the
    last one too. Give the curves in float64 (``iou(..., dtype=torch.float64)``) for its exact
    arithmetic. ``jf_mean`` is (J mean + F mean) / 2; its global J&F is the same over objects.
    ``annotated`` [N] leaves frames without ground truth out (the toolkit needs all of them).
    """
    N = int(j.shape[0])
    keep = _frame_flags(annotated, N) & (torch.arange(N) >= 1) & (torch.arange(N) < N - 1)
    j_mean, j_recall, j_decay = db_statistics(j.cpu()[keep])
    f_mean, f_recall, f_decay = db_statistics(f.cpu()[keep])
    return Davis2017Scores(j_mean, j_recall, j_decay, f_mean, f_recall, f_decay, (j_mean + f_mean) / 2)
