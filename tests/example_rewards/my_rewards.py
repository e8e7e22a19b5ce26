"""Example user reward: referenced from a recipe as ``example_rewards.my_rewards.area_consistency``."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import Tensor


def area_consistency(td: TensorDictBase, tolerance: float = 0.2) -> Tensor:
    """1 where the predicted area is within ``tolerance`` (relative) of the ground-truth area, else 0.

    A cheap shape-free check: a sudden jump in area usually means the tracker grabbed a distractor.
    """
    pred_area = td["pred_mask"].flatten(1).sum(-1).float()
    gt_area = td["gt_mask"].flatten(1).sum(-1).float()
    relative_error = (pred_area - gt_area).abs() / gt_area.clamp(min=1)
    return (relative_error <= tolerance).to(torch.float32)
