"""A seeded random memory rule: the floor any learned controller has to beat."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.tracker import Memories, MemoryBank, Prediction

__all__ = ["RandomController"]


@register_controller("random")
class RandomController(Controller):
    """Uniform over the legal actions of each track (`bank.action_mask(allow_discard, allow_anchor)`),
    drawn from a `torch.Generator` seeded with `seed`: the same seed gives the same actions for the
    same sequence of banks. The generator is seeded once, not per episode, so episodes differ.
    The candidate is SAM 2's choice."""

    def __init__(self, *, seed: int = 0, allow_discard: bool = True, allow_anchor: bool = False) -> None:
        self.seed = int(seed)
        self.allow_discard = bool(allow_discard)
        self.allow_anchor = bool(allow_anchor)
        self.generator = torch.Generator().manual_seed(self.seed)

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        legal = bank.action_mask(allow_discard=self.allow_discard, allow_anchor=self.allow_anchor)
        draws = torch.multinomial(legal.float().cpu(), 1, generator=self.generator)[:, 0]
        return draws.to(legal.device)
