"""Keep the PPO iterate whose greedy policy tracks its training tracks best.

PPO's last iterate is not its best: the greedy (most likely) action can drift to a worse bank rule
late in training even while the sampled rollouts improve, and a per-video agent that ends below
SAM 2's own rule on its own video is a failure we can see coming. So every few iterations the
greedy policy tracks the training tracks (never held-out ones) and the best weights are restored
when training ends. With `agent.fifo_prior` the policy before the first update is close to FIFO,
so that check makes the kept agent at least about as good as FIFO on the tracks it trained on.

Other candidates compete at the same checks (`SelfImitation`'s clones): this callback owns them, so
each is tried right after the check it must beat, whatever order Lightning runs callbacks in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from sam2rl.agents.ppo import PPOModule
from sam2rl.agents.self_imitation import SelfImitation

__all__ = ["KeepBestGreedy"]


class KeepBestGreedy(Callback):
    """Score the actor with `score(actor) -> float` (higher is better) before the first iteration, every
    `every` iterations and after the last; restore the best-scoring weights when `fit` ends.

    With `self_imitation`, it sees every rollout, and after each check its clone of the best episodes
    competes with the actor just scored: PPO goes on from the clone when it scores higher.
    `history` holds (iterations done, score); the state travels in Lightning checkpoints, so a
    resumed run keeps the best of the whole run. `on_best(actor, iterations_done, score)` runs each
    time a candidate becomes the best, while `actor` holds its weights (e.g. to write it as an agent
    that can be scored before a long run ends).
    """

    def __init__(self, score: Callable[[torch.nn.Module], float], every: int,
                 self_imitation: SelfImitation | None = None,
                 report: Callable[[str], None] | None = None,
                 on_best: Callable[[torch.nn.Module, int, float], None] | None = None):
        if every < 1:
            raise ValueError(f"KeepBestGreedy: every must be >= 1, got {every}")
        self.score = score
        self.every = every
        self.self_imitation = self_imitation
        self.report = report  # one line per check, for the console (the figures are logged as well)
        self.on_best = on_best
        self.history: list[tuple[int, float]] = []
        self.best_iteration = -1
        self.best_score = float("-inf")
        self.best_state: dict[str, torch.Tensor] | None = None

    def _check(self, module: PPOModule, iterations_done: int) -> None:
        self.offer(module.actor, iterations_done, float(self.score(module.actor)))

    def offer(self, actor: torch.nn.Module, iterations_done: int, value: float, what: str = "PPO's iterate") -> None:
        """Record `actor`'s greedy score `value` and keep its weights if it is the best so far (other
        candidates than PPO's own iterate come in here, e.g. `SelfImitation`'s clones; `what` names
        the candidate in the report)."""
        self.history.append((iterations_done, value))
        if value > self.best_score:  # strictly: ties keep the earlier candidate
            self.best_iteration, self.best_score = iterations_done, value
            self.best_state = copy.deepcopy(actor.state_dict())
            if self.on_best is not None:
                self.on_best(actor, iterations_done, value)
        if self.report is not None:
            self.report(f"after {iterations_done} iterations: {what}, greedy quality {value:.4f} "
                        f"(best {self.best_score:.4f}, after {self.best_iteration})")

    def on_train_start(self, trainer: L.Trainer, module: PPOModule) -> None:
        if not self.history:
            self._check(module, 0)

    def on_train_batch_end(self, trainer: L.Trainer, module: PPOModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        if self.self_imitation is not None and module.last_rollout is not None:
            self.self_imitation.add(module.last_rollout)

    def on_train_epoch_end(self, trainer: L.Trainer, module: PPOModule) -> None:
        done = trainer.current_epoch + 1
        if done % self.every == 0 or done == trainer.max_epochs:
            self._check(module, done)
            module.log("select/greedy_quality", self.history[-1][1])
            if self.self_imitation is not None:
                won = self.self_imitation.challenge(module.actor, done, self.score, self.history[-1][1])
                if won is not None:  # PPO goes on from the clone, which may be kept
                    clone, value = won
                    module.actor.load_state_dict(clone.state_dict())
                    self.offer(module.actor, done, value, "the self-imitation clone (PPO goes on from it)")

    def on_fit_end(self, trainer: L.Trainer, module: PPOModule) -> None:
        # not on_train_end: Lightning skips that when it resumes from a checkpoint of the last iteration
        if self.best_state is not None:
            module.actor.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"history": self.history, "best_iteration": self.best_iteration, "best_score": self.best_score,
                "best_state": self.best_state}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [tuple(item) for item in state_dict["history"]]
        self.best_iteration = state_dict["best_iteration"]
        self.best_score = state_dict["best_score"]
        self.best_state = state_dict["best_state"]
