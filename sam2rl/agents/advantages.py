"""Advantages from whole episodes, with the other episodes of the same start as the baseline.

The score a per-video agent is kept for is the undiscounted mean IoU over the whole video, and a
memory decision pays off tens of frames later (a memory kept through an occlusion is read when the
object comes back). A discounted, bootstrapped critic (gamma 0.9) weighs an effect 30 frames away
at a few thousandths, and after a warm start it is mostly noise. So the return here is the rest of
the episode's reward, undiscounted (`ppo.gamma: 1`), and the baseline is the mean return of the
other episodes in the batch that started from the same track and frame at the same step
(`env.group_size`, leave-one-out as in RLOO): unbiased, with no network to fit.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.objectives.value.functional import reward2go

__all__ = ["episode_returns", "leave_one_out_advantage", "normalized"]


def episode_returns(rollout: TensorDictBase, gamma: float = 1.0) -> torch.Tensor:
    """[B, T, 1] the (discounted) reward still to come in each step's episode, within the rollout."""
    return reward2go(rollout["next", "reward"], rollout["next", "done"], gamma, time_dim=-2)


def leave_one_out_advantage(rollout: TensorDictBase, group_size: int, gamma: float = 1.0
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantage, return) [B, T, 1]: each step's return minus the mean return, at the same step, of
    the other `group_size - 1` rows of its group (rows b // group_size share a start, see
    `SAM2MemoryEnv`). The baseline does not depend on the row's own actions, so the gradient stays
    unbiased; a group whose rows all did the same gets advantage 0, not critic noise."""
    if group_size < 2:
        raise ValueError(f"a leave-one-out baseline needs groups of at least 2 episodes, got group_size {group_size}")
    returns = episode_returns(rollout, gamma)
    rows = returns.shape[0]
    if rows % group_size:
        raise ValueError(f"{rows} rows do not split into groups of {group_size}")
    grouped = returns.reshape(rows // group_size, group_size, *returns.shape[1:])
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - baseline).reshape_as(returns), returns


def normalized(advantage: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit spread over the whole batch, once (not per minibatch, where a few samples'
    spread would blow noise up to unit size); an all-zero batch stays zero."""
    centred = advantage - advantage.mean()
    return centred / centred.std().clamp(min=1e-8) if centred.numel() > 1 else centred
