"""SAM 2 tracking over explicit, batched memory banks (sam2's modules, our memory seam), and the frame loop."""

from sam2rl.tracker.bank import DISCARD, Memories, MemoryBank
from sam2rl.tracker.checkpoint import CheckpointError, save_official_checkpoint
from sam2rl.tracker.core import Tracker, TrackerSettings
from sam2rl.tracker.features import FeatureCache, Features, FrameFeatures
from sam2rl.tracker.models import MODELS, ModelError, ModelSpec, build_sam2_model, build_sam2_video_predictor
from sam2rl.tracker.prediction import Prediction, Step, resize_prompt_mask, to_video_resolution
from sam2rl.tracker.rollout import RunRecorder, TrackedFrame, TrackRun, rollout
from sam2rl.tracker.store import FeatureBudget, FeatureMemory, FeatureStore, FeatureViews
from sam2rl.tracker.video import feature_folder, ground_truth_masks, video_features

__all__ = [
    "DISCARD", "MODELS", "CheckpointError", "FeatureBudget", "FeatureCache", "FeatureMemory", "FeatureStore",
    "FeatureViews", "Features", "FrameFeatures", "Memories", "MemoryBank", "ModelError", "ModelSpec", "Prediction",
    "RunRecorder", "Step", "TrackRun", "TrackedFrame", "Tracker", "TrackerSettings", "build_sam2_model",
    "build_sam2_video_predictor", "feature_folder", "ground_truth_masks", "resize_prompt_mask", "rollout",
    "save_official_checkpoint", "to_video_resolution", "video_features",
]
