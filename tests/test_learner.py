"""The PPO learner's pieces: whole-episode returns, the leave-one-out baseline, advantages scaled
once per batch, held decisions, one write per distinct outcome, episode groups, and a task whose
best schedule is a long stretch of identical non-FIFO decisions."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from long_stretch_env import BEST_RETURN, GLOBAL_DIM, RECENT, TOKEN_DIM, LongStretchEnv
from sam2rl.agents.advantages import episode_returns, leave_one_out_advantage, normalized
from sam2rl.agents.controller import AgentController
from sam2rl.agents.networks import make_actor_critic
from sam2rl.agents.ppo import PPOModule
from sam2rl.datasets import VideoDataset
from sam2rl.envs import SAM2MemoryEnv
from sam2rl.rewards import CompositeReward
from sam2rl.run_cli import recipe_path
from sam2rl.schema.agent import AgentRecipe, EncoderSettings, EpisodeSettings, PPOSettings
from sam2rl.schema.recipe import load_recipe
from sam2rl.tracker import ModelSpec, Tracker
from sam2rl.tracker.bank import DISCARD, ActionLayout, Memories, MemoryBank


def rollout_of(reward: list[list[float]], done: list[list[bool]]) -> TensorDict:
    r = torch.tensor(reward, dtype=torch.float32)[..., None]
    return TensorDict({"next": {"reward": r, "done": torch.tensor(done)[..., None]}}, batch_size=r.shape[:2])


def test_returns_are_the_rest_of_each_episode_undiscounted() -> None:
    td = rollout_of([[1, 2, 3, 4]], [[False, True, False, True]])
    assert episode_returns(td)[0, :, 0].tolist() == [3, 2, 7, 4]
    assert episode_returns(td, gamma=0.5)[0, :, 0].tolist() == [2, 2, 5, 4]


def test_leave_one_out_baseline_is_the_mean_of_the_other_rows_of_the_group() -> None:
    td = rollout_of([[1, 0], [3, 0], [2, 0], [5, 1], [0, 0], [1, 1]], [[False, True]] * 6)
    advantage, returns = leave_one_out_advantage(td, group_size=3)
    assert returns[:, 0, 0].tolist() == [1, 3, 2, 6, 0, 2]
    # group 0: returns 1, 3, 2 -> 1 - 2.5, 3 - 1.5, 2 - 2; group 1: 6, 0, 2 -> 6 - 1, 0 - 4, 2 - 3
    assert advantage[:, 0, 0].tolist() == [-1.5, 1.5, 0.0, 5.0, -4.0, -1.0]
    assert advantage[:, 1, 0].tolist() == [0.0, 0.0, 0.0, 0.5, -1.0, 0.5]
    same = rollout_of([[1, 1], [1, 1]], [[False, True]] * 2)
    assert leave_one_out_advantage(same, 2)[0].abs().sum() == 0, "episodes that did the same: no advantage"
    with pytest.raises(ValueError, match="group_size 1"):
        leave_one_out_advantage(td, group_size=1)
    with pytest.raises(ValueError, match="groups of 4"):
        leave_one_out_advantage(td, group_size=4)


def test_advantages_normalized_once_over_the_batch() -> None:
    advantage = torch.tensor([1.0, 2.0, 3.0, 10.0])
    scaled = normalized(advantage)
    assert abs(float(scaled.mean())) < 1e-6 and abs(float(scaled.std()) - 1) < 1e-6
    assert scaled.argsort().tolist() == advantage.argsort().tolist()
    assert normalized(torch.zeros(5)).abs().sum() == 0


def bank_with(frames: list[int | None]) -> MemoryBank:
    """One bank whose recent slots hold these frames (None: empty)."""
    bank = MemoryBank.empty(1, len(frames), 1, 1, (1, 1, 1), 1, torch.float32, "cpu")
    for k, frame in enumerate(frames):
        if frame is not None:
            bank.recent.valid[0, k] = True
            bank.recent.frame[0, k] = frame
    return bank


def test_held_decisions_repeat_what_was_decided() -> None:
    layout = ActionLayout(hold=4)
    bank = bank_with([5, 3, 4])  # FIFO evicts frame 3: slot 2, action 2
    fifo, discard, slot1 = torch.tensor([1]), torch.tensor([DISCARD]), torch.tensor([1])
    assert layout.resume(bank, fifo, torch.tensor([True])).tolist() == [2], "SAM 2's rule goes on as SAM 2's rule"
    assert layout.resume(bank, discard, torch.tensor([False])).tolist() == [DISCARD]
    assert layout.resume(bank, slot1, torch.tensor([False])).tolist() == [1], "the same slot again"
    no_discard = ActionLayout(allow_discard=False, hold=4)
    assert no_discard.resume(bank, discard, torch.tensor([False])).tolist() == [2], "illegal now: SAM 2's action"
    with pytest.raises(ValueError, match="hold"):
        ActionLayout(hold=0)


def test_distinct_writes_leave_one_legal_write_among_empty_slots() -> None:
    bank = bank_with([7, None, None, None])
    assert ActionLayout().mask(bank)[0, 1:5].tolist() == [True, True, True, True]
    assert ActionLayout(distinct_writes=True).mask(bank)[0, 1:5].tolist() == [True, True, False, False]
    full = bank_with([1, 2, 3, 4])
    assert ActionLayout(distinct_writes=True).mask(full)[0].tolist() == ActionLayout().mask(full)[0].tolist()


@pytest.fixture(scope="module")
def tracker(nano_random_checkpoint: Path) -> Tracker:
    return Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))


def test_groups_of_rows_start_the_same_episode(tracker: Tracker) -> None:
    data = VideoDataset(Path(__file__).resolve().parents[1] / "sam2rl" / "sample")
    env = SAM2MemoryEnv(tracker, data.sequences, 6, CompositeReward(["iou"]), EpisodeSettings(window=6, group_size=3),
                        seed=4)
    starts = set()
    for _ in range(3):
        env.reset()
        pairs = list(zip(env._track.tolist(), env._start.tolist()))
        assert pairs[0] == pairs[1] == pairs[2] and pairs[3] == pairs[4] == pairs[5]
        starts.update(pairs)
    assert len(starts) > 2, "groups still draw different episodes"
    with pytest.raises(ValueError, match="multiple of episode.group_size 4"):
        SAM2MemoryEnv(tracker, data.sequences, 6, CompositeReward(["iou"]), EpisodeSettings(group_size=4))


def test_a_held_step_tracks_hold_frames_and_sums_their_rewards(tracker: Tracker, blackswan_clip: Path) -> None:
    videos = VideoDataset(blackswan_clip).sequences
    per_frame = SAM2MemoryEnv(tracker, videos, 2, CompositeReward(["iou"]), EpisodeSettings(window=None))
    held = SAM2MemoryEnv(tracker, videos, 2, CompositeReward(["iou"]), EpisodeSettings(window=None, hold=3))
    assert held.max_episode_steps == -(-per_frame.max_episode_steps // 3)
    per_frame.reset(), held.reset()
    rewards, steps = [], 0
    while True:
        out = per_frame.step(TensorDict({"action": per_frame.fifo_action()}, batch_size=[2]))["next"]
        rewards.append(out["reward"][:, 0])
        if bool(out["done"].all()):
            break
    summed = []
    while True:
        out = held.step(TensorDict({"action": held.fifo_action()}, batch_size=[2]))["next"]
        summed.append(out["reward"][:, 0])
        steps += 1
        if bool(out["done"].all()):
            break
    assert steps == held.max_episode_steps == len(summed)
    expected = [sum(rewards[k:k + 3]) for k in range(0, len(rewards), 3)]
    for got, want in zip(summed, expected):
        assert torch.allclose(got, want, atol=1e-5)


class CountingActor(torch.nn.Module):
    """A policy that always discards, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, td: TensorDict) -> TensorDict:
        self.calls += 1
        return td.set("action", torch.zeros(td.batch_size[0], dtype=torch.long))


