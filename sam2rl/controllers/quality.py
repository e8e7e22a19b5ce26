"""The quality-gated memory selection that SAMURAI and SAM2Long share, as bank actions.

Both rebuild the non-conditioning memory at frame t from scratch (`sam2_base.py`,
`_prepare_memory_conditioned_features`): walk back over past frames, keep those that pass a
quality gate, always add the previous frame t-1 whether or not it passed
(`if frame_idx - 1 not in valid_indices: valid_indices.append(frame_idx - 1)`), and attend to
the last `num_maskmem - 1` of that list. So the memory for frame t+1 is
{t} + the newest R-1 passing frames before t (R = recent slots), or the newest R passing frames
when t itself passes.

A bank with one write per frame reproduces this exactly: the newest frame is always written;
it evicts the oldest slot (FIFO) when the previous frame passed the gate, and it overwrites the
previous frame's slot when that one did not (it was only there as "the last frame").
"""

from __future__ import annotations

import torch

from sam2rl.tracker import MemoryBank

__all__ = ["gated_action", "newest_slot_action"]


def newest_slot_action(bank: MemoryBank) -> torch.Tensor:
    """[B] write action into the recent slot holding the newest frame (slot 0 when all are empty)."""
    return bank.newest_slot() + 1


def gated_action(bank: MemoryBank, keep: torch.Tensor, previous_failed: torch.Tensor,
                 keep_last_frame: bool = True) -> torch.Tensor:
    """[B] action for frames whose gate result is `keep` [B] bool.

    keep_last_frame=True: the original rule (previous frame always in memory), where
    `previous_failed` [B] bool says whether the newest memory in the bank failed its gate.
    keep_last_frame=False: the plain rule, write (FIFO among kept frames) if kept, else discard.
    """
    fifo = bank.fifo_action()
    if not keep_last_frame:
        return torch.where(keep, fifo, torch.zeros_like(fifo))
    replace = previous_failed.to(fifo.device) & bank.recent.valid.any(dim=1)
    return torch.where(replace, newest_slot_action(bank), fifo)
