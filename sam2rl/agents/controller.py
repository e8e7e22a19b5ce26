"""A trained agent as a memory controller: usable in `sam2rl eval`, the predictor and the env."""

from __future__ import annotations

from pathlib import Path

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from sam2rl.agents.checkpoint import read_agent_checkpoint
from sam2rl.agents.networks import EncoderSettings, make_actor_critic
from sam2rl.controllers import Controller
from sam2rl.envs.observation import observe
from sam2rl.tracker import Memories, MemoryBank, Prediction, Tracker

__all__ = ["AgentController", "load_agent"]


class AgentController(Controller):
    """Greedy (most likely) action of a trained policy, from the same observation as in training."""

    name = "agent"

    def __init__(self, actor: torch.nn.Module, allow_discard: bool = True, allow_anchor: bool = False):
        self.actor = actor.eval()
        self.allow_discard = allow_discard
        self.allow_anchor = allow_anchor
        self._start: torch.Tensor | None = None
        self._end: torch.Tensor | None = None

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        self._start, self._end = start_frame, num_frames

    @torch.no_grad()
    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        if self._start is None:
            raise RuntimeError("AgentController: begin_episode() must be called before act()")
        mask = bank.action_mask(self.allow_discard, self.allow_anchor)
        obs = observe(bank, candidate, prediction, candidate.frame, self._start, self._end, mask)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            return self.actor(obs)["action"]


def load_agent(path: str | Path, tracker: Tracker | None = None, force: bool = False) -> AgentController:
    """Load a trained agent; with `tracker`, refuse one trained on another SAM 2 unless `force`."""
    payload = read_agent_checkpoint(path, None if tracker is None else tracker.identity, force)
    layout = payload["layout"]
    actor, _ = make_actor_critic(layout["token_dim"], layout["global_dim"], layout["num_anchor"],
                                 layout["num_recent"], EncoderSettings(**payload["encoder"]))
    actor.load_state_dict(payload["actor"])
    controller = AgentController(actor, layout["allow_discard"], layout["allow_anchor"])
    controller.name = f"agent:{Path(path).name}"
    return controller
