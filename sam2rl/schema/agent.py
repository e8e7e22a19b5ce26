"""The agent recipe (`task: overfit` and `task: generalize`, `recipes/overfit.yaml` and
`recipes/generalize.yaml`): every section, field, default and valid range, in one place.

Why here: the components read their own section (the environment `EpisodeSettings`, PPO
`PPOSettings`, the networks `EncoderSettings`, ...), so each field is defined once, and a
recipe is checked whole, before anything runs, against the ranges declared on the fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sam2rl.schema.fields import (Problems, accelerator, choice, custom, flag, folder, items, number,
                                  options, precision, section, strategy, text, texts, whole)

__all__ = ["AgentRecipe", "DataSection", "EncoderSettings", "EnvSection", "EpisodeSettings", "EvaluationSection",
           "FeatureMemorySection", "ImitationSettings", "ModelSection", "OutputSection", "PPOSettings", "RewardConfig", "TrainerSection"]

_TRACK = r".+:\d+"
_TRACK_MUST = "'sequence:object_id' (e.g. 'bear:1')"


def _devices(value: int) -> str | None:
    if value != -1 and value < 1:
        return f"must be a whole number >= 1, or -1 for every device, got {value}"
    return None


@dataclass
class ModelSection:
    """The SAM 2 that tracks (recipe section `model`)."""
    name: str = text("nano")
    checkpoint: str | None = text(None)
    """Weights (official format); null: the model's default (sam2rl/weights/nano.pt for nano)."""
    random_weights: bool = flag(False)
    image_size: int | None = whole(None, multiple_of=32)
    bf16: bool | None = flag(None)
    """bfloat16 autocast (CUDA, or a CPU with bfloat16 units); null: on where the tracker runs on CUDA.
    The tracker's device follows `trainer.accelerator` and the process's rank (`sam2rl.tasks.agent`)."""
    compile: bool = flag(False)  # torch.compile the per-frame modules (TrackerSettings.compile); meant for GPU, no gain on CPU


@dataclass
class FeatureMemorySection:
    """Memory the videos' image features may take (recipe section `data.feature_memory`): frames are
    encoded when first read and kept, least recently used out first, on the tracker's device, then
    on the host (on a CPU tracker the two are one memory of their sum); beyond both they are read
    back from `data.feature_cache` or encoded again (`sam2rl.tracker.FeatureBudget`)."""
    device_mib: float = number(2048.0, low=0)
    host_mib: float = number(8192.0, low=0)


@dataclass
class DataSection:
    """The videos an agent trains on, and (generalize) is scored on (recipe section `data`)."""
    root: str = text("sam2rl:sample")
    split: str | None = text(None)
    tracks: list[str] | None = texts(None, regex=_TRACK, must=_TRACK_MUST)  # "sequence:object_id"; None = every track
    select_split: str | None = text(None)
    """Videos of `root` (a split, like `split`, disjoint from it) that the greedy checks score instead of
    the training tracks: the kept iterate is then the one that tracks unseen videos of the training
    distribution best, not the one that fits the training videos best. None: the training tracks."""
    val_root: str | None = text(None)  # generalize: held-out videos
    val_split: str | None = text(None)
    val_tracks: list[str] | None = texts(None, regex=_TRACK, must=_TRACK_MUST)
    """generalize: "sequence:object_id" of the held-out videos; None = all."""
    feature_cache: str | None = folder(None)
    """A folder that keeps every frame's image features on disk, for this run and later ones."""
    feature_memory: FeatureMemorySection = section(FeatureMemorySection)


@dataclass
class EpisodeSettings:
    """Which part of which track an episode covers, and which actions are legal (`SAM2MemoryEnv`)."""

    window: int | None = whole(None, low=3)
    """Frames per episode (random start; at least the prompt, one decision and one reward); None:
    the whole video from the prompt frame."""
    allow_discard: bool = flag(True)
    allow_anchor: bool = flag(False)
    """Adding anchors needs `TrackerSettings(max_anchors > 1)`."""
    distinct_writes: bool = flag(False)
    """One legal write among empty slots (`ActionLayout.distinct_writes`)."""
    hold: int = whole(1, low=1)
    """Frames one decision lasts (`ActionLayout.hold`); an environment step spans them and its
    reward is their sum."""
    group_size: int = whole(1, low=1)
    """Episodes side by side that start from the same track and frame (the batch is made of such
    groups), so each is the others' baseline (`ppo.baseline: leave_one_out`)."""

