"""Deliberately faulty reward functions, for the error-path tests (not part of the example)."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import Tensor

from sam2rl.rewards import register_reward


def wrong_shape(td: TensorDictBase) -> Tensor:
    """[B, 1] instead of [B]."""
    return torch.zeros(td.batch_size[0], 1)


def not_a_tensor(td: TensorDictBase) -> float:
    return 1.0


def with_nan(td: TensorDictBase, bad: str = "nan") -> Tensor:
    """NaN (or inf) at batch index 1."""
    out = torch.zeros(td.batch_size)
    out[1] = float(bad)
    return out


def reads_undeclared(td: TensorDictBase) -> Tensor:
    """Reads a key it did not declare in `needs` (and that the env never provides)."""
    return td["foreground_prior"].float()


def needs_threshold(td: TensorDictBase, threshold: float) -> Tensor:
    """A required kwarg (no default)."""
    return (td["predicted_iou"] > threshold).float()


def open_kwargs(td: TensorDictBase, **options: float) -> Tensor:
    """Accepts any kwargs."""
    return torch.full(td.batch_size, float(sum(options.values())))


def integer_valued(td: TensorDictBase) -> Tensor:
    """int64 output: composed as float32."""
    return td["action"] * 2


@register_reward("example_beats_reference", needs=("reference_iou",))
def beats_reference(td: TensorDictBase, margin: float = 0.0) -> Tensor:
    """Declares it needs reference_iou; usable by dotted path or (once imported) by name."""
    return (td["predicted_iou"] > td["reference_iou"] + margin).float()
