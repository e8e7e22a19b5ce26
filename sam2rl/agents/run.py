"""`task: overfit` (one agent per track, SAM2RL's setting) and `task: generalize` (one agent for a
training split, validated on held-out videos): PPO with Lightning, agents evaluated against FIFO."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import OmegaConf
from rich.console import Console

from sam2rl.agents.checkpoint import write_agent_checkpoint
from sam2rl.atomic import write_json
from sam2rl.agents.controller import AgentController, PerTrackAgents, load_agent
from sam2rl.agents.imitation import ImitationSettings, check_teacher, imitate, record_demonstrations
from sam2rl.agents.networks import EncoderSettings, make_actor_critic
from sam2rl.agents.ppo import PPOModule, PPOSettings
from sam2rl.agents.selection import KeepBestGreedy
from sam2rl.agents.self_imitation import SelfImitation
from sam2rl.controllers import Controller
from sam2rl.controllers.oracle import OracleController
from sam2rl.datasets import Track, VideoDataset, VideoSequence
from sam2rl.envs import EpisodeSettings, SAM2MemoryEnv, has_decisions
from sam2rl.envs.observation import GLOBAL_FEATURES
from sam2rl.evaluation.evaluate import evaluate
from sam2rl.evaluation.headline import describe_headline, headline
from sam2rl.evaluation.plots import write_plots
from sam2rl.evaluation.report import results_table, write_csv
from sam2rl.controllers import make_controller
from sam2rl.recipe import RecipeError, save_recipe
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
    compile: bool = False  # torch.compile the per-frame modules (TrackerSettings.compile); meant for GPU, no gain on CPU


@dataclass
class DataSection:
    root: str = "data/sample"
    split: str | None = None
    tracks: list[str] | None = None  # "sequence:object_id"; None = every track
    val_root: str | None = None  # generalize: held-out videos
    val_split: str | None = None
    val_tracks: list[str] | None = None  # generalize: "sequence:object_id" of the held-out videos; None = all
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
    select_every: int = 5  # iterations between greedy checks on the training tracks; the best is kept


@dataclass
class EvaluationSection:
    skip_first: int = 7
    baselines: list[str] = field(default_factory=lambda: ["fifo", "samurai", "dam4sam", "sam2long", "oracle"])
    """Controllers scored next to the agents on the same tracks (`sam2rl eval` names; FIFO always runs)."""
    plots: bool = True


@dataclass
class OutputSection:
    dir: str = "runs/overfit"


@dataclass
class AgentRecipe:
    """`recipes/overfit.yaml` and `recipes/generalize.yaml`: every section, with its defaults."""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    env: EnvSection = field(default_factory=EnvSection)
    reward: RewardConfig = field(default_factory=RewardConfig)
    agent: EncoderSettings = field(default_factory=EncoderSettings)
    imitation: ImitationSettings = field(default_factory=ImitationSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    output: OutputSection = field(default_factory=OutputSection)
    task: str = "overfit"
    resume: str | None = None  # "auto": skip finished agents, continue unfinished ones from last.ckpt


def _process_device(device: str) -> str:
    """`cuda` in a recipe means this process's GPU. Lightning's DDP runs one process per GPU and
    names its index in LOCAL_RANK, but the tracker is built before the Trainer selects the GPU, so
    a bare `cuda` would put every rank's tracker on GPU 0."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if device == "cuda" else device


