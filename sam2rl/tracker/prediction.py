"""What one tracked frame produces (`Prediction`, `Step`) and how masks move between the video's
resolution and the model's: the vocabulary the tracker, controllers, rewards and the env share."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from tensordict import tensorclass

from sam2rl.tracker.bank import Memories, MemoryBank

__all__ = ["Actor", "Chooser", "Prediction", "Step", "resize_prompt_mask", "to_video_resolution"]


@tensorclass
class Prediction:
    """What the tracker sees on frame t for B tracks, before any memory decision."""

    low_res_masks: torch.Tensor  # [B, M, S/4, S/4] logits of the M multimask candidates
    high_res_masks: torch.Tensor  # [B, M, S, S] the same, upsampled to the input size
    ious: torch.Tensor  # [B, M] predicted IoU of each candidate
    obj_ptrs: torch.Tensor  # [B, M, C] object pointer each candidate would give
    object_score: torch.Tensor  # [B] object-presence logit (>0: present)
    sam_choice: torch.Tensor  # [B] int64 candidate SAM 2 picks (highest predicted IoU)

    def mask_logits(self, choice: torch.Tensor) -> torch.Tensor:
        """[B, 1, S/4, S/4] low-res logits of the chosen candidates."""
        rows = torch.arange(choice.shape[0], device=choice.device)
        return self.low_res_masks[rows, choice].unsqueeze(1)

    def chosen_high_res(self, choice: torch.Tensor) -> torch.Tensor:
        """[B, S, S] input-size logits of the chosen candidates (`> 0`: the predicted mask)."""
        rows = torch.arange(choice.shape[0], device=choice.device)
        return self.high_res_masks[rows, choice]


Chooser = Callable[[Prediction, MemoryBank], torch.Tensor]
Actor = Callable[[Prediction, Memories, MemoryBank], torch.Tensor]


class Step(NamedTuple):
    """Everything one tracked frame produced, for controllers, rewards and logs."""

    prediction: Prediction
    choice: torch.Tensor  # [B] candidate taken as the prediction
    candidate: Memories  # [B] memory of this frame
    action: torch.Tensor  # [B] what the bank did with it
    bank: MemoryBank  # the bank after the action


def resize_prompt_mask(mask: torch.Tensor, image_size: int) -> torch.Tensor:
    """[B, H, W] bool -> [B, 1, S, S] float in {0, 1}, as `SAM2VideoPredictor.add_new_mask` does."""
    mask = mask[:, None].float()
    if mask.shape[-2:] == (image_size, image_size):
        return mask
    resized = F.interpolate(mask, size=(image_size, image_size), mode="bilinear",
                            align_corners=False, antialias=True)
    return (resized >= 0.5).float()


def to_video_resolution(low_res_logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Upsample [B, 1, h, w] logits to the video size, as the predictor does for its outputs."""
    return F.interpolate(low_res_logits, size=(height, width), mode="bilinear", align_corners=False)
