"""What a memory policy sees: one token per memory slot and for the candidate, plus globals.

Shared by `SAM2MemoryEnv` and by trained agents driving the tracker outside the environment,
so both see exactly the same features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDict

from sam2rl.tracker import Memories, MemoryBank, Prediction, Tracker

__all__ = ["GLOBAL_FEATURES", "TOKEN_FEATURES", "observe", "token_dim"]

TOKEN_FEATURES = ("object_score", "predicted_iou", "area_vs_prompt", "age", "similarity", "valid",
                  "is_anchor", "is_recent", "is_candidate", "recency")
"""Scalars of each token, after the pooled memory features."""
GLOBAL_FEATURES = ("progress", "bank_fill", "object_score", "predicted_iou")


def token_dim(tracker: Tracker) -> int:
    """Length of each token for `tracker`: its pooled memory features (`memory_shape[0]` channels),
    then `TOKEN_FEATURES`."""
    return tracker.memory_shape[0] + len(TOKEN_FEATURES)


def observe(bank: MemoryBank, candidate: Memories, prediction: Prediction, frame: torch.Tensor, start: torch.Tensor,
            end: torch.Tensor, action_mask: torch.Tensor) -> TensorDict:
    """tokens [B, A + R + 1, C_mem + 10], global [B, 4], fifo_action [B, R + 2] (SAM 2's own action,
    one-hot), action_mask (see `SAM2MemoryEnv`).

    `start`/`end`: each track's prompt frame and its video's length (age and progress are relative
    to the track's length; the environment passes the track's, not its window's, so a policy trained
    on windows sees what it sees on a whole video). Nothing here comes from the ground truth.
    """
    batch = frame.shape[0]
    device = frame.device
    slots = torch.cat([bank.anchors, bank.recent, candidate.unsqueeze(1)], dim=1)  # [B, N]
    num_tokens = slots.batch_size[1]
    pooled = slots.features.float().mean(dim=(-2, -1))  # [B, N, C_mem]
    similarity = F.cosine_similarity(pooled, pooled[:, -1:], dim=-1)
    prompt_area = bank.anchors.area[:, :1].clamp(min=1e-4)
    length = (end - start).clamp(min=1)[:, None].float()
    num_anchor, num_recent = bank.anchors.valid.shape[1], bank.num_recent
    kinds = torch.zeros(batch, num_tokens, 3, device=device)
    kinds[:, :num_anchor, 0] = 1
    kinds[:, num_anchor:-1, 1] = 1
    kinds[:, -1, 2] = 1
    recency = torch.cat([torch.zeros(batch, num_anchor, device=device), bank.newer_count().float() / num_recent,
                         torch.zeros(batch, 1, device=device)], dim=1)
    valid = slots.valid.float()
    scalars = torch.stack([
        slots.object_score / 10, slots.iou, (slots.area / prompt_area).clamp(max=10),
        (frame[:, None] - slots.frame).float() / length * valid, similarity * valid, valid,
        kinds[..., 0], kinds[..., 1], kinds[..., 2], recency,
    ], dim=-1)
    tokens = torch.cat([pooled * valid[..., None], scalars], dim=-1)
    progress = (frame - start).float() / length[:, 0]
    global_ = torch.stack([progress, bank.recent.valid.float().mean(dim=1), prediction.object_score / 10,
                           candidate.iou], dim=-1)
    fifo = F.one_hot(bank.fifo_action(), action_mask.shape[-1]).float()
    return TensorDict({"tokens": tokens, "global": global_, "fifo_action": fifo, "action_mask": action_mask},
                      batch_size=[batch])
