"""PPO agents that control the memory bank, and loading them back as controllers."""

from sam2rl.agents.checkpoint import AgentCheckpointError, AgentLayout
from sam2rl.agents.controller import AgentController, load_agent
from sam2rl.agents.networks import make_actor_critic
from sam2rl.agents.ppo import PPOModule

__all__ = ["AgentCheckpointError", "AgentController", "AgentLayout", "PPOModule", "load_agent", "make_actor_critic"]
