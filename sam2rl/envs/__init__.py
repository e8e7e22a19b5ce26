"""TorchRL environments over the SAM 2 memory bank."""

from sam2rl.envs.memory_env import EpisodeSettings, SAM2MemoryEnv, has_decisions
from sam2rl.envs.observation import TOKEN_FEATURES, observe

__all__ = ["TOKEN_FEATURES", "EpisodeSettings", "SAM2MemoryEnv", "has_decisions", "observe"]