def test_a_trained_agent_holds_its_decisions_as_in_training(tracker: Tracker, blackswan_clip: Path) -> None:
    from sam2rl.controllers import track_video
    video = VideoDataset(blackswan_clip).sequences[0]
    actor = CountingActor()
    track_video(tracker, video, AgentController(actor, ActionLayout(hold=3)))
    decisions = video.num_frames - 1  # frames after the prompt
    assert actor.calls == -(-decisions // 3)


RECIPE_HOLD = load_recipe(recipe_path("overfit"), AgentRecipe).env.hold  # the new learner holds decisions as the recipe does

LEARNERS = {  # decisions held (frames), FIFO prior, rows per start state, PPO settings
    "new": (RECIPE_HOLD, 1.0, 8, PPOSettings(rollout_steps=None, minibatch_size=32, lr=3e-3, gamma=1.0,
                                   baseline="leave_one_out", normalize_advantage="batch")),
    "old": (1, 3.0, 1, PPOSettings(rollout_steps=28, minibatch_size=32, lr=3e-3, gamma=0.9, baseline="critic",
                                   normalize_advantage="minibatch")),
}


def long_stretch_learner(seed: int, iterations: int, learner: str = "new") -> float:
    """Greedy return on `LongStretchEnv` after PPO; 16 x 28 frames per iteration either way.

    "new": the new learner's pieces: decisions held as `recipes/overfit.yaml` holds them, groups of 8
    with a leave-one-out baseline, undiscounted whole episodes, advantages scaled once, FIFO prior 1.
    "old": the learner it replaced: one decision a frame, FIFO prior 3, a critic with GAE at gamma 0.9,
    advantages scaled per minibatch."""
    torch.manual_seed(seed)
    hold, prior, group, settings = LEARNERS[learner]
    layout = ActionLayout(hold=hold)
    actor, critic = make_actor_critic(TOKEN_DIM, GLOBAL_DIM, 1, RECENT,
                                      EncoderSettings(width=32, layers=1, heads=2, fifo_prior=prior))
    module = PPOModule(actor, critic, lambda s, r=0, w=1: LongStretchEnv(16, layout, group), settings, iterations,
                       seed, group)
    L.Trainer(max_epochs=iterations, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(module)
    with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
        return float(LongStretchEnv(1, layout).rollout(100, actor)["next", "reward"].sum())


def test_fifo_scores_nothing_on_the_long_stretch_task() -> None:
    env = LongStretchEnv(1, ActionLayout())
    td, total = env.reset(), 0.0
    while True:
        td = env.step(td.set("action", env.bank.fifo_action()))["next"]
        total += float(td["reward"].sum())
        if bool(td["done"].all()):
            break
    assert total == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_learner_finds_a_long_stretch_of_non_fifo_decisions(seed: int) -> None:
    assert long_stretch_learner(seed=seed, iterations=10) == BEST_RETURN


def test_the_old_learner_misses_the_long_stretch_within_the_same_budget() -> None:
    # per-step sampling near FIFO almost never draws sixteen identical non-FIFO decisions in a row, and
    # at gamma 0.9 little of a late reward reaches the early ones; measured here: 0 of 6 seeds within 10
    # iterations (2 of 6 within 30). At most one of four seeds may find it by luck.
    found = [long_stretch_learner(seed=seed, iterations=10, learner="old") == BEST_RETURN for seed in range(4)]
    assert sum(found) <= 1, found
