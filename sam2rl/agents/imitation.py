"""Warm-start a policy by imitating a teacher controller on the training tracks (behaviour cloning).

A policy that starts at SAM 2's rule (`agent.fifo_prior`) has to find by trial the deviations
whose payoff shows up frames later, one sampled deviation at a time. A teacher that reads the
ground truth of the training tracks (the look-ahead oracle) shows them directly. Cloning its
decisions gives PPO a start that already departs from FIFO where that pays; PPO then goes on
from there with its own rollouts (the oracle is greedy, so it is a start, not a ceiling).

Only training tracks are demonstrated: in the per-video setting that is the video the agent is
trained on (whose ground truth PPO's reward reads anyway), for a generalist its training split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDict

from sam2rl.agents.controller import ObservingController
from sam2rl.agents.networks import parameter_device
from sam2rl.controllers import Controller
from sam2rl.datasets import Track, VideoDataset, VideoSequence
from sam2rl.controllers import track_video
from sam2rl.tracker import FeatureCache, Memories, MemoryBank, Prediction, Tracker

__all__ = ["DemonstrationRecorder", "ImitationSettings", "check_teacher", "imitate", "record_demonstrations"]


@dataclass
class ImitationSettings:
    teacher: str | None = None
    """Controller to imitate before PPO (a `sam2rl eval` name, e.g. "oracle"); None: no warm start."""
    teacher_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the teacher, e.g. {margin: 0.02} for the oracle."""
    steps: int = 300
    """Gradient steps (minibatches drawn in shuffled passes over the demonstrations), so one video's
    40-odd decisions get as many updates as a whole training split's."""
    lr: float = 1e-3
    minibatch_size: int = 64
    rounds: int = 1
    """DAgger rounds: after the first clone, the clone drives the tracker on the training tracks, the
    teacher labels every frame it visits, and the policy is cloned again on all labels so far, so it
    also knows what to do off the teacher's own trajectory."""
    improve_rounds: int = 0
    """Rounds of policy iteration by rollouts after the clone: the oracle scores every action at
    every frame by following the current policy to the end of the video (`OracleController` with
    `lookahead=None` and the policy as `continuation`), and the policy is cloned from that run,
    which is at least as good as the policy's own (expert iteration with an exact, if costly,
    expert). Stops early once the policy agrees with it everywhere."""
    label_smoothing: float = 0.0
    """Share of the target spread over all legal actions: the clone still takes the teacher's action
    greedily but keeps sampling others, so PPO after it still explores (0.3 with 8 actions gives
    the teacher's action about the probability `agent.fifo_prior` 3 gives FIFO's)."""


def check_teacher(teacher: Controller) -> None:
    """ValueError unless `teacher` acts frame by frame (a whole-video search cannot be imitated)."""
    if callable(getattr(teacher, "track_video", None)):
        raise ValueError(f"teacher {teacher.name!r} searches whole videos instead of acting frame by frame; "
                         "it cannot be imitated step by step")


class DemonstrationRecorder(ObservingController):
    """Keeps each frame's observation with `teacher`'s action; the tracker follows the teacher, or
    `student` when given (DAgger: the teacher labels the states the student visits)."""

    def __init__(self, teacher: Controller, allow_discard: bool = True, allow_anchor: bool = False, num_anchor: int = 1,
                 student: Controller | None = None):
        check_teacher(teacher)
        super().__init__(allow_discard, allow_anchor, num_anchor)
        self.teacher = teacher
        self.student = student
        self.name = f"demonstrations of {teacher.name}"
        self.steps: list[TensorDict] = []

    def reset(self, batch_size: int) -> None:
        self.teacher.reset(batch_size)

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: FeatureCache | None = None) -> Controller:
        self.teacher.bind_video(tracker, video, tracks, features)
        return self

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        super().begin_episode(start_frame, num_frames)
        self.teacher.begin_episode(start_frame, num_frames)
        if self.student is not None:
            self.student.begin_episode(start_frame, num_frames)

    def choose(self, prediction: Prediction, bank: MemoryBank) -> torch.Tensor:
        taught = self.teacher.choose(prediction, bank)  # also keeps a stateful teacher (SAMURAI's motion model) going
        return taught if self.student is None else self.student.choose(prediction, bank)  # DAgger: the student's states

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        obs = self.observation(prediction, candidate, bank)
        action = self.teacher.act(prediction, candidate, bank)
        legal = obs["action_mask"].gather(1, action[:, None].long())[:, 0]
        if not bool(legal.all()):
            raise ValueError(f"teacher {self.teacher.name!r} took actions {action[~legal].tolist()} that the agent "
                             "may not take (see env.allow_discard / env.allow_anchor)")
        obs["action"] = action.long()
        self.steps.append(obs.cpu())
        return action if self.student is None else self.student.act(prediction, candidate, bank)


