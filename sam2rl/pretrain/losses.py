"""SAM 2's training losses for one tracked frame: focal + dice on the best multimask candidate,
L1 on every candidate's predicted IoU, BCE on object presence (sam2 `training/loss_fns.py`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam2rl.schema.pretrain import LossWeights
from sam2rl.tracker import Prediction

__all__ = ["frame_losses"]


def _focal(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """[B, M] mean over pixels of the sigmoid focal loss."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(dim=2)


def _dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = logits.sigmoid().flatten(2)
    target = target.flatten(2)
    return 1 - (2 * (prob * target).sum(dim=2) + 1) / (prob.sum(dim=2) + target.sum(dim=2) + 1)


def frame_losses(prediction: Prediction, target: torch.Tensor, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Losses of B tracks on one frame; `target` [B, S, S] bool. The mask terms (of the candidate
    with the lowest focal + dice, as SAM 2 supervises multimask outputs) count only where the object
    is present, as in SAM 2, and are averaged over those tracks (SAM 2 divides by all objects)."""
    logits = prediction.high_res_masks  # [B, M, S, S]
    goal = target[:, None].float().expand_as(logits)
    focal = _focal(logits, goal, weights.focal_alpha, weights.focal_gamma)
    dice = _dice(logits, goal)
    best = (weights.focal * focal + weights.dice * dice).argmin(dim=1, keepdim=True)
    present = target.flatten(1).any(dim=1).float()
    with torch.no_grad():
        pred = logits > 0
        inter = (pred & goal.bool()).flatten(2).sum(dim=2)
        union = (pred | goal.bool()).flatten(2).sum(dim=2)
        actual_iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter, dtype=torch.float))
    iou = (prediction.ious - actual_iou).abs().mean(dim=1)
    presence = F.binary_cross_entropy_with_logits(prediction.object_score, present, reduction="none")
    norm = present.sum().clamp(min=1)
    return {
        "focal": (focal.gather(1, best)[:, 0] * present).sum() / norm,
        "dice": (dice.gather(1, best)[:, 0] * present).sum() / norm,
        "iou": (iou * present).sum() / norm,
        "object_score": presence.mean(),
        "frame_iou": actual_iou.gather(1, prediction.sam_choice[:, None])[:, 0].mean(),
    }
