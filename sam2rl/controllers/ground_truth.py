"""What the controllers that read the ground truth (oracle, search) share: their per-batch data in
`track_video`'s order, and a running IoU of tracked rows against the ground truth."""

from __future__ import annotations

from typing import Generic, TypeVar

import torch

from sam2rl.metrics import iou as mask_iou
from sam2rl.tracker import Step

__all__ = ["BatchCycle", "IoUTally"]

Item = TypeVar("Item")


class BatchCycle(Generic[Item]):
    """Per-batch data of a bound video, handed out in `track_video`'s batch order; after the last
    batch a new run over the same video starts again from the first."""

    def __init__(self, label: str, items: list[Item], sizes: list[int]) -> None:
        self.label, self.items, self.sizes = label, items, sizes  # label: e.g. "oracle: ground truth"
        self._next = 0

    def __len__(self) -> int:
        return len(self.items)

    def next(self, batch_size: int) -> Item:
        if self._next >= len(self.items):
            self._next = 0
        index = self._next
        self._next += 1
        if self.sizes[index] != batch_size:
            raise ValueError(f"{self.label} for {self.sizes[index]} tracks, but a batch of {batch_size} started")
        return self.items[index]


class IoUTally:
    """Mean IoU, per tracked row, of the chosen masks against the ground truth over counted frames
    (an empty prediction on an empty ground truth scores 1; no counted frame scores 0)."""

    def __init__(self, rows: int) -> None:
        self.total = torch.zeros(rows, dtype=torch.float64)
        self.seen = torch.zeros(rows, dtype=torch.float64)

    def add(self, step: Step, truth: torch.Tensor, counted: torch.Tensor) -> None:
        """One tracked frame: `truth` [rows, S, S] bool, `counted` [rows] bool (CPU)."""
        predicted = (step.prediction.chosen_high_res(step.choice) > 0).cpu()
        iou = mask_iou(predicted, truth).double()
        self.total += torch.where(counted, iou, torch.zeros_like(iou))
        self.seen += counted.double()

    def mean(self) -> torch.Tensor:
        return self.total / self.seen.clamp(min=1)
