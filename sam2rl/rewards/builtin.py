"""The built-in reward terms. Each returns float32 ``[B]``; the weights live in the recipe."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import Tensor

import sam2rl.metrics as metrics
from sam2rl.rewards.registry import register_reward

__all__ = ["delta_vs_reference", "iou", "j_and_f", "memory_churn", "presence"]


@register_reward("iou")
def iou(td: TensorDictBase) -> Tensor:
    """IoU (DAVIS J) of ``pred_mask`` vs ``gt_mask``; both empty = 1 (a correct "absent").

    The paper's reward: dense, in [0, 1], and the quantity we evaluate with.
    """
    return metrics.iou(td["pred_mask"], td["gt_mask"])


@register_reward("j_and_f")
def j_and_f(td: TensorDictBase, bound_th: float = 0.008) -> Tensor:
    """DAVIS (J + F) / 2 of ``pred_mask`` vs ``gt_mask``, in [0, 1].

    Adds boundary accuracy to IoU, for agents tuned on the benchmark's headline number.
    ``bound_th`` is the boundary tolerance (fraction of the diagonal, or pixels if >= 1).
    """
    return metrics.j_and_f(td["pred_mask"], td["gt_mask"], bound_th=bound_th)


@register_reward("delta_vs_reference", needs=("reference_iou",))
def delta_vs_reference(td: TensorDictBase) -> Tensor:
    """IoU minus the reference controller's IoU on the same frame of the same track, in [-1, 1].

    Removes the per-frame difficulty (most frames are easy for any memory rule), so the signal
    is what this agent's memory choices gained or lost over FIFO: lower variance than raw IoU.
    """
    ref = td["reference_iou"]
    out = metrics.iou(td["pred_mask"], td["gt_mask"])
    return out - ref.to(device=out.device, dtype=out.dtype)


@register_reward("presence")
def presence(td: TensorDictBase, wrong: float = 0.0) -> Tensor:
    """1 where the presence call (``object_score > 0``) matches "gt non-empty", else ``wrong`` (0).

    Rewards the occlusion decision separately from mask quality: IoU alone gives the same 0 for
    a lost object as for a badly drawn one. Set ``wrong: -1`` for a symmetric +-1 signal.
    """
    said_present = td["object_score"] > 0
    is_present = td["gt_mask"].flatten(-2).any(-1)
    right = (said_present == is_present.to(said_present.device)).to(torch.float32)
    return torch.where(right > 0, right, torch.full_like(right, float(wrong)))


@register_reward("memory_churn")
def memory_churn(td: TensorDictBase) -> Tensor:
    """-1 for each step that evicted a valid memory (``overwrote``), else 0.

    A cost on needless rewriting of the bank; give it a small weight (e.g. 0.01) so it only
    breaks ties between otherwise equal actions.
    """
    return -td["overwrote"].to(torch.float32)
