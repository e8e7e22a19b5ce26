"""Self-imitation: the best whole episode per track is found across rollouts and cloned when it wins."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from tensordict import TensorDict

from sam2rl.agents import make_actor_critic
from sam2rl.agents.selection import KeepBestGreedy
from sam2rl.agents.self_imitation import BestEpisodes, SelfImitation
from sam2rl.schema.agent import EncoderSettings, ImitationSettings

TOKENS, TOKEN_DIM, ACTIONS = 8, 12, 8  # 1 anchor + 6 recent + candidate; R + 2 actions


def rollout(track: list[list[int]], iou: list[list[float]], done: list[list[bool]], seed: int = 0) -> TensorDict:
    """A [B, T] collector-style rollout with random observations and actions."""
    generator = torch.Generator().manual_seed(seed)
    batch, steps = len(track), len(track[0])
    fifo = torch.randint(ACTIONS, (batch, steps), generator=generator)
    return TensorDict({
        "tokens": torch.randn(batch, steps, TOKENS, TOKEN_DIM, generator=generator),
        "global": torch.randn(batch, steps, 4, generator=generator),
        "fifo_action": torch.nn.functional.one_hot(fifo, ACTIONS).float(),
        "action_mask": torch.ones(batch, steps, ACTIONS, dtype=torch.bool),
        "action": torch.randint(ACTIONS, (batch, steps), generator=generator),
        "info": {"track": torch.tensor(track)[..., None]},
        "next": {"info": {"iou": torch.tensor(iou)[..., None]}, "done": torch.tensor(done)[..., None]},
    }, batch_size=[batch, steps])


def test_best_episodes_follow_each_row_across_rollouts() -> None:
    episodes = BestEpisodes()
    assert episodes.demonstrations() is None
    # row 0: an episode of track 0 ends at step 1 (IoU 0.2 + 0.3), the next one runs on
    # row 1: an episode of track 0 with IoU 0.9 per step, still open
    first = rollout([[0, 0, 0], [0, 0, 0]], [[0.2, 0.3, 0.9], [0.9, 0.9, 0.9]],
                    [[False, True, False], [False, False, False]])
    episodes.add(first)
    assert episodes.updated and episodes.best[0][0] == 0.5
    # row 0's second episode ends (0.9 + 0.1 = 1.0); row 1's ends after 4 steps in all (3.6)
    second = rollout([[0, 0], [0, 1]], [[0.1, 0.5], [0.9, 0.0]], [[True, False], [True, False]], seed=1)
    episodes.add(second)
    score, demos = episodes.best[0]
    assert abs(score - 3.6) < 1e-6 and demos.batch_size[0] == 4  # one episode spanning both rollouts
    assert torch.equal(demos["action"], torch.cat([first["action"][1], second["action"][1, :1]]))
    assert torch.equal(demos["tokens"], torch.cat([first["tokens"][1], second["tokens"][1, :1]]))
    assert 1 not in episodes.best  # track 1's episode is still open
    assert episodes.demonstrations().batch_size[0] == 4 and not episodes.updated


def test_a_clone_of_the_best_episode_is_adopted_when_its_greedy_run_wins() -> None:
    torch.manual_seed(0)
    actor, _ = make_actor_critic(TOKEN_DIM, 4, 1, 6, EncoderSettings(width=32, layers=1, heads=2, fifo_prior=3.0))
    steps = 6
    data = rollout([[0] * steps], [[1.0] * steps], [[False] * (steps - 1) + [True]], seed=2)
    best_actions = data["action"][0]

    def agreement(policy: torch.nn.Module) -> float:  # stands in for the greedy run's quality
        with torch.no_grad():
            return float((policy.get_dist(data[0].copy()).mode == best_actions).float().mean())

    self_imitation = SelfImitation(ImitationSettings(steps=100, lr=3e-3, minibatch_size=8))
    selection = KeepBestGreedy(agreement, every=1, self_imitation=self_imitation)
    logged: list[tuple[str, float]] = []
    module = SimpleNamespace(actor=actor, last_rollout=data, log=lambda key, value: logged.append((key, value)))
    trainer = SimpleNamespace(current_epoch=0, max_epochs=2)
    before = agreement(actor)
    assert before < 1.0  # the FIFO prior does not take the episode's random actions
    selection.on_train_batch_end(trainer, module, None, None, 0)  # the selection hands it every rollout
    selection.on_train_epoch_end(trainer, module)  # the greedy check after iteration 1, then the clone competes
    assert selection.history[0] == (1, before) and logged == [("select/greedy_quality", before)]
    (tried,) = self_imitation.history
    assert tried["adopted"] and tried["clone_quality"] == 1.0 and tried["decisions"] == steps
    assert agreement(module.actor) == 1.0  # PPO goes on from the clone...
    assert selection.best_score == 1.0 and selection.history[-1] == (1, 1.0)  # ...and the selection may keep it
    selection.on_train_epoch_end(trainer, module)  # no better episode since: nothing new to try
    assert len(self_imitation.history) == 1


def test_a_smoothed_clone_takes_the_best_episode_greedily_and_keeps_sampling_others() -> None:
    """Without smoothing the adopted clone is all but deterministic: every later rollout repeats the
    best episode and PPO's leave-one-out advantages are all zero. With `label_smoothing` its samples
    still leave that episode now and then, so PPO searches around it."""
    steps = 6
    data = rollout([[0] * steps], [[1.0] * steps], [[False] * (steps - 1) + [True]], seed=2)
    best_actions = data["action"][0]
    probabilities = {}
    for smoothing in (0.0, 0.2):
        torch.manual_seed(0)
        actor, _ = make_actor_critic(TOKEN_DIM, 4, 1, 6, EncoderSettings(width=32, layers=1, heads=2, fifo_prior=3.0))
        self_imitation = SelfImitation(ImitationSettings(steps=200, lr=3e-3, minibatch_size=8,
                                                         label_smoothing=smoothing))
        self_imitation.add(data)
        adopted = self_imitation.challenge(actor, 1, lambda policy: 1.0, to_beat=0.0)
        assert adopted is not None
        clone, _ = adopted
        with torch.no_grad():
            dist = clone.get_dist(data[0].copy())
        assert torch.equal(dist.mode, best_actions)  # greedily, the best episode either way
        probabilities[smoothing] = dist.probs.gather(-1, best_actions[:, None])[:, 0]
    assert bool((probabilities[0.0] > 0.97).all())
    target = 0.8 + 0.2 / ACTIONS  # the smoothed target: 1 - 0.2 on the best action, 0.2 spread over all 8
    assert torch.allclose(probabilities[0.2], torch.full_like(probabilities[0.2], target), atol=0.05)
    # a 6-decision episode leaves the best one with probability 1 - 0.825^6 ~ 0.68 (0.16 unsmoothed at most)
    assert float(1 - probabilities[0.2].prod()) > 0.5 > float(1 - probabilities[0.0].prod())
