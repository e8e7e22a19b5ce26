"""Per-frame video object segmentation metrics (DAVIS J and F), batched in torch.

Every function takes boolean masks shaped ``[..., H, W]`` (any leading batch dims, e.g.
``[T, H, W]`` or ``[B, T, H, W]``; numpy arrays are accepted and converted) and returns a
tensor shaped ``[...]`` on the masks' device. The definitions follow the DAVIS reference
implementation (``davis2017-evaluation``, ``davis2017/metrics.py``) so that numbers are
comparable with published results, but are vectorised over the batch instead of looping
over frames in numpy/OpenCV:

* :func:`iou` is ``db_eval_iou`` (J for one frame), with "both masks empty => 1".
* :func:`seg2bmap` is ``_seg2bmap`` for the same-resolution case.
* :func:`boundary_f` is ``f_measure`` (F for one frame), including its edge cases. The
  ``cv2.dilate`` with ``skimage.morphology.disk(r)`` is computed exactly as an OR of
  shifted copies (row-by-row decomposition of the disk), which needs no float kernels.

Scores are float32 by default; ``dtype=torch.float64`` repeats the reference's numpy
float64 arithmetic operation for operation, so its figures (and its ``> 0.5`` recall
decisions) are reproduced to the bit.

Void pixels (DAVIS-2017 label 255) are not handled here: the dataset reader maps them to
background, as the toolkit's semi-supervised evaluation does (it passes no void mask).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MaskLike",
    "boundary_f",
    "boundary_precision_recall",
    "boundary_tolerance",
    "dilate_disk",
    "disk_kernel",
    "iou",
    "j_and_f",
    "presence_accuracy",
    "seg2bmap",
]

MaskLike = Tensor | np.ndarray

_OUT_DTYPE = torch.float32


# --------------------------------------------------------------------------- helpers


def _as_mask(x: MaskLike, device: torch.device | None = None) -> Tensor:
    """Bool tensor view of a mask (numpy or torch, any dtype: nonzero = foreground)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if device is not None and x.device != device:
        x = x.to(device)
    if x.dtype != torch.bool:
        x = x != 0
    if x.ndim < 2:
        raise ValueError(f"masks need at least 2 dims [..., H, W], got shape {tuple(x.shape)}")
    return x


def _mask_pair(pred: MaskLike, gt: MaskLike) -> tuple[Tensor, Tensor]:
    """Both masks as bool tensors on pred's device, leading dims broadcast, H and W equal.

    H and W must match exactly (no resizing: the reference only scores same-size masks);
    leading dims broadcast so that e.g. one gt frame can be scored against many predictions.
    """
    p = _as_mask(pred)
    g = _as_mask(gt, device=p.device)
    if p.shape[-2:] != g.shape[-2:]:
        raise ValueError(f"mask sizes differ: pred {tuple(p.shape)} vs gt {tuple(g.shape)}")
    p, g = torch.broadcast_tensors(p, g)
    return p, g


def _count(x: Tensor) -> Tensor:
    """Number of true pixels per mask, ``[..., H, W] -> [...]`` (int64, exact)."""
    return x.sum(dim=(-2, -1), dtype=torch.int64)


# --------------------------------------------------------------------------- region (J)


def iou(pred: MaskLike, gt: MaskLike, dtype: torch.dtype = _OUT_DTYPE) -> Tensor:
    """Region similarity J (intersection over union) per mask, ``[..., H, W] -> [...]``.

    Both masks empty gives 1.0: correctly predicting "object absent" is a perfect answer
    (the DAVIS ``db_eval_iou`` and SAM2RL convention), not an undefined 0/0.
    """
    p, g = _mask_pair(pred, gt)
    inter = _count(p & g)
    union = _count(p | g)
    j = inter.to(dtype) / union.clamp(min=1).to(dtype)
    return torch.where(union == 0, torch.ones_like(j), j)


