"""SAM 2's own memory rule."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.tracker import Memories, MemoryBank, Prediction


@register_controller("fifo")
class FifoController(Controller):
    """Always keep the newest frame, evicting the oldest (SAM 2, `SAM2Base._prepare_memory_conditioned_features`)."""

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        return bank.fifo_action()
