"""Self-imitation: clone the best whole episodes PPO has sampled into the policy.

On one video, PPO's sampled runs now and then contain a lucky combination of decisions whose
payoff comes frames later and scores well above anything the greedy policy does; PPO's small
clipped updates rarely turn such a run into the greedy choice. The tracker is deterministic, so a
policy that takes that run's actions in that run's states tracks exactly as well: the best run
found so far per track, cloned (`imitate`), is a candidate scored like any PPO iterate
(`KeepBestGreedy`), and PPO goes on from it when it wins. After Oh et al. (2018), "Self-Imitation
Learning", with the single best return per track in place of a replay buffer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from tensordict import TensorDict, TensorDictBase

from sam2rl.agents.imitation import imitate
from sam2rl.schema.agent import ImitationSettings

__all__ = ["BestEpisodes", "SelfImitation"]

DEMONSTRATION_KEYS = ("tokens", "global", "fifo_action", "action_mask", "action")


class BestEpisodes:
    """Per track, the finished episode with the highest summed IoU seen so far: its observations
    and actions, as demonstrations (`imitate`'s input).

    Feed it every rollout in order (`add`); episodes run across rollouts (the collector keeps
    its environments going), so each environment row's open episode is carried over.
    """

    def __init__(self) -> None:
        self.best: dict[int, tuple[float, TensorDict]] = {}
        self.updated = False
        """Whether a better episode arrived since the last `demonstrations()`."""
        self._open: dict[int, list[TensorDict]] = {}

    def add(self, rollout: TensorDictBase) -> None:
        """A [B, T] rollout from a collector (time along the second dimension)."""
        steps = TensorDict({key: rollout[key] for key in DEMONSTRATION_KEYS}, batch_size=rollout.shape)
        steps["track"] = rollout["info", "track"][..., 0]
        steps["iou"] = rollout["next", "info", "iou"][..., 0]
        done = rollout["next", "done"][..., 0]
        for row in range(rollout.shape[0]):
            pieces = self._open.setdefault(row, [])
            cut = 0
            for end in done[row].nonzero()[:, 0].tolist():
                pieces.append(steps[row, cut:end + 1])
                self._finish(torch.cat(pieces))
                pieces.clear()
                cut = end + 1
            if cut < rollout.shape[1]:
                pieces.append(steps[row, cut:])

    def _finish(self, episode: TensorDict) -> None:
        track, score = int(episode["track"][0]), float(episode["iou"].sum())
        if track not in self.best or score > self.best[track][0]:
            self.best[track] = (score, episode.select(*DEMONSTRATION_KEYS).cpu())
            self.updated = True

    def demonstrations(self) -> TensorDict | None:
        """The best episode of every track seen so far, concatenated (None before the first ends)."""
        self.updated = False
        if not self.best:
            return None
        return torch.cat([self.best[track][1] for track in sorted(self.best)])


class SelfImitation:
    """Clones `BestEpisodes` into a copy of the actor to compete with it; `KeepBestGreedy` feeds it
    every rollout (`add`) and, right after each greedy check, asks for a challenger (`challenge`).

    Only whole-track episodes make sense to clone (the environment's episodes must cover each track
    from its prompt frame to its end). `history` holds one entry per clone tried; the best episodes
    are not kept in checkpoints, so a resumed run starts collecting them anew.
    """

    def __init__(self, settings: ImitationSettings, seed: int = 0):
        self.settings = settings
        self.seed = seed
        self.episodes = BestEpisodes()
        self.history: list[dict[str, float | int | bool]] = []

    def add(self, rollout: TensorDictBase) -> None:
        """A rollout PPO just collected (`BestEpisodes.add`)."""
        self.episodes.add(rollout)

    def challenge(self, actor: torch.nn.Module, iteration: int, score: Callable[[torch.nn.Module], float],
                  to_beat: float) -> tuple[torch.nn.Module, float] | None:
        """A clone of the best episodes so far into a copy of `actor`, with its `score`, when it beats
        `to_beat` (the actor's score at this check); None when it does not, or when no better episode
        came since the last try."""
        if not self.episodes.updated:
            return None
        demonstrations = self.episodes.demonstrations()
        clone = copy.deepcopy(actor)
        report = imitate(clone, demonstrations, self.settings, self.seed + iteration)
        value = float(score(clone))
        adopted = value > to_beat
        self.history.append({"iteration": iteration, "clone_quality": value, "adopted": adopted,
                             "decisions": demonstrations.batch_size[0],
                             "agreement": report["agreement_after"]["all"]})
        return (clone, value) if adopted else None
