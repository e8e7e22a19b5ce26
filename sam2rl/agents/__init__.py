"""PPO agents that control the memory bank, and loading them back as controllers."""

from sam2rl.agents.checkpoint import AgentCheckpointError
from sam2rl.agents.controller import AgentController, load_agent
from sam2rl.agents.networks import EncoderSettings, make_actor_critic
from sam2rl.agents.ppo import PPOModule, PPOSettings

__all__ = ["AgentCheckpointError", "AgentController", "EncoderSettings", "PPOModule", "PPOSettings",
           "load_agent", "make_actor_critic"]
