"""Lightning module that trains a SAM 2 architecture on clips through our tracker core."""

from __future__ import annotations

import lightning as L
import torch
from sam2.modeling.sam2_base import SAM2Base

from sam2rl.pretrain.losses import frame_losses
from sam2rl.schema.pretrain import LossWeights, OptimSettings
from sam2rl.tracker import FeatureCache, Tracker, TrackerSettings, rollout

__all__ = ["TrackerPretraining"]


class TrackerPretraining(L.LightningModule):
    """SAM 2-style training: prompt with the first frame's mask, track the clip with SAM 2's own
    memory rule (FIFO, its candidate choice), average the losses over the tracked frames.

    Tracking goes through `Tracker`, the same code path evaluation and RL use, with gradients.
    """

    def __init__(self, model: SAM2Base, loss: LossWeights, optim: OptimSettings, max_steps: int):
        super().__init__()
        self.model = model
        self.tracker = Tracker(model, TrackerSettings(bank_dtype=torch.float32))
        self.loss_weights = loss
        self.optim = optim
        self.max_steps = max_steps

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        frames, masks = batch  # [B, L, 3, S, S], [B, L, S, S]
        batch_size, length = masks.shape[:2]
        features = FeatureCache.from_backbone(self.model, self.model.forward_image(frames.flatten(0, 1)))
        first = torch.arange(batch_size, device=frames.device) * length
        zeros = torch.zeros(batch_size, dtype=torch.long, device=frames.device)
        _, bank = self.tracker.start(features.gather(first), masks[:, :1].float(), zeros)
        total = torch.full_like(zeros, length)
        sums: dict[str, torch.Tensor] = {}
        for t, tracked in enumerate(rollout(self.tracker, features, bank, zeros, total, offset=first), start=1):
            for key, value in frame_losses(tracked.step.prediction, masks[:, t], self.loss_weights).items():
                sums[key] = sums.get(key, 0) + value / (length - 1)
        w = self.loss_weights
        loss = w.focal * sums["focal"] + w.dice * sums["dice"] + w.iou * sums["iou"] + w.object_score * sums["object_score"]
        self.log_dict({f"train/{k}": v for k, v in sums.items()}, prog_bar=False)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/clip_frames", float(length))
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay)
        warmup, total, floor = self.optim.warmup_steps, max(self.max_steps, 1), self.optim.min_lr_ratio

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item())

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
