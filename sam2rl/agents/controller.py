"""A trained agent as a memory controller: usable in `sam2rl eval`, the predictor and the env."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from sam2rl.agents.checkpoint import read_agent_checkpoint
from sam2rl.agents.networks import make_actor_critic, parameter_device
from sam2rl.controllers import Controller, register_prefix
from sam2rl.envs.observation import observe
from sam2rl.datasets import Track, VideoSequence
from sam2rl.schema.agent import EncoderSettings
from sam2rl.tracker import Features, Memories, MemoryBank, Prediction, Tracker
from sam2rl.tracker.bank import ActionLayout

__all__ = ["AgentController", "ObservingController", "PerTrackAgents", "load_agent"]


class ObservingController(Controller):
    """A controller that sees each frame as a policy sees it in training (`observe`), so what a
    trained agent acts on and what a teacher's demonstrations record are the same features."""

    def __init__(self, actions: ActionLayout = ActionLayout()):
        self.actions = actions  # the bank and legal actions a policy was trained on
        self.max_anchors = actions.num_anchor
        self._start: torch.Tensor | None = None
        self._end: torch.Tensor | None = None

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        self._start, self._end = start_frame, num_frames

    def observation(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> TensorDict:
        """tokens, global, fifo_action, action_mask: the environment's observation of this frame."""
        if self._start is None:
            raise RuntimeError(f"{type(self).__name__}: begin_episode() must be called before act()")
        mask = self.actions.mask(bank)
        return observe(bank, candidate, prediction, candidate.frame, self._start, self._end, mask)


class AgentController(ObservingController):
    """Greedy (most likely) action of a trained policy, from the same observation as in training.

    The policy runs in eval mode and is handed back in the mode it came in, so scoring a policy
    that is still training (the greedy checks) leaves its training alone."""

    name = "agent"

    def __init__(self, actor: torch.nn.Module, actions: ActionLayout = ActionLayout()):
        super().__init__(actions)
        self.actor = actor
        self._held: tuple[torch.Tensor, torch.Tensor, int] | None = None  # last action, followed FIFO, frames left

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        super().begin_episode(start_frame, num_frames)
        self._held = None

    @torch.no_grad()
    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        if self._held is not None and self._held[2] > 0:  # a decision still holds (`ActionLayout.hold`)
            last, followed_fifo, left = self._held
            action = self.actions.resume(bank, last, followed_fifo)
            self._held = (action, followed_fifo, left - 1)
            return action
        obs = self.observation(prediction, candidate, bank).to(parameter_device(self.actor))
        training = self.actor.training
        self.actor.eval()
        try:
            with set_exploration_type(ExplorationType.DETERMINISTIC):
                action = self.actor(obs)["action"].to(bank.device)
        finally:
            self.actor.train(training)
        self._held = (action, action == bank.fifo_action(), self.actions.hold - 1)
        return action


def load_agent(path: str | Path, tracker: Tracker | None = None, force: bool = False) -> AgentController:
    """Load a trained agent; with `tracker`, refuse one trained on another SAM 2 unless `force`."""
    payload = read_agent_checkpoint(path, None if tracker is None else tracker.identity, force)
    layout = payload["layout"]
    actor, _ = make_actor_critic(layout.token_dim, layout.global_dim, layout.actions.num_anchor, layout.num_recent,
                                 EncoderSettings(**payload["encoder"]))
    actor.load_state_dict(payload["actor"])
    controller = AgentController(actor, layout.actions)
    controller.name = f"agent:{Path(path).name}"
    return controller


class PerTrackAgents(Controller):
    """SAM2RL's per-video setting as one controller: each track is driven by its own agent.

    Rows follow `track_video`'s batching: the bound tracks that share the episode's prompt frame,
    in the order they were given.
    """

    def __init__(self, agents: dict[tuple[str, int], AgentController], name: str = "agent (per video)"):
        anchors = {agent.max_anchors for agent in agents.values()}
        if len(anchors) != 1:
            raise ValueError(f"{name}: agents trained on different bank layouts (anchors {sorted(anchors)})")
        self.agents = agents
        self.name = name
        self.max_anchors = anchors.pop()
        self._tracks: list[Track] = []
        self._rows: dict[AgentController, torch.Tensor] = {}

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: Features | None = None) -> Controller:
        self._tracks = video.tracks() if tracks is None else list(tracks)
        missing = [f"{t.sequence}:{t.object_id}" for t in self._tracks if (t.sequence, t.object_id) not in self.agents]
        if missing:
            raise ValueError(f"{self.name}: no agent for track(s) {', '.join(missing)}")
        return self

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        group = [t for t in self._tracks if t.prompt_frame == int(start_frame[0])]
        self._rows = {}
        for row, track in enumerate(group):
            agent = self.agents[(track.sequence, track.object_id)]
            self._rows[agent] = torch.cat([self._rows.get(agent, torch.empty(0, dtype=torch.long)), torch.tensor([row])])
        for agent, rows in self._rows.items():
            agent.begin_episode(start_frame[rows.to(start_frame.device)], num_frames[rows.to(num_frames.device)])

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        action = torch.empty(bank.batch_size[0], dtype=torch.long, device=bank.device)
        for agent, rows in self._rows.items():
            rows = rows.to(bank.device)
            action[rows] = agent.act(prediction[rows], candidate[rows], bank[rows])
        return action


register_prefix("agent:", lambda path: partial(load_agent, path))  # `agent:PATH` names a trained agent
