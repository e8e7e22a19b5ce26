"""Batched mask geometry shared by the heuristic controllers: boxes, box IoUs, connected components."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_iou_inclusive", "box_iou_samurai", "largest_component", "mask_to_box"]


def mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """[..., H, W] bool -> [..., 4] float (x_min, y_min, x_max, y_max), inclusive pixel indices.

    An empty mask gives (0, 0, 0, 0), as SAMURAI's `high_res_bbox = [0, 0, 0, 0]`.
    Same corners as `sam2.utils.misc.mask_to_box`, for any leading shape.
    """
    height, width = masks.shape[-2:]
    cols = masks.any(dim=-2)  # [..., W]
    rows = masks.any(dim=-1)  # [..., H]
    x_min = cols.long().argmax(dim=-1)
    x_max = width - 1 - cols.flip(-1).long().argmax(dim=-1)
    y_min = rows.long().argmax(dim=-1)
    y_max = height - 1 - rows.flip(-1).long().argmax(dim=-1)
    box = torch.stack([x_min, y_min, x_max, y_max], dim=-1).float()
    return torch.where(cols.any(dim=-1, keepdim=True), box, torch.zeros_like(box))


def box_iou_samurai(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes as SAMURAI's `KalmanFilter._compute_iou`: areas (x2-x1)(y2-y1), 0 when the
    second box is (0, 0, 0, 0) (an empty mask) or the union is 0. Broadcasts over leading dims."""
    x1 = torch.maximum(first[..., 0], second[..., 0])
    y1 = torch.maximum(first[..., 1], second[..., 1])
    x2 = torch.minimum(first[..., 2], second[..., 2])
    y2 = torch.minimum(first[..., 3], second[..., 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_a = (first[..., 2] - first[..., 0]) * (first[..., 3] - first[..., 1])
    area_b = (second[..., 2] - second[..., 0]) * (second[..., 3] - second[..., 1])
    union = area_a + area_b - inter
    iou = torch.where(union != 0, inter / torch.where(union != 0, union, torch.ones_like(union)), torch.zeros_like(union))
    return torch.where((second == 0).all(dim=-1), torch.zeros_like(iou), iou)


def box_iou_inclusive(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """IoU of boxes given by inclusive pixel corners (width x_max - x_min + 1), as the VOT
    toolkit's rectangle overlap that DAM4SAM uses. Broadcasts over leading dims."""
    x1 = torch.maximum(first[..., 0], second[..., 0])
    y1 = torch.maximum(first[..., 1], second[..., 1])
    x2 = torch.minimum(first[..., 2], second[..., 2])
    y2 = torch.minimum(first[..., 3], second[..., 3])
    inter = (x2 - x1 + 1).clamp(min=0) * (y2 - y1 + 1).clamp(min=0)
    area_a = (first[..., 2] - first[..., 0] + 1) * (first[..., 3] - first[..., 1] + 1)
    area_b = (second[..., 2] - second[..., 0] + 1) * (second[..., 3] - second[..., 1] + 1)
    return inter / (area_a + area_b - inter).clamp(min=1)


def largest_component(masks: torch.Tensor) -> torch.Tensor:
    """[K, H, W] bool -> the largest 8-connected component of each mask (empty stays empty).

    Ties go to the component met first in raster order, as `cv2.connectedComponentsWithStats`
    + `argmax` (DAM4SAM's `keep_largest_component`). Labels are found by min-label propagation
    (3x3 max-pool on negated labels) with pointer jumping, so it runs in a few dozen tensor ops.
    """
    count, height, width = masks.shape
    if count == 0:
        return masks
    size = height * width
    index = torch.arange(1, size + 1, device=masks.device, dtype=torch.float32).expand(count, size)
    background = float(size + 1)
    labels = torch.where(masks.flatten(1), index, torch.full_like(index, background))  # 1-based min pixel index
    while True:
        pooled = -F.max_pool2d(-labels.view(count, 1, height, width), 3, stride=1, padding=1).view(count, size)
        new = torch.where(masks.flatten(1), torch.minimum(labels, pooled), labels)
        for _ in range(4):  # pointer jumping: take the label of the pixel one's label points at
            pointed = new.gather(1, (new.clamp(max=size) - 1).long())
            new = torch.where(masks.flatten(1), torch.minimum(new, pointed), new)
        if torch.equal(new, labels):
            break
        labels = new
    ids = labels.long()  # 1..size for foreground, size + 1 for background
    offset = torch.arange(count, device=masks.device)[:, None] * (size + 2)
    sizes = torch.bincount((ids + offset).flatten(), minlength=count * (size + 2)).view(count, size + 2)
    sizes[:, 0] = 0
    sizes[:, size + 1] = 0
    best = sizes.argmax(dim=1)  # first maximum: lowest label = first met in raster order
    keep = (ids == best[:, None]) & masks.flatten(1) & (sizes.amax(dim=1) > 0)[:, None]
    return keep.view(count, height, width)