def presence_accuracy(pred: MaskLike, gt: MaskLike) -> Tensor:
    """1.0 where pred and gt agree on whether the object is visible at all, else 0.0.

    Separates "lost / hallucinated the object" errors from boundary quality, which J and F
    mix together.
    """
    p, g = _mask_pair(pred, gt)
    return (p.flatten(-2).any(-1) == g.flatten(-2).any(-1)).to(_OUT_DTYPE)


# --------------------------------------------------------------------------- boundary (F)


def seg2bmap(seg: MaskLike) -> Tensor:
    """One-pixel-wide boundary map of each mask, ``[..., H, W] -> [..., H, W]`` bool.

    Same logic as DAVIS ``_seg2bmap`` at the mask's own resolution: a pixel is boundary
    if it differs from its right (E), bottom (S) or bottom-right (SE) neighbour, with
    out-of-image neighbours read as background; the last row only compares with E, the
    last column only with S, and the bottom-right pixel is never boundary. Boundaries are
    thus offset half a pixel towards the origin, and the image border itself is not a
    boundary (a full-frame mask has an empty boundary map).
    """
    s = _as_mask(seg)
    e = torch.zeros_like(s)
    so = torch.zeros_like(s)
    se = torch.zeros_like(s)
    e[..., :, :-1] = s[..., :, 1:]
    so[..., :-1, :] = s[..., 1:, :]
    se[..., :-1, :-1] = s[..., 1:, 1:]
    b = (s ^ e) | (s ^ so) | (s ^ se)
    # Same overwrite order as the reference (matters for 1-pixel-high/wide images).
    b[..., -1, :] = s[..., -1, :] ^ e[..., -1, :]
    b[..., :, -1] = s[..., :, -1] ^ so[..., :, -1]
    b[..., -1, -1] = False
    return b


def boundary_tolerance(height: int, width: int, bound_th: float = 0.008) -> float:
    """Matching tolerance in pixels: ``bound_th`` itself if >= 1, else a fraction of the diagonal.

    Mirrors the reference's ``ceil(bound_th * np.linalg.norm((H, W)))`` (8 px at 480x854),
    so the tolerance scales with resolution.
    """
    if bound_th >= 1:
        return float(bound_th)
    return float(math.ceil(bound_th * math.sqrt(height * height + width * width)))


def _disk_half_widths(radius: float) -> list[int]:
    """``w[dy]`` = largest integer dx with ``dx^2 + dy^2 <= radius^2``, for dy = 0..floor(radius)."""
    if radius < 0:
        raise ValueError(f"disk radius must be >= 0, got {radius}")
    r_sq = radius * radius
    # dx^2 is an integer, so dx^2 <= r_sq - dy^2  <=>  dx^2 <= floor(r_sq - dy^2).
    return [math.isqrt(math.floor(r_sq - dy * dy)) for dy in range(math.floor(radius) + 1)]


def disk_kernel(radius: float) -> Tensor:
    """Disk structuring element, bool ``[2R+1, 2R+1]`` with ``R = floor(radius)``.

    Same as ``skimage.morphology.disk(r)`` (offsets with ``x^2 + y^2 <= r^2``) for integer r,
    which is what the reference uses (``bound_pix`` is an integer unless a non-integer
    ``bound_th >= 1`` is passed; skimage would then build an off-centre even-sized grid,
    whereas this stays a centred disk of that real radius).
    """
    n = math.floor(radius)
    offs = torch.arange(-n, n + 1, dtype=torch.float64)
    return (offs[:, None] ** 2 + offs[None, :] ** 2) <= radius * radius


