"""Ground-truth search over whole memory schedules: an upper reference and a teacher for per-video agents."""

from __future__ import annotations

from collections.abc import Callable

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.controllers.ground_truth import BatchCycle, IoUTally
from sam2rl.controllers.oracle import OracleController
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.tracker import (
    Features, Memories, MemoryBank, Prediction, Tracker, ground_truth_masks, resize_prompt_mask, rollout,
    video_features,
)

__all__ = ["ScheduleSearch"]

Plan = Callable[[int, Prediction, Memories, MemoryBank], torch.Tensor]


@register_controller("search")
class ScheduleSearch(Controller):
    """Evolutionary search, on the ground truth, for the sequence of bank actions that tracks each
    track best; then plays it back (an upper reference, not a method from the literature).

    The tracker is deterministic, so on one video a memory rule is fully described by the actions
    it takes, frame after frame (its schedule). `bind_video` searches the schedules of the bound
    tracks: the pool starts with SAM 2's own (FIFO) and the look-ahead oracle's; each of
    `generations` rounds mutates `population` children from the `elite` best schedules of each
    track (`_mutate`), tracks all of them as one batch from the prompt frame, and keeps the
    `elite` best per track. A schedule's score is the mean IoU over the frames after the prompt,
    at model resolution (as the oracle's; an empty prediction on an empty ground truth scores 1).
    Schedules are kept as played: a write into an empty slot becomes a write into the first empty
    slot, which holds the same memories. So the result is never below the oracle's run, and unlike
    the oracle it finds combinations of decisions whose payoff comes many frames later (greedy
    look-ahead and per-frame policy improvement stop at single changes).

    Cost: `generations * population` whole-track runs per prompt frame (batched), once per
    `bind_video`. `act` plays the best schedule back; `best_scores` keeps its score per track,
    in `track_video`'s batch order, and `progress` the best score after each generation
    ([generations + 1, B] per batch, the starting pool first), to judge the budget.
    """

    def __init__(self, *, population: int = 32, generations: int = 20, elite: int = 4, mutations: int = 3,
                 allow_discard: bool = True, seed: int = 0) -> None:
        if min(population, generations, elite, mutations) < 1:
            raise ValueError(f"search: population, generations, elite and mutations must be >= 1, got "
                             f"{population}, {generations}, {elite}, {mutations}")
        self.population = int(population)
        self.generations = int(generations)
        self.elite = int(elite)
        self.mutations = int(mutations)
        self.allow_discard = bool(allow_discard)
        self.seed = int(seed)
        self._schedules: BatchCycle[tuple[int, torch.Tensor]] = BatchCycle("search: schedules", [], [])
        self._plan: tuple[int, torch.Tensor] | None = None
        self.best_scores: list[torch.Tensor] = []
        self.progress: list[torch.Tensor] = []

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: Features | None = None) -> ScheduleSearch:
        tracks = video.tracks() if tracks is None else tracks
        features = video_features(tracker, video) if features is None else features
        self.best_scores, self.progress, self._plan = [], [], None
        generator = torch.Generator().manual_seed(self.seed)
        groups, plans = group_by_prompt_frame(tracks), []
        for group in groups:
            schedule, progress = self._search(tracker, video, group, features, generator)
            plans.append((group[0].prompt_frame, schedule))  # (prompt frame, [B, T - 1 - prompt])
            self.best_scores.append(progress[-1])
            self.progress.append(progress)
        self._schedules = BatchCycle("search: schedules", plans, [len(group) for group in groups])
        return self

    def reset(self, batch_size: int) -> None:
        if not self._schedules:
            raise RuntimeError("search: no schedules; call bind_video(tracker, video) first")
        self._plan = self._schedules.next(batch_size)

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        if self._plan is None:
            raise RuntimeError("search: reset() must be called before act()")
        start, schedule = self._plan
        return schedule[:, int(candidate.frame[0]) - start - 1].to(candidate.frame.device)

    # -- the search ----------------------------------------------------------------------------

    @torch.inference_mode()
    def _search(self, tracker: Tracker, video: VideoSequence, group: list[Track], features: Features,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Best schedule [B, L] and the best score after each generation [generations + 1, B] for
        tracks prompted on the same frame."""
        start, batch, size = group[0].prompt_frame, len(group), tracker.image_size
        length = video.num_frames - 1 - start
        if length < 1:
            return torch.zeros(batch, 0, dtype=torch.long), torch.ones(self.generations + 1, batch)
        truth, annotated = ground_truth_masks(video, group, size)
        prompts = resize_prompt_mask(video.prompt_masks(group), size)

        def run(plan: Plan | None, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
            """Track `copies` x B rows from the prompt; (score [copies, B], actions [copies, B, L])."""
            rows = torch.arange(batch).repeat(copies)
            first = torch.full((rows.shape[0],), start, dtype=torch.long, device=tracker.device)
            total = torch.full_like(first, video.num_frames)
            _, bank = tracker.start(features.gather(first), prompts[rows].to(tracker.device), first)
            tally, taken = IoUTally(rows.shape[0]), []
            act = None if plan is None else (lambda p, c, b: _canonical(plan(int(c.frame[0]) - start - 1, p, c, b), b))
            for tracked in rollout(tracker, features, bank, first, total, act=act):
                frame = int(tracked.frame[0])
                tally.add(tracked.step, truth[rows, frame], annotated[rows, frame])
                taken.append(tracked.step.action.cpu())
            score = tally.mean().view(copies, batch)
            return score, torch.stack(taken, dim=1).view(copies, batch, length)

        oracle = OracleController(tracker, features, truth, num_frames=video.num_frames, annotated=annotated,
                                  allow_anchor=False)
        oracle.reset(batch)
        oracle.begin_episode(torch.full((batch,), start), torch.full((batch,), video.num_frames))
        scores, pool = zip(run(None, 1), run(lambda k, p, c, b: oracle.act(p, c, b), 1))
        scores, pool = torch.cat(scores), torch.cat(pool)  # [2, B], [2, B, L]
        columns = torch.arange(batch)
        progress = [scores.max(dim=0).values]
        for _ in range(self.generations):
            keep = min(self.elite, pool.shape[0])
            best = scores.topk(keep, dim=0).indices  # [keep, B]
            parents = best[torch.randint(keep, (self.population, batch), generator=generator), columns]
            children = self._mutate(pool[parents, columns], tracker.num_recent, generator)  # [P, B, L]
            flat = children.view(-1, length)
            child_scores, children = run(lambda k, p, c, b: flat[:, k].to(c.frame.device), self.population)
            scores, pool = torch.cat([scores[best, columns], child_scores]), torch.cat([pool[best, columns], children])
            progress.append(scores.max(dim=0).values)
        return pool[scores.argmax(dim=0), columns], torch.stack(progress)

    def _mutate(self, parents: torch.Tensor, num_recent: int, generator: torch.Generator) -> torch.Tensor:
        """Children of [P, B, L] parent schedules: half get 1..`mutations` decisions set to a random
        action, half one random action over a random stretch of frames (e.g. discard everything
        through an occlusion, keeping the memories from before it), which single changes rarely
        reach. Actions: discard (if `allow_discard`) or write a slot, never an anchor."""
        population, batch, length = parents.shape
        shape = (population, batch, 1)
        lowest = 0 if self.allow_discard else 1
        where = torch.randint(length, (population, batch, self.mutations), generator=generator)
        what = torch.randint(lowest, num_recent + 1, (population, batch, self.mutations), generator=generator)
        count = torch.randint(1, self.mutations + 1, shape, generator=generator)
        used = torch.arange(self.mutations) < count
        points = parents.scatter(2, torch.where(used, where, where[..., :1]), torch.where(used, what, what[..., :1]))
        first = torch.randint(length, shape, generator=generator)
        last = first + torch.randint(1, length + 1, shape, generator=generator)
        frames = torch.arange(length)
        stretch = torch.where((frames >= first) & (frames < last),
                              torch.randint(lowest, num_recent + 1, shape, generator=generator), parents)
        return torch.where(torch.rand(shape, generator=generator) < 0.5, points, stretch)


def _canonical(action: torch.Tensor, bank: MemoryBank) -> torch.Tensor:
    """A write into an empty slot goes to the first empty one (SAM 2's fill order): the bank holds the
    same memories either way, and a policy that sees empty slots as alike can then take the action."""
    slot = (action - 1).clamp(0, bank.num_recent - 1)
    into_empty = (action >= 1) & (action <= bank.num_recent) & ~bank.recent.valid.gather(1, slot[:, None])[:, 0]
    return torch.where(into_empty, bank.fifo_action(), action)
