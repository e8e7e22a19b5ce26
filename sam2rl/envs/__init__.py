"""TorchRL environments over the SAM 2 memory bank."""

from sam2rl.envs.memory_env import SAM2MemoryEnv, has_decisions
from sam2rl.envs.observation import TOKEN_FEATURES, observe, token_dim

__all__ = ["TOKEN_FEATURES", "SAM2MemoryEnv", "has_decisions", "observe", "token_dim"]
