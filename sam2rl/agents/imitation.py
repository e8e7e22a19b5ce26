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

import torch
from tensordict import TensorDict

from sam2rl.agents.controller import ObservingController
from sam2rl.agents.networks import parameter_device
from sam2rl.controllers import Controller
from sam2rl.datasets import Track, VideoDataset, VideoSequence
from sam2rl.controllers import track_video
from sam2rl.schema.agent import ImitationSettings
from sam2rl.schema.recipe import check_recipe
from sam2rl.tracker import Features, Memories, MemoryBank, Prediction, Tracker
from sam2rl.tracker.bank import ActionLayout

__all__ = ["DemonstrationRecorder", "check_teacher", "imitate", "record_demonstrations"]


def check_teacher(teacher: Controller) -> None:
    """ValueError unless `teacher` acts frame by frame (a whole-video search cannot be imitated)."""
    if callable(getattr(teacher, "track_video", None)):
        raise ValueError(f"teacher {teacher.name!r} searches whole videos instead of acting frame by frame; "
                         "it cannot be imitated step by step")


class DemonstrationRecorder(ObservingController):
    """Keeps each frame's observation with `teacher`'s action; the tracker follows the teacher, or
    `student` when given (DAgger: the teacher labels the states the student visits)."""

    def __init__(self, teacher: Controller, actions: ActionLayout = ActionLayout(), student: Controller | None = None):
        check_teacher(teacher)
        super().__init__(actions)
        self.teacher = teacher
        self.student = student
        self.name = f"demonstrations of {teacher.name}"
        self.steps: list[TensorDict] = []

    def reset(self, batch_size: int) -> None:
        self.teacher.reset(batch_size)

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: Features | None = None) -> Controller:
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
                          features: Mapping[str, Features], teacher: Controller,
                          actions: ActionLayout | None = None, student: Controller | None = None) -> TensorDict:
    """[N] observations (`tokens`, `global`, `fifo_action`, `action_mask`) and the teacher's `action`,
    one row per decision on `tracks` (each tracked from its prompt frame to the end of its video,
    by the teacher, or by `student` with the teacher's labels). `actions`: the legal ones (default:
    `tracker`'s anchors, discarding allowed, no anchors added)."""
    actions = ActionLayout(tracker.settings.max_anchors) if actions is None else actions
    recorder = DemonstrationRecorder(teacher, actions, student)
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
    check_recipe(settings, "imitation settings")  # the section's ranges (a RecipeError is a ValueError)
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