@dataclass
class EnvSection(EpisodeSettings):
    """Recipe section `env`: the episodes, and how many run side by side and with how many anchors."""
    batch_size: int = whole(8, low=1)
    """Episodes stepped together (one batched tracker call)."""
    max_anchors: int = whole(1, low=1)
    """Anchor slots per bank (the prompt takes the first); `TrackerSettings.max_anchors`."""


def _anchor_room(env: EnvSection) -> Problems:
    if env.allow_anchor and env.max_anchors < 2:
        yield ".allow_anchor", ("adds anchors only with env.max_anchors >= 2 (the prompt takes the first), "
                                f"got {env.max_anchors}")


@dataclass
class RewardConfig:
    """The ``reward:`` section of a recipe.

    ``terms`` is ``list[Any]`` on purpose: entries may be bare names, ``{name: ...}`` or
    ``{_target_: ...}`` mappings, which a ``list[RewardTerm]`` type would not all accept;
    `sam2rl.rewards.CompositeReward` checks every entry, with errors naming the term.
    """

    terms: list[Any] = items(lambda: [{"name": "iou", "weight": 1.0}], "term")


@dataclass
class EncoderSettings:
    """Size of the policy's and critic's slot encoder (recipe section `agent`)."""
    width: int = whole(64, low=1)
    layers: int = whole(2, low=1)
    heads: int = whole(4, low=1)
    """Attention heads; they split the width, so they must divide it."""
    fifo_prior: float = number(0.0)
    """Initial weight of SAM 2's own action in the policy's logits (learned from there): 0 starts
    from a uniform policy; 3 starts near FIFO (e^3 : 1 for SAM 2's choice), so training explores
    deviations from SAM 2's rule instead of rediscovering it."""
    appearance: bool = flag(True)
    """Whether the encoders read each slot's pooled memory features; false: only its scalars (scores,
    age, similarity, ...: `sam2rl.envs.observation.TOKEN_FEATURES`), which name no particular video,
    so a generalist cannot tell its training videos apart by their looks."""


def _heads_split_width(agent: EncoderSettings) -> Problems:
    if agent.width % agent.heads:
        yield ".heads", f"must divide agent.width ({agent.width}), got {agent.heads}"


@dataclass
class ImitationSettings:
    """Cloning a teacher before PPO (recipe section `imitation`, `sam2rl.agents.imitation`)."""
    teacher: str | None = text(None)
    """Controller to imitate before PPO (a `sam2rl eval` name, e.g. "oracle"); None: no warm start."""
    teacher_options: dict[str, Any] = options()
    """Keyword arguments of the teacher, e.g. {margin: 0.02} for the oracle."""
    steps: int = whole(300, low=1)
    """Gradient steps (minibatches drawn in shuffled passes over the demonstrations), so one video's
    40-odd decisions get as many updates as a whole training split's."""
    lr: float = number(1e-3, low=0.0, low_open=True)
    minibatch_size: int = whole(64, low=1)
    rounds: int = whole(1, low=1)
    """DAgger rounds: after the first clone, the clone drives the tracker on the training tracks, the
    teacher labels every frame it visits, and the policy is cloned again on all labels so far, so it
    also knows what to do off the teacher's own trajectory."""
    improve_rounds: int = whole(0, low=0)
    """Rounds of policy iteration by rollouts after the clone: the oracle scores every action at
    every frame by following the current policy to the end of the video (`OracleController` with
    `lookahead=None` and the policy as `continuation`), and the policy is cloned from that run,
    which is at least as good as the policy's own (expert iteration with an exact, if costly,
    expert). Stops early once the policy agrees with it everywhere."""
    label_smoothing: float = number(0.0, low=0.0, high=1.0, high_open=True)
    """Share of the target spread over all legal actions: the clone still takes the teacher's action
    greedily but keeps sampling others, so PPO after it still explores (0.3 with 8 actions gives
    the teacher's action about the probability `agent.fifo_prior` 3 gives FIFO's)."""