def _tracker(recipe: AgentRecipe) -> Tracker:
    m = recipe.model
    spec = ModelSpec(m.name, checkpoint=m.checkpoint, image_size=m.image_size, random_weights=m.random_weights,
                     seed=recipe.trainer.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings = TrackerSettings(max_anchors=recipe.env.max_anchors, autocast=m.bf16, compile=m.compile)
        return Tracker.from_spec(spec, _process_device(m.device), settings)


def _select(dataset: VideoDataset, wanted: list[str] | None, key: str = "data.tracks") -> list[Track]:
    tracks = dataset.tracks()
    if wanted is None:
        return tracks
    known = {f"{t.sequence}:{t.object_id}": t for t in tracks}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise RecipeError(f"{key}: {missing} not in {dataset.root} (known: {', '.join(known)})")
    return [known[w] for w in wanted]


def _train(recipe: AgentRecipe, tracker: Tracker, dataset: VideoDataset, tracks: list[Track],
           features: dict[str, FeatureCache], out: Path, resume: bool) -> tuple[torch.nn.Module, torch.nn.Module, dict, bool]:
    """PPO for one agent; returns the actor (the best greedy iterate on `tracks`, see `KeepBestGreedy`),
    the critic, the observation layout and whether this is rank 0."""
    names = sorted({t.sequence for t in tracks})
    videos, caches = [dataset[n] for n in names], [features[n] for n in names]
    env_cfg = recipe.env
    episode = EpisodeSettings(window=env_cfg.window, allow_discard=env_cfg.allow_discard,
                              allow_anchor=env_cfg.allow_anchor, track_reference=True)
    reward = CompositeReward.from_config(recipe.reward)

    def make_env(seed: int, rank: int = 0, world_size: int = 1) -> SAM2MemoryEnv:
        share = tracks[rank::world_size] if len(tracks) >= world_size else tracks  # each rank its own tracks
        return SAM2MemoryEnv(tracker, videos, env_cfg.batch_size, reward, episode, tracks=share, features=caches,
                             seed=seed)

    probe = make_env(recipe.trainer.seed)
    num_anchor = tracker.settings.max_anchors
    layout = {"token_dim": probe.token_dim, "global_dim": len(GLOBAL_FEATURES), "num_anchor": num_anchor,
              "num_recent": tracker.num_recent, "allow_discard": env_cfg.allow_discard, "allow_anchor": env_cfg.allow_anchor}
    torch.manual_seed(recipe.trainer.seed)
    actor, critic = make_actor_critic(layout["token_dim"], layout["global_dim"], num_anchor, tracker.num_recent, recipe.agent)
    last = out / "checkpoints" / "last.ckpt"

    def greedy_quality(policy: torch.nn.Module) -> float:
        controller = AgentController(policy, env_cfg.allow_discard, env_cfg.allow_anchor, num_anchor)
        results = evaluate(tracker, dataset, [controller], skip_first=recipe.evaluation.skip_first, tracks=tracks,
                           features=features)
        return results["controllers"][controller.name]["overall"]["quality"]

    warm_quality = None
    if recipe.imitation.teacher is not None and not (resume and last.is_file()):  # a resumed run has it in last.ckpt
        warm_quality = _warm_start(recipe, tracker, dataset, tracks, features, actor, out, greedy_quality)
    module = PPOModule(actor, critic, make_env, recipe.ppo, recipe.trainer.iterations, recipe.trainer.seed)
    t = recipe.trainer
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=1,  # newest only
                                  every_n_epochs=recipe.trainer.checkpoint_every)

    selection = KeepBestGreedy(greedy_quality, t.select_every)
    if warm_quality is not None:  # the check before the first iteration is the warm start's last one
        selection.offer(actor, 0, warm_quality)
    self_imitation = SelfImitation(selection, recipe.imitation, t.seed) if recipe.ppo.self_imitation else None
    extra = [] if self_imitation is None else [self_imitation]  # after the greedy check it competes with
    callbacks: list[L.Callback] = [selection, *extra, checkpoints]
    trainer = L.Trainer(max_epochs=t.iterations, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                        num_nodes=t.num_nodes, precision=t.precision, log_every_n_steps=1, callbacks=callbacks,
                        logger=[CSVLogger(str(out), name="logs", version=""), TensorBoardLogger(str(out), name="tb", version="")],
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, ckpt_path=str(last) if resume and last.is_file() else None)
    if trainer.is_global_zero:
        report = {"kept_iteration": selection.best_iteration,
                  "greedy_quality": [{"iteration": i, "quality": q} for i, q in selection.history]}
        if self_imitation is not None:
            report["self_imitation"] = self_imitation.history
        write_json(out / "selection.json", report)
    if trainer.world_size > 1:  # DDP diagnostics: weights must agree, rollouts must not
        params = torch.cat([p.detach().flatten().cpu() for p in actor.parameters()])
        write_json(out / f"rank-{trainer.global_rank}.json", {
            "rank": trainer.global_rank, "param_checksum": float(params.double().sum()),
            "param_abs_checksum": float(params.double().abs().sum()),
            "rollout_checksum": module.rollout_checksum, "optimizer_steps": trainer.global_step})
    return actor, critic, layout, trainer.is_global_zero


