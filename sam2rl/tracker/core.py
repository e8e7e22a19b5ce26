"""Batched SAM 2 tracking over a caller-owned memory bank.

`SAM2Base` reads its memories from per-frame dicts inside `_prepare_memory_conditioned_features`;
that seam is the one thing rebuilt here, from a `MemoryBank` with a batch dimension. Everything
else is sam2's own code: `memory_attention`, `_forward_sam_heads`, `_use_mask_as_output`,
`_encode_new_memory` and the positional encodings.

One frame is two calls, so a controller can decide in between:
    prediction = tracker.predict(features, bank, frame, num_frames)    # masks, IoUs, scores
    candidate = tracker.remember(features, prediction, choice, frame)  # memory of frame t
then the controller's action goes to `bank.apply(candidate, action)`.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import get_1d_sine_pe
from sam2.sam2_video_predictor import SAM2VideoPredictorVOS
from omegaconf import OmegaConf

from sam2rl.tracker.bank import Memories, MemoryBank
from sam2rl.tracker.features import FeatureCache, FrameFeatures, bfloat16_autocast
from sam2rl.tracker.models import ModelError, ModelSpec, build_sam2_model, checkpoint_digest, model_config
from sam2rl.tracker.prediction import Actor, Chooser, Prediction, Step

__all__ = ["Tracker", "TrackerSettings"]

_MEMORY_SEAM_SETTINGS = {"max_cond_frames_in_attn": -1, "memory_temporal_stride_for_eval": 1,
                         "only_obj_ptrs_in_the_past_for_eval": True}
"""`SAM2Base` settings that `Tracker._condition` takes as every official config (and ours) sets them."""


@dataclass(frozen=True)
class TrackerSettings:
    """How the tracker reads and stores memories."""

    pointer_source: Literal["recent", "bank"] = "recent"
    """Object pointers: SAM 2's last 15 tracked frames (`recent`), or those of the bank's slots."""
    max_anchors: int = 1
    """Anchor (t_pos 0) slots per track; the prompt takes the first."""
    anchors_in_window: bool = False
    """Anchors between a recent memory and the current frame take a place in the recent window, as
    SAM 2's conditioning frames do (it reads its last num_maskmem - 1 frames by distance, and a
    conditioning frame among them leaves its place empty); memories pushed out are not read. Off, the
    recent slots are numbered among themselves. `SAM2RLVideoPredictor` turns it on (prompts on
    several frames, passes that start from earlier tracking)."""
    bank_dtype: torch.dtype = torch.bfloat16
    """Memory features are stored as `SAM2VideoPredictor` stores them (bfloat16)."""
    feature_dtype: torch.dtype = torch.float32
    """Cached image features; bfloat16/float16 halve the cache."""
    autocast: bool = False
    """bfloat16 autocast for the network calls (CUDA, or CPUs with bfloat16 matmul units)."""
    compile: bool = False
    """Run the per-frame modules under `torch.compile`, as sam2's `SAM2VideoPredictorVOS`
    (`Tracker.from_spec` builds that class); the first frames of each new shape compile."""


def _keep_decoder_tokens(decoder: torch.nn.Module) -> None:
    """Keep the mask decoder's output tokens (one per candidate), which `_forward_sam_heads` uses
    only for its own choice; a controller choosing another candidate needs that one's pointer."""
    if getattr(decoder, "sam2rl_tokens_hooked", False):
        return

    def keep(module: torch.nn.Module, inputs: object, outputs: tuple) -> None:
        # cloned: a compiled decoder's outputs live in CUDA-graph memory its next call reuses
        module.sam2rl_tokens = outputs[2].clone()  # MaskDecoder returns (masks, ious, sam_tokens_out, object_scores)

    decoder.register_forward_hook(keep)
    decoder.sam2rl_tokens_hooked = True


