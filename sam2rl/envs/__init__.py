"""TorchRL environments over the SAM 2 memory bank."""

from sam2rl.envs.memory_env import TOKEN_FEATURES, EpisodeSettings, SAM2MemoryEnv

__all__ = ["TOKEN_FEATURES", "EpisodeSettings", "SAM2MemoryEnv"]