def _warm_start(recipe: AgentRecipe, tracker: Tracker, dataset: VideoDataset, tracks: list[Track],
                features: dict[str, FeatureCache], actor: torch.nn.Module, out: Path,
                greedy_quality: Callable[[torch.nn.Module], float]) -> float:
    """Clone `imitation.teacher`'s decisions on the training tracks into `actor`, then improve the
    clone by rollouts (see `sam2rl.agents.imitation`); returns the final clone's greedy quality."""
    settings = recipe.imitation
    began = time.time()
    env = recipe.env

    def policy() -> AgentController:
        return AgentController(actor, env.allow_discard, env.allow_anchor, tracker.settings.max_anchors)

    teacher = make_controller(settings.teacher, **settings.teacher_options)
    demonstrations = record_demonstrations(tracker, dataset, tracks, features, teacher, env.allow_discard,
                                           env.allow_anchor)
    reports = [imitate(actor, demonstrations, settings, recipe.trainer.seed)]
    for round_ in range(1, settings.rounds):  # DAgger: label the clone's own states, clone again on everything
        visited = record_demonstrations(tracker, dataset, tracks, features, teacher, env.allow_discard,
                                        env.allow_anchor, policy())
        demonstrations = torch.cat([demonstrations, visited])
        reports.append(imitate(actor, demonstrations, settings, recipe.trainer.seed + round_))
    reports[-1]["greedy_quality"] = greedy_quality(actor)
    improvements = []
    for round_ in range(settings.improve_rounds):  # policy iteration: clone the rollout-improved policy
        improved = OracleController(lookahead=None, continuation=policy())
        demonstrations = record_demonstrations(tracker, dataset, tracks, features, improved, env.allow_discard,
                                               env.allow_anchor)
        report = imitate(actor, demonstrations, settings, recipe.trainer.seed + settings.rounds + round_)
        improvements.append({**report, "greedy_quality": greedy_quality(actor)})
        if report["agreement_before"]["all"] == 1.0:  # the policy already takes the improved action everywhere
            break
    write_json(out / "imitation.json", {"teacher": settings.teacher, "minutes": (time.time() - began) / 60,
                                        **reports[-1], "rounds": reports, "improvement_rounds": improvements})
    return (improvements or reports)[-1]["greedy_quality"]