def record_demonstrations(tracker: Tracker, dataset: VideoDataset, tracks: Sequence[Track],
                          features: Mapping[str, FeatureCache], teacher: Controller, allow_discard: bool = True,
                          allow_anchor: bool = False, student: Controller | None = None) -> TensorDict:
    """[N] observations (`tokens`, `global`, `fifo_action`, `action_mask`) and the teacher's `action`,
    one row per decision on `tracks` (each tracked from its prompt frame to the end of its video,
    by the teacher, or by `student` with the teacher's labels)."""
    recorder = DemonstrationRecorder(teacher, allow_discard, allow_anchor, tracker.settings.max_anchors, student)
    for name in sorted({t.sequence for t in tracks}):
        video, chosen = dataset[name], [t for t in tracks if t.sequence == name]
        recorder.bind_video(tracker, video, chosen, features[name])
        track_video(tracker, video, recorder, chosen, features[name])
    if not recorder.steps:
        raise ValueError("record_demonstrations: the tracks have no frame after their prompt frame")
    return torch.cat(recorder.steps)  # concatenated outside inference mode: plain tensors that can feed autograd


def imitate(actor: torch.nn.Module, demonstrations: TensorDict, settings: ImitationSettings,
            seed: int = 0) -> dict[str, object]:
    """Behaviour cloning: minimise -log pi(teacher's action | observation) over `demonstrations`.

    Returns what a report needs: the mean loss over each tenth of the steps, and how often the
    greedy policy agrees with the teacher, overall and where the teacher departs from FIFO, before
    and after.
    """
    if settings.steps < 1 or settings.minibatch_size < 1:
        raise ValueError(f"imitation: steps and minibatch_size must be >= 1, got {settings.steps}, {settings.minibatch_size}")
    if not 0 <= settings.label_smoothing < 1:
        raise ValueError(f"imitation: label_smoothing must be in [0, 1), got {settings.label_smoothing}")
    generator = torch.Generator().manual_seed(seed)
    demonstrations = demonstrations.to(parameter_device(actor))  # recorded on the CPU
    optimiser = torch.optim.Adam(actor.parameters(), lr=settings.lr)
    count = demonstrations.batch_size[0]
    departs = demonstrations["action"] != demonstrations["fifo_action"].argmax(-1)
    before = _agreement(actor, demonstrations, departs)
    losses = torch.zeros(settings.steps)
    order = torch.empty(0, dtype=torch.long)
    actor.train()
    for step in range(settings.steps):
        if order.numel() < min(settings.minibatch_size, count):
            order = torch.cat([order, torch.randperm(count, generator=generator)])
        rows, order = order[:settings.minibatch_size], order[settings.minibatch_size:]
        batch = demonstrations[rows]
        log_probs = actor.get_dist(batch).logits.log_softmax(-1)
        legal = batch["action_mask"]
        spread = log_probs.masked_fill(~legal, 0).sum(-1) / legal.sum(-1)
        teacher = log_probs.gather(-1, batch["action"][:, None])[:, 0]
        loss = -((1 - settings.label_smoothing) * teacher + settings.label_smoothing * spread).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses[step] = loss.detach()
    curve = [float(chunk.mean()) for chunk in losses.tensor_split(min(10, settings.steps))]
    return {"decisions": count, "teacher_departs_from_fifo": float(departs.float().mean()), "loss": curve,
            "agreement_before": before, "agreement_after": _agreement(actor, demonstrations, departs)}


@torch.no_grad()
def _agreement(actor: torch.nn.Module, demonstrations: TensorDict, departs: torch.Tensor) -> dict[str, float]:
    greedy = actor.get_dist(demonstrations.copy()).mode  # a shallow copy: the actor writes its logits into it
    same = greedy == demonstrations["action"]
    return {"all": float(same.float().mean()),
            "where_teacher_departs": float(same[departs].float().mean()) if bool(departs.any()) else float("nan")}
