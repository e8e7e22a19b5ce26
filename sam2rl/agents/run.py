"""`task: overfit` (one agent per track, SAM2RL's setting) and `task: generalize` (one agent for a
training split, validated on held-out videos): PPO with Lightning, agents evaluated against FIFO."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from sam2rl.agents.checkpoint import write_agent_checkpoint
from sam2rl.atomic import write_json
from sam2rl.agents.controller import AgentController
from sam2rl.agents.networks import EncoderSettings, make_actor_critic
from sam2rl.agents.ppo import PPOModule, PPOSettings
from sam2rl.controllers import FifoController
from sam2rl.datasets import Track, VideoDataset, VideoSequence
from sam2rl.envs import EpisodeSettings, SAM2MemoryEnv
from sam2rl.envs.observation import GLOBAL_FEATURES
from sam2rl.evaluation.metrics import score_track
from sam2rl.evaluation.tracking import track_video
from sam2rl.recipe import save_recipe
from sam2rl.rewards import CompositeReward, RewardConfig
from sam2rl.tracker import FeatureCache, ModelSpec, Tracker, TrackerSettings

__all__ = ["AgentRecipe", "run"]


@dataclass
class ModelSection:
    name: str = "nano"
    checkpoint: str | None = None
    random_weights: bool = False
    image_size: int | None = None
    device: str = "cpu"
    bf16: bool = False  # bfloat16 autocast (CUDA, or a CPU with bfloat16 units)


@dataclass
class DataSection:
    root: str = "data/sample"
    split: str | None = None
    tracks: list[str] | None = None  # "sequence:object_id"; None = every track
    val_root: str | None = None  # generalize: held-out videos
    val_split: str | None = None
    feature_cache: str | None = None


@dataclass
class EnvSection:
    batch_size: int = 8
    window: int | None = None
    allow_discard: bool = True
    allow_anchor: bool = False
    max_anchors: int = 1


@dataclass
class TrainerSection:
    iterations: int = 40
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 5  # iterations between resumable checkpoints


@dataclass
class EvaluationSection:
    skip_first: int = 7


@dataclass
class OutputSection:
    dir: str = "runs/overfit"


@dataclass
class AgentRecipe:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    env: EnvSection = field(default_factory=EnvSection)
    reward: RewardConfig = field(default_factory=RewardConfig)
    agent: EncoderSettings = field(default_factory=EncoderSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    output: OutputSection = field(default_factory=OutputSection)
    task: str = "overfit"
    resume: str | None = None  # "auto": skip finished agents, continue unfinished ones from last.ckpt


def _tracker(recipe: AgentRecipe) -> Tracker:
    m = recipe.model
    spec = ModelSpec(m.name, checkpoint=m.checkpoint, image_size=m.image_size, random_weights=m.random_weights,
                     seed=recipe.trainer.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Tracker.from_spec(spec, m.device, TrackerSettings(max_anchors=recipe.env.max_anchors, autocast=m.bf16))


def _select(dataset: VideoDataset, wanted: list[str] | None) -> list[Track]:
    tracks = dataset.tracks()
    if wanted is None:
        return tracks
    known = {f"{t.sequence}:{t.object_id}": t for t in tracks}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise ValueError(f"data.tracks: {missing} not in {dataset.root} (known: {', '.join(known)})")
    return [known[w] for w in wanted]


def _train(recipe: AgentRecipe, tracker: Tracker, videos: list[VideoSequence], tracks: list[Track],
           features: list[FeatureCache], out: Path, resume: bool) -> tuple[torch.nn.Module, torch.nn.Module, dict, bool]:
    """PPO for one agent; returns the actor, critic, observation layout and whether this is rank 0."""
    env_cfg = recipe.env
    episode = EpisodeSettings(window=env_cfg.window, allow_discard=env_cfg.allow_discard,
                              allow_anchor=env_cfg.allow_anchor, track_reference=True)
    reward = CompositeReward.from_config(recipe.reward)

    def make_env(seed: int, rank: int = 0, world_size: int = 1) -> SAM2MemoryEnv:
        share = tracks[rank::world_size] if len(tracks) >= world_size else tracks  # each rank its own tracks
        return SAM2MemoryEnv(tracker, videos, env_cfg.batch_size, reward, episode, tracks=share, features=features,
                             seed=seed)

    probe = make_env(recipe.trainer.seed)
    num_anchor = tracker.settings.max_anchors
    layout = {"token_dim": probe.token_dim, "global_dim": len(GLOBAL_FEATURES), "num_anchor": num_anchor,
              "num_recent": tracker.num_recent, "allow_discard": env_cfg.allow_discard, "allow_anchor": env_cfg.allow_anchor}
    torch.manual_seed(recipe.trainer.seed)
    actor, critic = make_actor_critic(layout["token_dim"], layout["global_dim"], num_anchor, tracker.num_recent, recipe.agent)
    module = PPOModule(actor, critic, make_env, recipe.ppo, recipe.trainer.iterations, recipe.trainer.seed)
    t = recipe.trainer
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=1,  # newest only
                                  every_n_epochs=recipe.trainer.checkpoint_every)
    trainer = L.Trainer(max_epochs=t.iterations, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                        num_nodes=t.num_nodes, precision=t.precision, log_every_n_steps=1, callbacks=[checkpoints],
                        logger=[CSVLogger(str(out), name="logs", version=""), TensorBoardLogger(str(out), name="tb", version="")],
                        enable_model_summary=False, num_sanity_val_steps=0)
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(module, ckpt_path=str(last) if resume and last.is_file() else None)
    if trainer.world_size > 1:  # DDP diagnostics: weights must agree, rollouts must not
        params = torch.cat([p.detach().flatten().cpu() for p in actor.parameters()])
        write_json(out / f"rank-{trainer.global_rank}.json", {
            "rank": trainer.global_rank, "param_checksum": float(params.double().sum()),
            "param_abs_checksum": float(params.double().abs().sum()),
            "rollout_checksum": module.rollout_checksum, "optimizer_steps": trainer.global_step})
    return actor, critic, layout, trainer.is_global_zero


def _score(tracker: Tracker, video: VideoSequence, track: Track, controller, features: FeatureCache, skip_first: int) -> dict:
    run = track_video(tracker, video, controller, tracks=[track], features=features)[0]
    gt, _ = video.object_masks(track.object_id, run.frames)
    scores = score_track(run.masks, gt, skip_first=skip_first).to_dict()
    return {"quality": scores["quality"], "jf": scores["jf_mean"], "per_frame_iou": scores["iou"],
            "bank_frames": run.bank_frames.tolist(), "actions": run.actions.tolist()}


def run(recipe: AgentRecipe, recipe_path: Path | None = None) -> dict:
    torch.set_num_threads(recipe.trainer.threads)
    out = Path(recipe.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out / "recipe.yaml")
    recipe_yaml = OmegaConf.to_yaml(OmegaConf.structured(recipe))
    console = Console()
    tracker = _tracker(recipe)
    dataset = VideoDataset(recipe.data.root, split=recipe.data.split)
    tracks = _select(dataset, recipe.data.tracks)
    features = {v.name: tracker.video_features(v, cache_dir=recipe.data.feature_cache) for v in dataset.sequences}
    began = time.time()
    if recipe.task == "overfit":
        jobs = [(f"{t.sequence}-{t.object_id}", [t], [(dataset[t.sequence], t)]) for t in tracks]
    else:
        val = VideoDataset(recipe.data.val_root or recipe.data.root, split=recipe.data.val_split)
        for v in val.sequences:
            features.setdefault(v.name, tracker.video_features(v, cache_dir=recipe.data.feature_cache))
        jobs = [("generalist", tracks, [(v, t) for v in val.sequences for t in v.tracks()])]
    rows = []
    for name, train_tracks, eval_pairs in jobs:
        finished = out / name / "agent.pt"
        if recipe.resume == "auto" and finished.is_file():
            rows += [json.loads(p.read_text())["row"] for p in sorted((out / name).glob("results-*.json"))]
            continue
        videos = sorted({t.sequence for t in train_tracks})
        actor, critic, layout, is_main = _train(recipe, tracker, [dataset[v] for v in videos], train_tracks,
                                                [features[v] for v in videos], out / name, recipe.resume == "auto")
        if not is_main:
            continue
        write_agent_checkpoint(out / name / "agent.pt", actor=actor, critic=critic, recipe_yaml=recipe_yaml,
                               tracker_identity=tracker.identity, layout=layout, encoder=recipe.agent)
        agent = AgentController(actor, layout["allow_discard"], layout["allow_anchor"])
        for video, track in eval_pairs:
            fifo = _score(tracker, video, track, FifoController(), features[video.name], recipe.evaluation.skip_first)
            learned = _score(tracker, video, track, agent, features[video.name], recipe.evaluation.skip_first)
            row = {"agent": name, "track": f"{track.sequence}:{track.object_id}", "fifo": fifo["quality"],
                   "agent_quality": learned["quality"], "gain": learned["quality"] - fifo["quality"],
                   "relative_gain": (learned["quality"] - fifo["quality"]) / fifo["quality"] if fifo["quality"] else float("nan")}
            rows.append(row)
            write_json(out / name / f"results-{track.sequence}-{track.object_id}.json",
                        {"row": row, "fifo_run": fifo, "agent_run": learned})
    if not rows:  # a DDP rank other than 0: rank 0 evaluates and reports
        return {}
    summary = {"task": recipe.task, "minutes": (time.time() - began) / 60, "tracks": rows,
               "mean_fifo": sum(r["fifo"] for r in rows) / len(rows),
               "mean_agent": sum(r["agent_quality"] for r in rows) / len(rows)}
    summary["relative_gain"] = (summary["mean_agent"] - summary["mean_fifo"]) / summary["mean_fifo"] if summary["mean_fifo"] else float("nan")
    summary["agent_beats_fifo"] = sum(r["gain"] > 0 for r in rows)
    write_json(out / "summary.json", summary)
    table = Table(title=f"sam2rl {recipe.task} — tracking quality (IoU, first {recipe.evaluation.skip_first} frames skipped)")
    for column in ("agent", "track", "FIFO", "agent", "gain"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["agent"], r["track"], f"{r['fifo']:.3f}", f"{r['agent_quality']:.3f}", f"{r['gain']:+.3f}")
    table.add_row("mean", "", f"{summary['mean_fifo']:.3f}", f"{summary['mean_agent']:.3f}",
                  f"{summary['relative_gain']:+.1%} rel.")
    console.print(table)
    console.print(f"{summary['minutes']:.1f} min; results in {out}")
    return summary
