"""Policy and value networks over the environment's slot tokens (a small set encoder).

Each action is scored from the token it concerns: writing into recent slot k from slot k's
token (what would be evicted), discarding or anchoring from the candidate's token, all after
self-attention across tokens, so a decision sees the whole bank.
"""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import MaskedCategorical, ProbabilisticActor, ValueOperator

from sam2rl.envs.observation import TOKEN_FEATURES
from sam2rl.schema.agent import EncoderSettings

__all__ = ["SlotEncoder", "fifo_weight", "make_actor_critic", "parameter_device"]


class SlotEncoder(nn.Module):
    """tokens [B, N, D], global [B, G] -> per-token embeddings [B, N, W] and a pooled state [B, W]."""

    def __init__(self, token_dim: int, global_dim: int, settings: EncoderSettings):
        super().__init__()
        width = settings.width
        # the scalars close each token (`observe`); without appearance the pooled features before them are not read
        self.token_from = 0 if settings.appearance else token_dim - len(TOKEN_FEATURES)
        token_dim -= self.token_from
        self.token_in = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, width))
        self.global_in = nn.Sequential(nn.LayerNorm(global_dim), nn.Linear(global_dim, width))
        layer = nn.TransformerEncoderLayer(width, settings.heads, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, settings.layers, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor, global_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead = tokens.shape[:-2]
        tokens = tokens[..., self.token_from:]
        x = self.token_in(tokens.reshape(-1, *tokens.shape[-2:])) + self.global_in(global_.reshape(-1, global_.shape[-1]))[:, None]
        x = self.encoder(x)
        return x.reshape(*lead, *x.shape[-2:]), x.mean(dim=-2).reshape(*lead, x.shape[-1])


class _PolicyNet(nn.Module):
    def __init__(self, encoder: SlotEncoder, width: int, num_anchor: int, num_recent: int, fifo_prior: float):
        super().__init__()
        self.encoder = encoder
        self.num_anchor, self.num_recent = num_anchor, num_recent
        self.write = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, 1))
        self.keep_or_anchor = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, 2))
        self.fifo_weight = nn.Parameter(torch.tensor(float(fifo_prior)))

    def forward(self, tokens: torch.Tensor, global_: torch.Tensor, fifo_action: torch.Tensor) -> torch.Tensor:
        return self._logits(tokens, global_) + self.fifo_weight * fifo_action

    def _logits(self, tokens: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        x, pooled = self.encoder(tokens, global_)
        candidate = x[..., -1, :]
        recent = x[..., self.num_anchor:self.num_anchor + self.num_recent, :]
        context = pooled[..., None, :].expand_as(recent)
        write = self.write(torch.cat([recent, context], dim=-1))[..., 0]  # [.., R]
        discard, anchor = self.keep_or_anchor(torch.cat([candidate, pooled], dim=-1)).unbind(-1)
        return torch.cat([discard[..., None], write, anchor[..., None]], dim=-1)


class _ValueNet(nn.Module):
    def __init__(self, encoder: SlotEncoder, width: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, tokens: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens, global_)[1])


def make_actor_critic(token_dim: int, global_dim: int, num_anchor: int, num_recent: int,
                      settings: EncoderSettings) -> tuple[ProbabilisticActor, ValueOperator]:
    """Masked-categorical actor and state-value critic (separate encoders), sized from the env."""
    policy = _PolicyNet(SlotEncoder(token_dim, global_dim, settings), settings.width, num_anchor, num_recent,
                        settings.fifo_prior)
    actor = ProbabilisticActor(
        TensorDictModule(policy, in_keys=["tokens", "global", "fifo_action"], out_keys=["logits"]),
        in_keys={"logits": "logits", "mask": "action_mask"}, out_keys=["action"],
        distribution_class=MaskedCategorical, return_log_prob=True,
    )
    critic = ValueOperator(_ValueNet(SlotEncoder(token_dim, global_dim, settings), settings.width),
                           in_keys=["tokens", "global"])
    return actor, critic


def parameter_device(module: nn.Module) -> torch.device:
    """Where `module`'s weights are: a policy may sit elsewhere than the tracker that feeds it (built
    on the CPU, moved to the GPU by Lightning for training and back to the CPU after it)."""
    return next(module.parameters()).device


def fifo_weight(actor: nn.Module) -> float | None:
    """The policy's current weight on SAM 2's own action (`agent.fifo_prior` at the start), for
    logging how far PPO has moved from the rule; None for a policy without one."""
    for name, parameter in actor.named_parameters():
        if name.endswith("fifo_weight"):
            return float(parameter.detach())
    return None
