"""The SAM 2 memory bank as batched tensors that controllers edit with a few explicit operations.

SAM 2 keeps its memories in per-frame dicts (`output_dict`); here B tracks share one set of
tensors with a batch dimension, so a whole batch is read by one memory-attention call and
edited by one vectorised operation, and the bank can live inside a TorchRL TensorDict.

Actions (the same integers everywhere: controllers, environment, agent):
    0          discard the candidate memory of the current frame
    1 .. R     write the candidate into recent slot k-1 (evicting what was there)
    R + 1      add the candidate as an anchor (conditioning memory, t_pos 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import tensorclass

from sam2rl.schema.agent import EpisodeSettings

__all__ = ["DISCARD", "ActionLayout", "Memories", "MemoryBank"]

DISCARD = 0


@tensorclass
class Memories:
    """Encoded memories, batch [B] (one candidate per track) or [B, K] (K slots per track).

    Memory for one slot: C_mem * (S/16)^2 feature values in the bank dtype + a few scalars.
    """

    features: torch.Tensor  # [..., C_mem, S/16, S/16] memory-encoder output
    obj_ptr: torch.Tensor  # [..., C] object pointer of the kept mask
    frame: torch.Tensor  # [...] int64 frame index, -1 when empty
    object_score: torch.Tensor  # [...] object-presence logit (>0: present)
    iou: torch.Tensor  # [...] predicted IoU of the kept mask
    area: torch.Tensor  # [...] kept-mask area, fraction of the image
    valid: torch.Tensor  # [...] bool

    @classmethod
    def empty(cls, batch: tuple[int, ...], feature_shape: tuple[int, int, int], ptr_dim: int,
              dtype: torch.dtype, device: torch.device | str) -> Memories:
        """Invalid (empty) slots of shape `batch`, frame -1."""
        def zeros(*shape: int, dt: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(*batch, *shape, dtype=dt, device=device)

        return cls(
            features=zeros(*feature_shape, dt=dtype),
            obj_ptr=zeros(ptr_dim),
            frame=torch.full(batch, -1, dtype=torch.long, device=device),
            object_score=zeros(),
            iou=zeros(),
            area=zeros(),
            valid=zeros(dt=torch.bool),
            batch_size=list(batch),
        )


def _put(slots: Memories, item: Memories, where: torch.Tensor) -> Memories:
    """slots[b, k] = item[b] wherever where[b, k]; one vectorised `torch.where` per field."""

    def put(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        mask = where.reshape(*where.shape, *([1] * (old.dim() - where.dim())))
        return torch.where(mask, new.unsqueeze(1).to(old.dtype), old)

    return slots.apply(put, item)


@tensorclass
class MemoryBank:
    """Memories of B tracks: anchors (t_pos 0, the prompt first), recent slots, pointer history."""

    anchors: Memories  # [B, A]
    recent: Memories  # [B, R], R = num_maskmem - 1
    pointers: torch.Tensor  # [B, P, C] object pointers of the last P tracked frames, newest first
    pointer_frame: torch.Tensor  # [B, P] their frame indices, -1 when empty

    @classmethod
    def empty(cls, batch_size: int, num_recent: int, max_anchors: int, num_pointers: int,
              feature_shape: tuple[int, int, int], ptr_dim: int, dtype: torch.dtype,
              device: torch.device | str) -> MemoryBank:
        """B banks with every slot empty and no pointer history (`Tracker.new_bank` sizes them)."""
        return cls(
            anchors=Memories.empty((batch_size, max_anchors), feature_shape, ptr_dim, dtype, device),
            recent=Memories.empty((batch_size, num_recent), feature_shape, ptr_dim, dtype, device),
            pointers=torch.zeros(batch_size, num_pointers, ptr_dim, device=device),
            pointer_frame=torch.full((batch_size, num_pointers), -1, dtype=torch.long, device=device),
            batch_size=[batch_size],
        )

    @property
    def num_recent(self) -> int:
        return self.recent.batch_size[1]

    @property
    def anchor_action(self) -> int:
        return self.num_recent + 1

    @property
    def num_actions(self) -> int:
        return self.num_recent + 2

    def newest_slot(self) -> torch.Tensor:
        """[B] recent slot holding the newest frame (slot 0 when all are empty)."""
        frame = torch.where(self.recent.valid, self.recent.frame, torch.full_like(self.recent.frame, -2))
        return frame.argmax(dim=1)

    def newer_count(self) -> torch.Tensor:
        """[B, R] how many filled recent slots hold a newer frame than each slot (0: the newest);
        SAM 2's temporal position of a recent memory is `num_maskmem - 1 - newer_count`."""
        newer = (self.recent.frame[:, None, :] > self.recent.frame[:, :, None]) & self.recent.valid[:, None, :]
        return newer.sum(dim=2)

    def anchors_between(self, frame: torch.Tensor) -> torch.Tensor:
        """[B, R] how many anchors lie strictly between each recent slot's frame and `frame` [B]: the
        places SAM 2's conditioning frames take in its recent window (`TrackerSettings.anchors_in_window`)."""
        anchor = self.anchors.frame[:, None, :]
        between = (anchor > self.recent.frame[:, :, None]) & (anchor < frame[:, None, None]) & self.anchors.valid[:, None, :]
        return between.sum(dim=2)

    def slot_frames(self) -> torch.Tensor:
        """[B, A + R] frame held by each slot, anchors first, -1 where empty (memory timelines)."""
        frames = torch.cat([self.anchors.frame, self.recent.frame], dim=1)
        valid = torch.cat([self.anchors.valid, self.recent.valid], dim=1)
        return torch.where(valid, frames, torch.full_like(frames, -1))

    def fifo_action(self) -> torch.Tensor:
        """SAM 2's rule: fill the first empty slot, else evict the oldest. [B] int64."""
        frame = torch.where(self.recent.valid, self.recent.frame, torch.full_like(self.recent.frame, -2))
        return frame.argmin(dim=1) + 1

    def apply(self, candidate: Memories, action: torch.Tensor) -> MemoryBank:
        """Return the bank after each track's action on its candidate (see module doc)."""
        action = action.to(self.recent.frame.device).long()
        if bool(((action < 0) | (action >= self.num_actions)).any()):
            raise ValueError(f"actions must be in [0, {self.num_actions - 1}], got {action.tolist()}")
        slots = torch.arange(1, self.num_recent + 1, device=action.device)
        recent = _put(self.recent, candidate, action[:, None] == slots[None])
        anchors = self.anchors
        to_anchor = action == self.anchor_action
        if bool(to_anchor.any()):
            free = ~self.anchors.valid
            full = to_anchor & ~free.any(dim=1)
            if bool(full.any()):
                raise ValueError(f"add-anchor action on tracks {full.nonzero()[:, 0].tolist()}, whose anchor slots are all taken")
            first_free = free.long().argmax(dim=1)
            slot_ids = torch.arange(free.shape[1], device=action.device)
            anchors = _put(self.anchors, candidate, to_anchor[:, None] & (slot_ids[None] == first_free[:, None]))
        return MemoryBank(anchors=anchors, recent=recent, pointers=self.pointers,
                          pointer_frame=self.pointer_frame, batch_size=self.batch_size)

    def push_pointer(self, obj_ptr: torch.Tensor, frame: torch.Tensor) -> MemoryBank:
        """Record this frame's object pointer whatever the action (SAM 2's `recent` pointers; one of
        a frame that is also an anchor is read once, as the anchor's, see `Tracker._pointer_items`)."""
        pointers = torch.cat([obj_ptr[:, None], self.pointers[:, :-1]], dim=1)
        pointer_frame = torch.cat([frame[:, None], self.pointer_frame[:, :-1]], dim=1)
        return MemoryBank(anchors=self.anchors, recent=self.recent, pointers=pointers,
                          pointer_frame=pointer_frame, batch_size=self.batch_size)

    def action_mask(self, allow_discard: bool = True, allow_anchor: bool = False) -> torch.Tensor:
        """[B, num_actions] bool: which actions are legal now."""
        batch = self.batch_size[0]
        device = self.recent.frame.device
        mask = torch.ones(batch, self.num_actions, dtype=torch.bool, device=device)
        mask[:, DISCARD] = allow_discard
        mask[:, self.anchor_action] = allow_anchor & (~self.anchors.valid).any(dim=1)
        return mask