class Tracker:
    """A SAM 2 model that tracks B objects at once over explicit, caller-owned memory banks."""

    def __init__(self, model: SAM2Base, settings: TrackerSettings = TrackerSettings(),
                 spec: ModelSpec | None = None, weights_digest: str = "unknown"):
        differs = {key: getattr(model, key) for key, value in _MEMORY_SEAM_SETTINGS.items() if getattr(model, key) != value}
        if differs:
            raise ModelError(f"model settings {differs}: the tracker's memory seam reads memories as SAM 2's "
                             f"configs set them ({_MEMORY_SEAM_SETTINGS}) and would silently differ from SAM 2")
        if settings.compile and not isinstance(model, SAM2VideoPredictorVOS):
            raise ValueError(f"TrackerSettings(compile=True) needs a model built with compiled=True "
                             f"(sam2's SAM2VideoPredictorVOS), got {type(model).__name__}")
        self.model = model
        self.settings = settings
        self.spec = spec
        self.weights_digest = weights_digest
        size = self.image_size // model.backbone_stride
        self.memory_shape = (model.mem_dim, size, size)
        with torch.no_grad():  # the memory encoder's sine encoding depends only on the shape
            pos = model.memory_encoder.position_encoding(torch.zeros(1, *self.memory_shape, device=model.device))
        self._memory_pos = pos.flatten(2).permute(2, 0, 1)[:, 0]  # [hw, C_mem]
        _keep_decoder_tokens(model.sam_mask_decoder)

    @classmethod
    def from_spec(cls, spec: ModelSpec, device: str | torch.device = "cpu",
                  settings: TrackerSettings = TrackerSettings()) -> Tracker:
        """Build the model `spec` names (its checkpoint loaded strictly, or random weights on request)."""
        model, checkpoint = build_sam2_model(spec, device, compiled=settings.compile)
        return cls(model, settings, spec, checkpoint_digest(checkpoint, spec.seed))

    def with_anchors(self, max_anchors: int) -> Tracker:
        """The same model and settings with banks of `max_anchors` anchor slots (shares the weights)."""
        return self.with_settings(max_anchors=max_anchors)

    def with_settings(self, **changes: object) -> Tracker:
        """The same model with some `TrackerSettings` changed (shares the weights; self if none change)."""
        settings = replace(self.settings, **changes)
        if settings == self.settings:
            return self
        return Tracker(self.model, settings, self.spec, self.weights_digest)

    @cached_property
    def identity(self) -> dict[str, str]:
        """What makes two trackers give the same outputs: config, weights, input size (computed once)."""
        config = OmegaConf.to_yaml(model_config(self.spec)) if self.spec is not None else "unknown"
        return {
            "model": self.spec.name if self.spec is not None else type(self.model).__name__,
            "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
            "weights_sha256": self.weights_digest,
            "image_size": str(self.image_size),
        }

    # -- sizes -------------------------------------------------------------------------------

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def num_recent(self) -> int:
        return self.model.num_maskmem - 1

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_bank(self, batch_size: int) -> MemoryBank:
        """[B] empty banks laid out for this model and `settings.max_anchors`."""
        return MemoryBank.empty(
            batch_size, self.num_recent, self.settings.max_anchors, self.model.max_obj_ptrs_in_encoder - 1,
            self.memory_shape, self.model.hidden_dim, self.settings.bank_dtype, self.device,
        )

    def encode_frames(self, frames: torch.Tensor, chunk: int = 8) -> FeatureCache:
        """Image features of [T, 3, S, S] frames."""
        return FeatureCache.build(self.model, frames, dtype=self.settings.feature_dtype, chunk=chunk,
                                  autocast=self.settings.autocast)

    def _autocast(self) -> AbstractContextManager:
        return bfloat16_autocast(self.device, self.settings.autocast)

    # -- prompt frame --------------------------------------------------------------------------

    def prompt(self, features: FrameFeatures, masks: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, Memories]:
        """Mask prompts [B, 1, S, S] on their frames -> (low-res logits, the anchor memory).

        As `SAM2VideoPredictor`: the mask is taken as the output, and its memory is encoded
        from the binarised, upsampled low-res mask when propagation starts.
        """
        with self._autocast():
            low, _, ious, _, _, obj_ptr, score = self.model._use_mask_as_output(features.top, features.high_res, masks)
        return low, self._anchor(features, low, ious[:, 0], obj_ptr, score, frame)

    def _anchor(self, features: FrameFeatures, low: torch.Tensor, iou: torch.Tensor, obj_ptr: torch.Tensor,
                score: torch.Tensor, frame: torch.Tensor) -> Memories:
        with self._autocast():
            high = F.interpolate(low, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
            memory = self._encode(features, high, score, from_prompt=True)
        return self._memories(memory, obj_ptr, frame, score[:, 0], iou, high)

    # -- tracked frames ------------------------------------------------------------------------

    def predict(self, features: FrameFeatures, bank: MemoryBank, frame: torch.Tensor,
                num_frames: torch.Tensor) -> Prediction:
        """Condition frame t on each track's bank and run the SAM heads (all candidates)."""
        model = self.model
        with self._autocast():
            pix_feat = self._condition(features, bank, frame.to(self.device), num_frames.to(self.device))
            multimask = model._use_multimask(is_init_cond_frame=False, point_inputs=None)
            low, high, ious, _, _, _, score = model._forward_sam_heads(
                backbone_features=pix_feat, high_res_features=features.high_res, multimask_output=multimask
            )
            obj_ptrs = self._candidate_pointers(model.sam_mask_decoder.sam2rl_tokens, score, low.shape[1])
        return Prediction(low_res_masks=low, high_res_masks=high, ious=ious.float(), obj_ptrs=obj_ptrs,
                          object_score=score[:, 0].float(), sam_choice=ious.argmax(dim=1),
                          batch_size=[low.shape[0]])

    def remember(self, features: FrameFeatures, prediction: Prediction, choice: torch.Tensor,
                 frame: torch.Tensor) -> Memories:
        """Encode the chosen candidate of frame t into a memory (not yet in any bank)."""
        rows = torch.arange(choice.shape[0], device=choice.device)
        high = prediction.high_res_masks[rows, choice].unsqueeze(1)
        score = prediction.object_score[:, None]
        with self._autocast():
            memory = self._encode(features, high, score, from_prompt=False)
        return self._memories(memory, prediction.obj_ptrs[rows, choice], frame, prediction.object_score,
                              prediction.ious[rows, choice], high)

    def start(self, features: FrameFeatures, masks: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, MemoryBank]:
        """New banks for B tracks prompted on `frame`: (prompt low-res logits, banks with the prompt anchor)."""
        low, anchor = self.prompt(features, masks, frame)
        return low, self.anchored_bank(anchor)

    def anchored_bank(self, anchor: Memories) -> MemoryBank:
        """[B] new banks holding one memory each, `anchor` (a prompt's), in their first anchor slot."""
        bank = self.new_bank(anchor.batch_size[0])
        return bank.apply(anchor, torch.full_like(anchor.frame, bank.anchor_action))

    def step(self, features: FrameFeatures, bank: MemoryBank, frame: torch.Tensor, num_frames: torch.Tensor,
             choose: Chooser | None = None, act: Actor | None = None) -> Step:
        """One tracked frame: predict, pick a candidate, encode it, apply the action.

        Without `choose`/`act` this is SAM 2 itself (highest predicted IoU, FIFO memory).
        """
        prediction = self.predict(features, bank, frame, num_frames)
        choice = prediction.sam_choice if choose is None else choose(prediction, bank)
        candidate = self.remember(features, prediction, choice, frame)
        action = bank.fifo_action() if act is None else act(prediction, candidate, bank)
        new_bank = bank.apply(candidate, action).push_pointer(candidate.obj_ptr, candidate.frame)
        return Step(prediction, choice, candidate, action, new_bank)

    # -- internals -----------------------------------------------------------------------------

    def _encode(self, features: FrameFeatures, high_res_masks: torch.Tensor, score: torch.Tensor,
                from_prompt: bool) -> torch.Tensor:
        memory, _ = self.model._encode_new_memory(
            current_vision_feats=[features.vision_feats[-1]], feat_sizes=[features.feat_sizes[-1]],
            pred_masks_high_res=high_res_masks, object_score_logits=score, is_mask_from_pts=from_prompt,
        )
        return memory

    def _memories(self, features: torch.Tensor, obj_ptr: torch.Tensor, frame: torch.Tensor, score: torch.Tensor,
                  iou: torch.Tensor, high_res_mask: torch.Tensor) -> Memories:
        batch = features.shape[0]
        return Memories(
            features=features.to(self.settings.bank_dtype), obj_ptr=obj_ptr.float(),
            frame=frame.to(self.device).long(), object_score=score.float(), iou=iou.float(),
            area=(high_res_mask > 0).flatten(1).float().mean(dim=1),
            valid=torch.ones(batch, dtype=torch.bool, device=self.device), batch_size=[batch],
        )

    def _candidate_pointers(self, tokens: torch.Tensor, score: torch.Tensor, num_candidates: int) -> torch.Tensor:
        """Object pointer of every candidate, with the no-object mixing of `_forward_sam_heads`."""
        model = self.model
        ptrs = model.obj_ptr_proj(tokens)  # [B, M or 1, C]
        if model.pred_obj_scores:
            present = score.sigmoid() if model.soft_no_obj_ptr else (score > 0).float()
            present = present[:, :, None]
            if model.fixed_no_obj_ptr:
                ptrs = present * ptrs
            ptrs = ptrs + (1 - present) * model.no_obj_ptr
        return ptrs.expand(-1, num_candidates, -1).float()

    def _condition(self, features: FrameFeatures, bank: MemoryBank, frame: torch.Tensor,
                   num_frames: torch.Tensor) -> torch.Tensor:
        """The memory seam of SAM 2: fuse frame t with each track's memories.

        Tracks with the same number of memories and pointers go through one memory-attention
        call (sam2's attention takes no padding mask); in steady state that is the whole batch.
        """
        model = self.model
        batch, channels = features.top.shape[:2]
        height, width = features.feat_sizes[-1]
        num_anchor = bank.anchors.valid.shape[1]
        spatial = torch.cat([bank.anchors, bank.recent], dim=1)  # Memories [B, A + R]
        # temporal position: anchors 0; recent slots by recency, newest num_maskmem - 1
        newer = bank.newer_count()
        if self.settings.anchors_in_window:
            newer = newer + bank.anchors_between(frame)
        recent_tpos = model.num_maskmem - 1 - newer
        tpos = torch.cat([torch.zeros_like(bank.anchors.frame), recent_tpos], dim=1)
        # read: every anchor and each recent memory still in the window (all of them, unless anchors_in_window)
        read = spatial.valid & torch.cat([torch.ones_like(bank.anchors.valid), recent_tpos > 0], dim=1)
        # sequence order as SAM 2's: anchors in slot order, then recent oldest first; unread last
        slot_key = torch.cat([torch.arange(num_anchor, device=frame.device).expand(batch, -1), num_anchor + tpos[:, num_anchor:]], dim=1)
        slot_key = torch.where(read, slot_key, torch.full_like(slot_key, 1 << 30))
        spatial_order = slot_key.argsort(dim=1, stable=True)
        num_spatial = read.sum(dim=1)

        ptrs, ptr_dist, ptr_valid = self._pointer_items(bank, frame, num_frames)
        ptr_order = (~ptr_valid).long().argsort(dim=1, stable=True)
        num_ptrs = ptr_valid.sum(dim=1)
        max_ptrs = torch.clamp(num_frames, max=model.max_obj_ptrs_in_encoder)

        out = torch.empty(height * width, batch, channels, device=features.top.device, dtype=features.top.dtype)
        groups = torch.stack([num_spatial, num_ptrs], dim=1)
        for counts in groups.unique(dim=0):
            n_spatial, n_ptrs = int(counts[0]), int(counts[1])
            rows = (groups == counts).all(dim=1).nonzero()[:, 0]
            if n_spatial == 0:
                raise ValueError(f"tracks {rows.tolist()} have no memory (no prompt anchor) at frames {frame[rows].tolist()}")
            picked = spatial_order[rows, :n_spatial]
            memory, memory_pos = self._spatial_tokens(spatial.features[rows[:, None], picked], tpos[rows[:, None], picked])
            if n_ptrs:
                take = ptr_order[rows, :n_ptrs]
                tokens, tokens_pos = self._pointer_tokens(
                    ptrs[rows[:, None], take], ptr_dist[rows[:, None], take].float(), max_ptrs[rows] - 1
                )
                memory = torch.cat([memory, tokens])
                memory_pos = torch.cat([memory_pos, tokens_pos])
            curr = features.top[rows].flatten(2).permute(2, 0, 1)
            fused = model.memory_attention(
                curr=[curr], curr_pos=[features.pos_top[:, rows]], memory=memory, memory_pos=memory_pos,
                num_obj_ptr_tokens=n_ptrs * (model.hidden_dim // model.mem_dim) if n_ptrs else 0,
            )
            out[:, rows] = fused.to(out.dtype)
        return out.permute(1, 2, 0).reshape(batch, channels, height, width)  # (HW)BC => BCHW

    def _spatial_tokens(self, feats: torch.Tensor, tpos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[G, N, C_mem, h, w] memories -> (N*hw, G, C_mem) tokens and their encodings."""
        model = self.model
        group, count, mem_dim = feats.shape[:3]
        memory_pos = self._memory_pos.to(feats.device)
        dtype = memory_pos.dtype
        tokens = feats.to(dtype).flatten(3).permute(1, 3, 0, 2).reshape(-1, group, mem_dim)
        time_enc = model.maskmem_tpos_enc[model.num_maskmem - tpos - 1].reshape(group, count, mem_dim)
        pos = memory_pos[None, :, None, :] + time_enc.permute(1, 0, 2)[:, None]
        return tokens, pos.reshape(-1, group, mem_dim)

    def _pointer_items(self, bank: MemoryBank, frame: torch.Tensor,
                       num_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Object pointers a track attends to: anchors' first, then `recent` history or bank slots."""
        model = self.model
        batch = frame.shape[0]
        if not model.use_obj_ptrs_in_encoder:
            empty = torch.zeros(batch, 0, device=frame.device)
            return empty[..., None], empty.long(), empty.bool()
        anchor_dist = frame[:, None] - bank.anchors.frame
        anchor_ok = bank.anchors.valid & (anchor_dist >= 0)
        if self.settings.pointer_source == "recent":
            other, other_frame = bank.pointers, bank.pointer_frame
            other_ok = other_frame >= 0
        else:
            other, other_frame, other_ok = bank.recent.obj_ptr, bank.recent.frame, bank.recent.valid
        other_dist = frame[:, None] - other_frame
        window = torch.clamp(num_frames, max=model.max_obj_ptrs_in_encoder)[:, None]
        other_ok = other_ok & (other_dist >= 1) & (other_dist < window)
        # a frame kept as an anchor gives its pointer once, as an anchor: SAM 2 keeps a frame's output in
        # its conditioning or its non-conditioning outputs, never both
        anchored = (other_frame[:, :, None] == bank.anchors.frame[:, None, :]) & bank.anchors.valid[:, None, :]
        other_ok = other_ok & ~anchored.any(dim=2)
        if self.settings.pointer_source == "bank":  # slots in frame order, newest first, as SAM 2 lists them
            order = torch.where(other_ok, other_dist, torch.full_like(other_dist, 1 << 30)).argsort(dim=1, stable=True)
            other, other_dist, other_ok = other.gather(1, order[..., None].expand_as(other)), other_dist.gather(1, order), other_ok.gather(1, order)
        return (torch.cat([bank.anchors.obj_ptr, other], dim=1), torch.cat([anchor_dist, other_dist], dim=1),
                torch.cat([anchor_ok, other_ok], dim=1))

    def _pointer_tokens(self, ptrs: torch.Tensor, dist: torch.Tensor, t_diff_max: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[G, N, C] pointers -> (N*C/C_mem, G, C_mem) tokens with temporal encodings (as SAM 2)."""
        model = self.model
        group, count, channels = ptrs.shape
        mem_dim = model.mem_dim
        if model.add_tpos_enc_to_obj_ptrs:
            tpos_dim = channels if model.proj_tpos_enc_in_obj_ptrs else mem_dim
            pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(dist / t_diff_max[:, None].float(), dim=tpos_dim))
        else:
            pos = ptrs.new_zeros(group, count, mem_dim)
        split = channels // mem_dim
        tokens = ptrs.reshape(group, count * split, mem_dim).permute(1, 0, 2)
        pos = pos.repeat_interleave(split, dim=1).permute(1, 0, 2)
        return tokens, pos
