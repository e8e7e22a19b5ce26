"""The DAVIS 2017 toolkit's definitions in plain numpy, independent of sam2rl, for tests to check it against.

Transcribed from davisvideochallenge/davis2017-evaluation (``davis2017/metrics.py``: ``db_eval_iou``,
``f_measure``, ``_seg2bmap``; ``davis2017/utils.py``: ``db_statistics``; ``davis2017/evaluation.py``:
the semi-supervised sweep and the global J&F of ``evaluation_method.py``; ``davis2017/results.py`` and
``davis.py``: how masks are read). ``cv2.dilate`` with ``skimage.morphology.disk`` is a brute-force OR
of shifts over the disk's offsets (neither library is a dependency). Void pixels are not modelled: the
semi-supervised evaluation passes none.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """``_seg2bmap`` (same-size branch)."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def dilate(b: np.ndarray, r: int) -> np.ndarray:
    """cv2.dilate(b, skimage disk(r)) with the default (background) border, by brute force."""
    h, w = b.shape
    padded = np.zeros((h + 2 * r, w + 2 * r), dtype=bool)
    padded[r : r + h, r : r + w] = b
    out = np.zeros_like(b)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                out |= padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def f_measure(fg: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """``f_measure`` without void pixels."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(fg.shape))
    fg_b = seg2bmap(fg)
    gt_b = seg2bmap(gt)
    fg_dil = dilate(fg_b, int(bound_pix))
    gt_dil = dilate(gt_b, int(bound_pix))
    gt_match = gt_b * fg_dil
    fg_match = fg_b * gt_dil
    n_fg = np.sum(fg_b)
    n_gt = np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """``db_eval_iou`` over ``[T, H, W]`` without void pixels: J per frame, 1 where the union is empty."""
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(invalid="ignore"):
        j = inters / union
    j[np.isclose(union, 0)] = 1
    return j


def db_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """``db_statistics``: mean, recall (> 0.5) and decay (first bin minus fourth), uint8 bin bounds and all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        M = np.nanmean(per_frame_values)
        O = np.nanmean(per_frame_values > 0.5)
    N_bins = 4
    ids = np.round(np.linspace(1, len(per_frame_values), N_bins + 1) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    D_bins = [per_frame_values[ids[i] : ids[i + 1] + 1] for i in range(0, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        D = np.nanmean(D_bins[0]) - np.nanmean(D_bins[3])
    return M, O, D


def evaluate_sequence(gt: np.ndarray, res: np.ndarray) -> list[dict[str, float]]:
    """The semi-supervised sweep of one sequence: ``gt``, ``res`` bool ``[objects, N, H, W]`` over all N
    frames; the toolkit drops the first and last (``[:, 1:-1]``), then per object J, F and statistics."""
    gt, res = gt[:, 1:-1], res[:, 1:-1]
    if res.shape[0] < gt.shape[0]:  # missing objects: zero masks
        res = np.concatenate([res, np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]), dtype=bool)])
    rows = []
    for ii in range(gt.shape[0]):
        j = db_eval_iou(gt[ii], res[ii])
        f = np.array([f_measure(res[ii, t], gt[ii, t]) for t in range(gt.shape[1])])
        (jm, jr, jd), (fm, fr, fd) = db_statistics(j), db_statistics(f)
        rows.append({"j_mean": jm, "j_recall": jr, "j_decay": jd, "f_mean": fm, "f_recall": fr, "f_decay": fd})
    return rows


def global_jf(rows: list[dict[str, float]]) -> float:
    """``evaluation_method.py``'s J&F-Mean: (mean of the objects' J means + mean of their F means) / 2."""
    return (np.mean([r["j_mean"] for r in rows]) + np.mean([r["f_mean"] for r in rows])) / 2


def read_gt(folder: Path) -> np.ndarray:
    """``DAVIS.get_all_masks(seq, True)``: objects 1..max id of the first frame, void (255) as background."""
    masks = np.stack([np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))]).astype(np.float64)
    masks[masks == 255] = 0
    ids = np.arange(1, int(masks[0].max()) + 1)
    return ids[:, None, None, None] == masks[None]


def read_results(folder: Path) -> np.ndarray:
    """``Results.read_masks``: one palette PNG per frame split into objects 1..max id."""
    masks = np.stack([np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))]).astype(np.float64)
    ids = np.arange(1, int(masks.max()) + 1)
    return ids[:, None, None, None] == masks[None]