@dataclass(frozen=True)
class ActionLayout:
    """The bank a policy acts on and the actions it may take there: `num_anchor` anchor slots
    (`TrackerSettings.max_anchors`), whether discarding and adding anchors are legal, whether
    writes into empty slots count once (`distinct_writes`), and for how many frames one decision
    holds (`hold`)."""

    num_anchor: int = 1
    allow_discard: bool = True
    allow_anchor: bool = False
    distinct_writes: bool = False
    """Only the first empty recent slot may be written while several are empty: writing any of
    them is the same bank (attention reads memories by age, not by slot), so a policy's
    probability is not split over duplicates of one outcome."""
    hold: int = 1
    """Frames one decision lasts: the decision of frame t is repeated on frames t+1 .. t+hold-1
    (`resume`), so one sampled decision can discard through a whole occlusion, where per-frame
    sampling would have to draw the same deviation from SAM 2's rule many times in a row."""

    @classmethod
    def for_episodes(cls, episode: EpisodeSettings, max_anchors: int) -> ActionLayout:
        """The actions of a recipe's episodes (`env` section) on a bank with `max_anchors` anchor slots."""
        return cls(max_anchors, episode.allow_discard, episode.allow_anchor, episode.distinct_writes, episode.hold)

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise ValueError(f"ActionLayout.hold must be >= 1 frame, got {self.hold}")

    def mask(self, bank: MemoryBank) -> torch.Tensor:
        """[B, num_actions] bool: the actions legal now (`MemoryBank.action_mask`)."""
        mask = bank.action_mask(self.allow_discard, self.allow_anchor)
        if self.distinct_writes:
            empty = ~bank.recent.valid  # [B, R]
            first_empty = empty & (empty.long().cumsum(dim=1) == 1)
            mask[:, 1:bank.num_recent + 1] &= ~empty | first_empty
        return mask

    def resume(self, bank: MemoryBank, decided: torch.Tensor, followed_fifo: torch.Tensor) -> torch.Tensor:
        """[B] the action that carries a held decision on to this frame: SAM 2's own action where the
        decision was SAM 2's (`followed_fifo`), else the same action (discard stays discard, slot k
        stays slot k); SAM 2's action where that is no longer legal (an anchor slot ran out)."""
        fifo = bank.fifo_action().to(decided.device)
        action = torch.where(followed_fifo, fifo, decided)
        legal = self.mask(bank).to(decided.device).gather(1, action[:, None])[:, 0]
        return torch.where(legal, action, fifo)
