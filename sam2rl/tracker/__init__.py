"""SAM 2 tracking over explicit, batched memory banks (sam2's modules, our memory seam)."""

from sam2rl.tracker.bank import DISCARD, Memories, MemoryBank
from sam2rl.tracker.checkpoint import CheckpointError, save_official_checkpoint
from sam2rl.tracker.core import Prediction, Step, Tracker, TrackerSettings, resize_prompt_mask, to_video_resolution
from sam2rl.tracker.features import FeatureCache, FrameFeatures
from sam2rl.tracker.models import MODELS, ModelError, ModelSpec, build_sam2_model, build_sam2_video_predictor

__all__ = [
    "DISCARD", "MODELS", "CheckpointError", "FeatureCache", "FrameFeatures", "Memories", "MemoryBank",
    "ModelError", "ModelSpec", "Prediction", "Step", "Tracker", "TrackerSettings", "build_sam2_model", "build_sam2_video_predictor",
    "resize_prompt_mask",
    "save_official_checkpoint", "to_video_resolution",
]