def dilate_disk(mask: MaskLike, radius: float) -> Tensor:
    """Binary dilation of each ``[..., H, W]`` mask by :func:`disk_kernel` ``(radius)``.

    Equals ``cv2.dilate(mask, disk(r))`` with cv2's default border (outside = background).
    Computed as OR-ed shifts: rows of the disk at vertical offset dy are horizontal runs
    of half-width ``w[dy]``; horizontal dilations are built incrementally, so the cost is
    about ``4 r`` bool passes over the batch (exact, device-agnostic, no float conv).
    """
    m = _as_mask(mask)
    widths = _disk_half_widths(radius)
    H, W = m.shape[-2:]
    out = torch.zeros_like(m)
    by_width: dict[int, list[int]] = {}
    for dy, w in enumerate(widths):
        by_width.setdefault(w, []).append(dy)
    horiz = m.clone()  # horizontal dilation of m by the current half-width
    for w in range(max(widths) + 1):
        if w > 0 and w < W:
            horiz[..., :, :-w] |= m[..., :, w:]
            horiz[..., :, w:] |= m[..., :, :-w]
        for dy in by_width.get(w, ()):
            if dy == 0:
                out |= horiz
            elif dy < H:
                out[..., :-dy, :] |= horiz[..., dy:, :]
                out[..., dy:, :] |= horiz[..., :-dy, :]
    return out


def boundary_precision_recall(
    pred: MaskLike, gt: MaskLike, bound_th: float = 0.008, dtype: torch.dtype = _OUT_DTYPE
) -> tuple[Tensor, Tensor]:
    """Boundary precision and recall per mask (the two halves of DAVIS F), each ``[...]``.

    precision = fraction of pred boundary pixels within ``bound_pix`` of the gt boundary,
    recall = fraction of gt boundary pixels within ``bound_pix`` of the pred boundary.
    An empty boundary counts as perfectly precise / perfectly recalled, exactly as in the
    reference: both empty -> (1, 1); pred empty only -> (1, 0); gt empty only -> (0, 1).
    """
    p, g = _mask_pair(pred, gt)
    H, W = p.shape[-2:]
    radius = boundary_tolerance(H, W, bound_th)
    fg_b = seg2bmap(p)
    gt_b = seg2bmap(g)
    fg_match = _count(fg_b & dilate_disk(gt_b, radius))
    gt_match = _count(gt_b & dilate_disk(fg_b, radius))
    n_fg = _count(fg_b)
    n_gt = _count(gt_b)
    # With n_fg == 0 the reference sets precision = 1; with n_gt == 0 (n_fg > 0) it sets
    # precision = 0, which is what fg_match / n_fg gives since gt_b dilated is empty.
    # Symmetrically for recall.
    one = torch.ones((), dtype=dtype, device=p.device)
    precision = torch.where(n_fg > 0, fg_match.to(dtype) / n_fg.clamp(min=1).to(dtype), one)
    recall = torch.where(n_gt > 0, gt_match.to(dtype) / n_gt.clamp(min=1).to(dtype), one)
    return precision, recall


def boundary_f(
    pred: MaskLike, gt: MaskLike, bound_th: float = 0.008, dtype: torch.dtype = _OUT_DTYPE
) -> Tensor:
    """Contour accuracy F (DAVIS ``f_measure``) per mask, ``[..., H, W] -> [...]``.

    F = 2PR / (P + R) of :func:`boundary_precision_recall`, 0 when P + R == 0. Scores how
    well the outline is placed, which IoU under-weights for large objects.
    ``bound_th`` < 1 is a fraction of the image diagonal, >= 1 a pixel count.
    """
    precision, recall = boundary_precision_recall(pred, gt, bound_th, dtype)
    denom = precision + recall
    f = 2 * precision * recall / torch.where(denom > 0, denom, torch.ones_like(denom))
    return torch.where(denom > 0, f, torch.zeros_like(f))


def j_and_f(pred: MaskLike, gt: MaskLike, bound_th: float = 0.008) -> Tensor:
    """(J + F) / 2 per mask, ``[..., H, W] -> [...]``: the DAVIS headline number for one frame."""
    return (iou(pred, gt) + boundary_f(pred, gt, bound_th)) / 2