def run(recipe: AgentRecipe, recipe_path: Path | None = None) -> dict:
    """Train the recipe's agents (one per track, or one generalist), score them next to the baselines,
    and write results, plots and agents to `output.dir`; returns the headline summary (empty on DDP
    ranks other than 0)."""
    baselines = ["fifo", *[name for name in recipe.evaluation.baselines if name != "fifo"]]
    where = f"recipe {recipe_path}: " if recipe_path else ""
    key = "evaluation.baselines"
    try:  # bad names fail before anything is written
        rules = [make_controller(name) for name in baselines]
        if recipe.imitation.teacher is not None:
            key = "imitation.teacher"
            check_teacher(make_controller(recipe.imitation.teacher, **recipe.imitation.teacher_options))
    except (ValueError, TypeError) as error:  # TypeError: options the controller does not take
        raise RecipeError(f"{where}{key}: {error}") from error
    if recipe.task not in ("overfit", "generalize"):
        raise RecipeError(f"{where}task: {recipe.task!r} is not an agent task (overfit or generalize)")
    if recipe.ppo.self_imitation and (recipe.trainer.devices != 1 or recipe.trainer.num_nodes != 1):
        raise RecipeError(f"{where}ppo.self_imitation clones each process's own episodes, so DDP processes would "
                          f"train apart; it needs trainer.devices: 1 and trainer.num_nodes: 1")
    if recipe.ppo.self_imitation and recipe.env.window is not None:
        raise RecipeError(f"{where}ppo.self_imitation clones whole-track episodes; it needs env.window: null "
                          f"(got {recipe.env.window})")
    torch.set_num_threads(recipe.trainer.threads)
    out = Path(recipe.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out / "recipe.yaml")
    recipe_yaml = OmegaConf.to_yaml(OmegaConf.structured(recipe))
    console = Console(width=max(Console().width, 100))  # the table is unreadable when wrapped
    tracker = _tracker(recipe)
    dataset = VideoDataset(recipe.data.root, split=recipe.data.split)
    tracks = _select(dataset, recipe.data.tracks)
    decided = [t for t in tracks if has_decisions(t, dataset[t.sequence].num_frames)]
    short = [f"{t.sequence}:{t.object_id}" for t in tracks if t not in decided]
    if short and recipe.data.tracks is not None:
        raise RecipeError(f"{where}data.tracks: {', '.join(short)} appear(s) fewer than 3 frames before the video "
                          "ends: nothing to decide (the prompt, one decision, one reward)")
    if short:
        console.print(f"[yellow]note:[/yellow] not trained on {', '.join(short)}: first seen fewer than 3 frames "
                      "before the video ends, nothing to decide")
    tracks = decided
    if not tracks:
        raise RecipeError(f"{where}data: no track to train on in {dataset.root}")
    cache = recipe.data.feature_cache
    features = {v.name: video_features(tracker, v, cache_dir=cache) for v in dataset.sequences}
    began = time.time()
    if recipe.task == "overfit":
        jobs = [(f"{t.sequence}-{t.object_id}", [t]) for t in tracks]
        eval_data, eval_tracks = dataset, tracks
    else:
        jobs = [("generalist", tracks)]
        eval_data = VideoDataset(recipe.data.val_root or recipe.data.root, split=recipe.data.val_split)
        if eval_data.root.resolve() == dataset.root.resolve() and recipe.data.val_split == recipe.data.split:
            console.print("[yellow]warning:[/yellow] data.val_root and data.val_split name the training videos: "
                          "the generalist is scored on videos it trained on")
        eval_tracks = _select(eval_data, recipe.data.val_tracks, "data.val_tracks")
    agents: dict[str, AgentController] = {}
    is_main = True
    for name, train_tracks in jobs:
        finished = out / name / "agent.pt"
        if recipe.resume == "auto" and finished.is_file():
            agents[name] = load_agent(finished, tracker)
            continue
        actor, critic, layout, is_main = _train(recipe, tracker, dataset, train_tracks, features, out / name,
                                                recipe.resume == "auto")
        if not is_main:
            continue
        write_agent_checkpoint(finished, actor=actor, critic=critic, recipe_yaml=recipe_yaml,
                               tracker_identity=tracker.identity, layout=layout, encoder=recipe.agent)
        agents[name] = AgentController(actor, layout["allow_discard"], layout["allow_anchor"], layout["num_anchor"])
    if not is_main:  # a DDP rank other than 0: rank 0 evaluates and reports
        return {}
    trained_s = time.time() - began
    if recipe.task == "overfit":
        agent: Controller = PerTrackAgents({(t.sequence, t.object_id): agents[name] for name, (t,) in jobs})
    else:
        agent = agents["generalist"]
        agent.name = "agent (generalist)"
    results = evaluate(tracker, eval_data, [*rules, agent], skip_first=recipe.evaluation.skip_first,
                       cache_dir=cache, tracks=eval_tracks, features=features if eval_data is dataset else None)
    results["data"] = {"root": str(eval_data.root), "sequences": len(eval_data), "tracks": len(eval_tracks)}
    kept = {name: json.loads((out / name / "selection.json").read_text())["kept_iteration"]
            for name, _ in jobs if (out / name / "selection.json").is_file()}
    summary = {"task": recipe.task, "train_minutes": trained_s / 60, "minutes": (time.time() - began) / 60,
               **headline(results, agent.name),
               "kept_iteration": kept}
    write_json(out / "results.json", results)
    write_csv(out / "scores.csv", results)
    write_json(out / "summary.json", summary)
    console.print(results_table(results, f"sam2rl {recipe.task}"))
    console.print(describe_headline(summary))
    if recipe.evaluation.plots:
        written = write_plots(results, out / "plots", compare=["fifo", agent.name])
        console.print(f"plots: {out / 'plots'} ({len(written)} PNG; FIFO vs agent: *_compare.png)")
    console.print(f"{summary['minutes']:.1f} min; results in {out}")
    return summary
