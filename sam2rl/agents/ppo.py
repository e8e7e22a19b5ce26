"""PPO as a LightningModule: collect a rollout with the current policy, then epochs x minibatches.

On-policy RL does not fit Lightning's dataset loop, so each epoch is one PPO iteration (one
`training_step`): a TorchRL `Collector` gathers transitions from this rank's own environment
(own seed, own share of the tracks; `RewardSum` and `StepCounter` count each episode), `GAE` on
the critic or a leave-one-out baseline over episodes of the same start (`advantages`) computes
advantages, and `ClipPPOLoss` is minimised with `manual_backward` (so DDP averages gradients) for
the same number of updates on every rank. One iteration per epoch makes every checkpoint fall between iterations, so a resumed run
does exactly the remaining iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from tensordict import TensorDictBase
from torchrl.collectors import Collector
from torchrl.envs import Compose, EnvBase, RewardSum, StepCounter, TransformedEnv
from torchrl.modules import ProbabilisticActor, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from sam2rl.agents.advantages import leave_one_out_advantage, normalized
from sam2rl.agents.networks import fifo_weight
from sam2rl.schema.agent import PPOSettings

__all__ = ["PPOModule"]


class PPOModule(L.LightningModule):
    """Trains `actor` and `critic` on environments made by `make_env(seed, rank, world_size)`, one per rank.

    Run it with `Trainer(max_epochs=iterations)`.
    """

    def __init__(self, actor: ProbabilisticActor, critic: ValueOperator, make_env: Callable[[int, int, int], EnvBase],
                 ppo: PPOSettings, iterations: int, seed: int = 0, group_size: int = 1):
        super().__init__()
        self.automatic_optimization = False
        self.actor, self.critic = actor, critic  # trained (the critic only with `baseline: critic`)
        self.make_env = make_env  # called once per rank, on the first rollout
        self.ppo, self.iterations, self.seed = ppo, iterations, seed
        self.group_size = group_size  # consecutive env rows that share an episode start (`env.group_size`)
        self.use_critic = ppo.baseline == "critic"
        if not self.use_critic:  # no gradient for it: DDP must not wait for one
            critic.requires_grad_(False)
        # deactivate_vmap: the critic's transformer has no vmap batching rule for CPU attention, so under
        # vmap torch falls back to a per-sample loop anyway and warns; calling it on each half is the same
        self.advantage = GAE(gamma=ppo.gamma, lmbda=ppo.lmbda, value_network=critic, average_gae=False,
                             deactivate_vmap=True)
        self.loss = ClipPPOLoss(actor, critic if self.use_critic else None, clip_epsilon=ppo.clip_epsilon,
                                entropy_coeff=ppo.entropy_coeff,
                                critic_coeff=ppo.critic_coeff if self.use_critic else None,
                                normalize_advantage=ppo.normalize_advantage == "minibatch")
        self._collector: Collector | None = None
        self.rollout_checksum = 0.0  # of the last rollout: differs between ranks (own seeds)
        self.last_rollout: TensorDictBase | None = None  # for callbacks that learn from it (`SelfImitation`)
        self._batches = None

    # -- rollouts ------------------------------------------------------------------------------

    def _rollout(self) -> TensorDictBase:
        if self._collector is None:
            env = self.make_env(self.seed + 1000 * self.global_rank, self.global_rank, self.trainer.world_size)
            steps = env.max_episode_steps if self.ppo.rollout_steps is None else self.ppo.rollout_steps
            env = TransformedEnv(env, Compose(RewardSum(), StepCounter()))  # each episode's return and length
            torch.manual_seed(self.seed + 1000 * self.global_rank)
            self._collector = Collector(env, self.actor, frames_per_batch=env.batch_size[0] * steps,
                                        total_frames=-1, device=self.device,
                                        auto_register_policy_transforms=False)  # the policy keeps no state across steps
            self._batches = iter(self._collector)
        self._collector.update_policy_weights_()
        return next(self._batches)

    def train_dataloader(self) -> list[int]:
        return [0]  # one PPO iteration per epoch

    # -- one PPO iteration ---------------------------------------------------------------------

    def training_step(self, batch: object, batch_idx: int) -> None:
        optimizer = self.optimizers()
        scheduler = self.lr_schedulers()
        rollout = self._rollout()
        self.last_rollout = rollout
        with torch.no_grad():
            if self.use_critic:
                self.advantage(rollout)
            else:
                rollout["advantage"], rollout["value_target"] = leave_one_out_advantage(
                    rollout, self.group_size, self.ppo.gamma)
            raw = rollout["advantage"].clone()
            if self.ppo.normalize_advantage == "batch":
                rollout["advantage"] = normalized(rollout["advantage"])
        data = rollout.reshape(-1)
        warming = self.use_critic and self.current_epoch < self.ppo.critic_warmup
        actor_weight = 0.0 if warming else 1.0
        stats: dict[str, list[torch.Tensor]] = {}
        for _ in range(self.ppo.epochs):
            order = torch.randperm(data.shape[0], device=data.device)
            for start in range(0, data.shape[0], self.ppo.minibatch_size):
                minibatch = data[order[start:start + self.ppo.minibatch_size]]
                out = self.loss(minibatch)
                # critic only: the actor's terms weighted 0, not dropped, so DDP still sees a gradient for
                # every parameter, and Adam (no moments yet) leaves the actor exactly as it is
                loss = actor_weight * (out["loss_objective"] + out["loss_entropy"])
                if self.use_critic:
                    loss = loss + out["loss_critic"]
                optimizer.zero_grad()
                self.manual_backward(loss)
                self.clip_gradients(optimizer, gradient_clip_val=self.ppo.grad_clip, gradient_clip_algorithm="norm")
                optimizer.step()
                for key in ("loss_objective", "loss_critic", "loss_entropy", "entropy", "clip_fraction", "kl_approx"):
                    if key in out.keys():
                        stats.setdefault(key, []).append(out[key].detach().float().mean())
        scheduler.step()
        self.rollout_checksum = float(rollout["action"].float().sum() + rollout["next", "reward"].sum())
        self._log_iteration(rollout, raw, stats)

    def _log_iteration(self, rollout: TensorDictBase, advantage: torch.Tensor,
                       stats: dict[str, list[torch.Tensor]]) -> None:
        metrics = {f"train/{k}": torch.stack(v).mean() for k, v in stats.items()}  # means over all minibatches
        nxt = rollout["next"]
        metrics["train/advantage_mean"] = advantage.mean()
        metrics["train/advantage_std"] = advantage.std()
        metrics["train/advantage_abs_max"] = advantage.abs().max()
        prior = fifo_weight(self.actor)
        if prior is not None:
            metrics["train/fifo_prior"] = prior
        metrics["train/reward"] = nxt["reward"].mean()
        keys = set(nxt.keys(True))
        if ("info", "iou") in keys:  # `SAM2MemoryEnv`'s tracking figures
            metrics["train/iou"] = nxt["info", "iou"].float().mean()
            for label, value in nxt["info", "reward_terms"].items():
                metrics[f"train/reward_terms/{label}"] = value.float().mean()
        if ("info", "fifo_iou") in keys:
            metrics["train/gain_over_fifo"] = (nxt["info", "iou"] - nxt["info", "fifo_iou"]).float().mean()
        done = nxt["done"]
        if bool(done.any()):  # sampled episodes that ended in this rollout: return and length (RewardSum, StepCounter)
            metrics["train/episode_return"] = nxt["episode_reward"][done].mean()
            metrics["train/episode_steps"] = nxt["step_count"][done].float().mean()
        if self.use_critic:
            value = rollout["state_value"].flatten()
            target = rollout["value_target"].flatten()
            metrics["train/explained_variance"] = 1 - (target - value).var() / target.var().clamp(min=1e-8)
        actions = rollout["action"].flatten()
        num_actions = rollout["action_mask"].shape[-1]
        counts = torch.bincount(actions, minlength=num_actions).float() / actions.numel()
        metrics["train/action_discard"] = counts[0]
        for k in range(1, num_actions - 1):
            metrics[f"train/action_write_slot{k}"] = counts[k]
        metrics["train/action_anchor"] = counts[-1]
        self.log_dict(metrics, on_step=True, prog_bar=False, sync_dist=False)
        if "train/iou" in metrics:
            self.log("train/iou_bar", metrics["train/iou"], prog_bar=True)

    def configure_optimizers(self):
        params = list(self.actor.parameters()) + (list(self.critic.parameters()) if self.use_critic else [])
        unique = list({id(p): p for p in params}.values())
        optimizer = torch.optim.Adam(unique, lr=self.ppo.lr)
        final = self.ppo.lr_final_ratio
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: 1 - (1 - final) * min(i / max(self.iterations, 1), 1.0))
        return [optimizer], [scheduler]

    def on_train_end(self) -> None:
        if self._collector is not None:
            self._collector.shutdown()