@dataclass
class PPOSettings:
    """PPO's collection and update settings (recipe section `ppo`, `sam2rl.agents.ppo`)."""
    rollout_steps: int | None = whole(16, low=1)
    """Environment steps per iteration (x env batch = transitions); None: the longest episode's, so
    each row collects one whole episode from its start (the returns are whole)."""
    baseline: str = choice("critic", ("critic", "leave_one_out"))
    """critic: GAE on a learned value; leave_one_out: each step's undiscounted rest-of-episode return
    minus that of the other episodes of its group (`env.group_size`), no critic
    (`sam2rl.agents.advantages`)."""
    normalize_advantage: str = choice("minibatch", ("minibatch", "batch", "none"))
    """Where advantages are scaled to zero mean and unit spread: per minibatch (TorchRL's default),
    once over the whole batch, or not at all."""
    epochs: int = whole(4, low=1)
    minibatch_size: int = whole(64, low=1)
    gamma: float = number(0.9, low=0.0, high=1.0)
    """Discount of later rewards."""
    lmbda: float = number(0.95, low=0.0, high=1.0)
    """GAE's lambda: 0 is one-step TD, 1 the Monte-Carlo return."""
    clip_epsilon: float = number(0.2, low=0.0, low_open=True)
    entropy_coeff: float = number(0.01, low=0.0)
    critic_coeff: float = number(0.5, low=0.0)
    lr: float = number(3e-4, low=0.0, low_open=True)
    lr_final_ratio: float = number(0.1, low=0.0, high=1.0)  # linear decay to lr * this over the run
    grad_clip: float = number(1.0, low=0.0)  # max gradient norm; 0: no clipping
    critic_warmup: int = whole(0, low=0)
    """First iterations in which only the critic learns: a warm-started actor (`imitation`) is not
    pushed around by advantages from a critic that has not seen its returns yet."""
    self_imitation: bool = flag(False)
    """At each greedy check, clone the best whole episode sampled so far on each track (with the
    `imitation` section's steps and lr) and go on from the clone when its greedy run scores higher
    (`sam2rl.agents.self_imitation`; episodes must be whole tracks: `env.window: null`)."""


@dataclass
class TrainerSection:
    """Lightning's `Trainer` and the run's loop (recipe section `trainer`)."""
    iterations: int = whole(40, low=1)
    """PPO iterations (one rollout and its updates each; Lightning epochs)."""
    accelerator: str = accelerator("cpu")
    devices: int = custom(1, _devices)
    strategy: str = strategy("auto")
    num_nodes: int = whole(1, low=1)
    precision: str = precision("32-true")
    seed: int = whole(0, low=0)
    threads: int = whole(2, low=1)  # torch CPU threads per process
    checkpoint_every: int = whole(5, low=1)  # iterations between resumable checkpoints
    select_every: int = whole(5, low=1)  # iterations between greedy checks on the training tracks; the best is kept


@dataclass
class EvaluationSection:
    """How the agents and baselines are scored after training (recipe section `evaluation`)."""
    skip_first: int = whole(7, low=0)
    """Tracked frames left out of the scores (after the prompt), as the paper's evaluation does."""
    baselines: list[str] = texts(lambda: ["fifo", "samurai", "dam4sam", "sam2long", "oracle"])
    """Controllers scored next to the agents on the same tracks (`sam2rl eval` names; FIFO always runs)."""
    plots: bool = flag(True)


@dataclass
class OutputSection:
    """Where a run writes (recipe section `output`)."""
    dir: str = folder("runs/overfit")


@dataclass
class AgentRecipe:
    """`recipes/overfit.yaml` and `recipes/generalize.yaml`: every section, with its defaults."""
    model: ModelSection = section(ModelSection)
    data: DataSection = section(DataSection)
    env: EnvSection = section(EnvSection, _anchor_room)
    reward: RewardConfig = section(RewardConfig)
    agent: EncoderSettings = section(EncoderSettings, _heads_split_width)
    imitation: ImitationSettings = section(ImitationSettings)
    ppo: PPOSettings = section(PPOSettings)
    trainer: TrainerSection = section(TrainerSection)
    evaluation: EvaluationSection = section(EvaluationSection)
    output: OutputSection = section(OutputSection)
    task: str = choice("overfit", ("overfit", "generalize"))
    resume: str | None = choice(None, (None, "auto"))
    """"auto": skip finished agents, continue unfinished ones from their last.ckpt."""

    def problems(self) -> Iterator[tuple[str, str]]:
        """Rules across sections: (key, what is wrong)."""
        if self.ppo.self_imitation and (self.trainer.devices != 1 or self.trainer.num_nodes != 1):
            yield "ppo.self_imitation", ("clones each process's own episodes, so DDP processes would train apart; "
                                         "it needs trainer.devices: 1 and trainer.num_nodes: 1")
        if self.ppo.baseline == "leave_one_out" and self.env.group_size < 2:
            yield "env.group_size", ("must be >= 2 for ppo.baseline: leave_one_out (each episode's baseline is "
                                     f"the others of its group), got {self.env.group_size}")
        if self.env.batch_size % self.env.group_size:
            yield "env.batch_size", (f"must be a multiple of env.group_size ({self.env.group_size}), "
                                     f"got {self.env.batch_size}")
        if self.ppo.self_imitation and self.env.window is not None:
            yield "ppo.self_imitation", ("clones whole-track episodes; it needs env.window: null "
                                         f"(got {self.env.window})")
