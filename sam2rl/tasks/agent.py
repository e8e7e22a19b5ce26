"""`task: overfit` (one agent per track, SAM2RL's setting) and `task: generalize` (one agent for a
training split, validated on held-out videos): PPO with Lightning, agents evaluated against FIFO.

A task runner: it sits above evaluation (it scores the agents with `evaluate`, writes the reports
and plots) and reads its recipe from `sam2rl.schema.agent`, whose ranges, and the controller and
reward names it gives, are checked before anything is written.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf
from rich.console import Console

from sam2rl.agents.checkpoint import AgentLayout, write_agent_checkpoint
from sam2rl.agents.controller import AgentController, PerTrackAgents, load_agent
from sam2rl.agents.imitation import check_teacher, imitate, record_demonstrations
from sam2rl.agents.networks import make_actor_critic
from sam2rl.agents.ppo import PPOModule
from sam2rl.agents.selection import KeepBestGreedy
from sam2rl.agents.self_imitation import SelfImitation
from sam2rl.atomic import write_json
from sam2rl.controllers import Controller, make_controller
from sam2rl.controllers.oracle import OracleController
from sam2rl.datasets import Track, VideoDataset
from sam2rl.envs import SAM2MemoryEnv, has_decisions
from sam2rl.evaluation.evaluate import evaluate
from sam2rl.evaluation.headline import describe_headline, headline
from sam2rl.evaluation.plots import write_plots
from sam2rl.evaluation.report import results_table, write_csv
from sam2rl.rewards import CompositeReward
from sam2rl.schema.agent import AgentRecipe
from sam2rl.schema.recipe import RecipeError, check_recipe, save_recipe
from sam2rl.tasks.quiet import quiet_lightning
from sam2rl.tracker import FeatureBudget, FeatureMemory, Features, ModelSpec, Tracker, TrackerSettings, video_features
from sam2rl.tracker.bank import ActionLayout

__all__ = ["run"]


@dataclass
class _Trained:
    """One agent after PPO (already written by rank 0): the kept actor and its layout, the iteration kept
    (-1 when none was scored), and whether this process is rank 0 (the one that evaluates)."""
    actor: torch.nn.Module
    layout: AgentLayout
    kept_iteration: int
    is_main: bool


def tracker_device(accelerator: str) -> torch.device:
    """The device Lightning gives this process for `trainer.accelerator`, where the tracker must sit.

    The tracker is built before the Trainer starts, so the process's GPU is read the way Lightning's
    own cluster environments read it: `SLURM_LOCALID` under `srun`, `LOCAL_RANK` under torchrun and
    Lightning's launcher (0 for a single process).
    """
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if accelerator not in ("gpu", "cuda"):
        return torch.device("mps" if accelerator == "mps" else "cpu")
    for environment in (SLURMEnvironment, TorchElasticEnvironment):
        if environment.detect():
            return torch.device("cuda", environment().local_rank())
    return torch.device("cuda", LightningEnvironment().local_rank())


def _tracker(recipe: AgentRecipe) -> Tracker:
    m = recipe.model
    spec = ModelSpec(m.name, checkpoint=m.checkpoint, image_size=m.image_size, random_weights=m.random_weights,
                     seed=recipe.trainer.seed)
    device = tracker_device(recipe.trainer.accelerator)
    bf16 = device.type == "cuda" if m.bf16 is None else m.bf16  # on by default where it pays (CUDA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings = TrackerSettings(max_anchors=recipe.env.max_anchors, autocast=bf16, compile=m.compile)
        return Tracker.from_spec(spec, device, settings)


def _actions(recipe: AgentRecipe, tracker: Tracker) -> ActionLayout:
    return ActionLayout.for_episodes(recipe.env, tracker.settings.max_anchors)


def _select(dataset: VideoDataset, wanted: list[str] | None, key: str = "data.tracks") -> list[Track]:
    tracks = dataset.tracks()
    if wanted is None:
        return tracks
    known = {f"{t.sequence}:{t.object_id}": t for t in tracks}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise RecipeError(f"{key}: {missing} not in {dataset.root} (known: {', '.join(known)})")
    return [known[w] for w in wanted]


def _decided(dataset: VideoDataset, tracks: list[Track]) -> list[Track]:
    """The tracks that leave something to decide (`has_decisions`)."""
    return [t for t in tracks if has_decisions(t, dataset[t.sequence].num_frames)]


def _features(tracker: Tracker, dataset: VideoDataset, cache: str | None, memory: FeatureMemory) -> dict[str, Features]:
    """Every video's feature store, encoded when first read, in the run's one memory budget."""
    return {v.name: video_features(tracker, v, cache_dir=cache, memory=memory) for v in dataset.sequences}


@dataclass
class _Checks:
    """What the greedy checks score: the training tracks, or those of a selection split (`data.select_split`)."""
    dataset: VideoDataset
    tracks: list[Track]
    features: dict[str, Features]


def _train(recipe: AgentRecipe, tracker: Tracker, reward: CompositeReward, dataset: VideoDataset,
           tracks: list[Track], features: dict[str, Features], out: Path, resume: bool,
           say: Callable[[str], None], recipe_yaml: str, checks: _Checks | None = None) -> _Trained:
    """PPO for one agent; its actor is the best greedy iterate on `tracks`, or on `checks`'s tracks
    when given (see `KeepBestGreedy`), written (rank 0) to `out/agent.pt`. Each new best is also written to
    `out/best_so_far.pt` as it is found, so a long run's best agent can be scored (`agent:` in `sam2rl eval`)
    before the run ends; both files come from one writer."""
    names = sorted({t.sequence for t in tracks})
    videos, caches = [dataset[n] for n in names], [features[n] for n in names]
    env_cfg = recipe.env

    def make_env(seed: int, rank: int = 0, world_size: int = 1) -> SAM2MemoryEnv:
        share = tracks[rank::world_size] if len(tracks) >= world_size else tracks  # each rank its own tracks
        return SAM2MemoryEnv(tracker, videos, env_cfg.batch_size, reward, env_cfg, tracks=share, features=caches,
                             seed=seed, track_reference=True)

    layout = AgentLayout.for_tracker(tracker, _actions(recipe, tracker))
    torch.manual_seed(recipe.trainer.seed)
    actor, critic = make_actor_critic(layout.token_dim, layout.global_dim, layout.actions.num_anchor,
                                      layout.num_recent, recipe.agent)
    last = out / "checkpoints" / "last.ckpt"

    scored = checks or _Checks(dataset, tracks, features)

    def greedy_quality(policy: torch.nn.Module) -> float:
        controller = AgentController(policy, layout.actions)
        results = evaluate(tracker, scored.dataset, [controller], skip_first=recipe.evaluation.skip_first,
                           tracks=scored.tracks, features=scored.features)
        return results["controllers"][controller.name]["overall"]["quality"]

    def save(path: Path, policy: torch.nn.Module, extra: dict | None = None) -> None:
        write_agent_checkpoint(path, actor=policy, critic=critic, recipe_yaml=recipe_yaml,
                               tracker_identity=tracker.identity, layout=layout, encoder=recipe.agent, extra=extra)

    @rank_zero_only
    def write_best(policy: torch.nn.Module, iterations_done: int, value: float) -> None:
        save(out / "best_so_far.pt", policy, {"iteration": iterations_done, "greedy_quality": value})

    warm_quality = None
    if recipe.imitation.teacher is not None and not (resume and last.is_file()):  # a resumed run has it in last.ckpt
        say(f"warm start: cloning {recipe.imitation.teacher}")
        warm_quality = _warm_start(recipe, tracker, dataset, tracks, features, actor, out, greedy_quality)
    module = PPOModule(actor, critic, make_env, recipe.ppo, recipe.trainer.iterations, recipe.trainer.seed,
                       recipe.env.group_size)
    t = recipe.trainer
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=1,  # newest only
                                  every_n_epochs=recipe.trainer.checkpoint_every)
    self_imitation = SelfImitation(recipe.imitation, t.seed) if recipe.ppo.self_imitation else None
    selection = KeepBestGreedy(greedy_quality, t.select_every, self_imitation, report=say, on_best=write_best)
    if warm_quality is not None:  # the check before the first iteration is the warm start's last one
        selection.offer(actor, 0, warm_quality, "the warm start")
    with quiet_lightning():  # one Trainer per agent: its device banner and tips once per agent otherwise
        trainer = L.Trainer(max_epochs=t.iterations, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                            num_nodes=t.num_nodes, precision=t.precision, log_every_n_steps=1,
                            callbacks=[selection, checkpoints],
                            logger=[CSVLogger(str(out), name="logs", version=""), TensorBoardLogger(str(out), name="tb", version="")],
                            enable_model_summary=False, num_sanity_val_steps=0,
                            enable_progress_bar=False)  # a bar of one step per iteration; the checks report progress
        trainer.fit(module, ckpt_path=str(last) if resume and last.is_file() else None)
    if trainer.is_global_zero:
        save(out / "agent.pt", actor)  # the kept iterate (`KeepBestGreedy` restored it)
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
    return _Trained(actor, layout, selection.best_iteration, trainer.is_global_zero)


def _warm_start(recipe: AgentRecipe, tracker: Tracker, dataset: VideoDataset, tracks: list[Track],
                features: dict[str, Features], actor: torch.nn.Module, out: Path,
                greedy_quality: Callable[[torch.nn.Module], float]) -> float:
    """Clone `imitation.teacher`'s decisions on the training tracks into `actor`, then improve the
    clone by rollouts (see `sam2rl.agents.imitation`); returns the final clone's greedy quality."""
    settings = recipe.imitation
    began = time.time()
    actions = _actions(recipe, tracker)

    def policy() -> AgentController:
        return AgentController(actor, actions)

    teacher = make_controller(settings.teacher, **settings.teacher_options)
    demonstrations = record_demonstrations(tracker, dataset, tracks, features, teacher, actions)
    reports = [imitate(actor, demonstrations, settings, recipe.trainer.seed)]
    for round_ in range(1, settings.rounds):  # DAgger: label the clone's own states, clone again on everything
        visited = record_demonstrations(tracker, dataset, tracks, features, teacher, actions, policy())
        demonstrations = torch.cat([demonstrations, visited])
        reports.append(imitate(actor, demonstrations, settings, recipe.trainer.seed + round_))
    reports[-1]["greedy_quality"] = greedy_quality(actor)
    improvements = []
    for round_ in range(settings.improve_rounds):  # policy iteration: clone the rollout-improved policy
        improved = OracleController(lookahead=None, continuation=policy())
        demonstrations = record_demonstrations(tracker, dataset, tracks, features, improved, actions)
        report = imitate(actor, demonstrations, settings, recipe.trainer.seed + settings.rounds + round_)
        improvements.append({**report, "greedy_quality": greedy_quality(actor)})
        if report["agreement_before"]["all"] == 1.0:  # the policy already takes the improved action everywhere
            break
    write_json(out / "imitation.json", {"teacher": settings.teacher, "minutes": (time.time() - began) / 60,
                                        **reports[-1], "rounds": reports, "improvement_rounds": improvements})
    return (improvements or reports)[-1]["greedy_quality"]


def _selection(recipe: AgentRecipe, dataset: VideoDataset, tracker: Tracker, cache: str | None, memory: FeatureMemory,
               where: str) -> _Checks | None:
    """The greedy checks' videos (`data.select_split` of `data.root`), which must not be trained on."""
    if recipe.data.select_split is None:
        return None
    chosen = VideoDataset(recipe.data.root, split=recipe.data.select_split)
    shared = sorted({v.name for v in chosen.sequences} & {v.name for v in dataset.sequences})
    if shared:
        raise RecipeError(f"{where}data.select_split: {', '.join(shared)} also in the training videos "
                          f"(data.split: {recipe.data.split}); the checks must score videos the agent does not train on")
    tracks = _decided(chosen, chosen.tracks())
    if not tracks:
        raise RecipeError(f"{where}data.select_split: no track with a decision in {recipe.data.select_split}")
    return _Checks(chosen, tracks, _features(tracker, chosen, cache, memory))


def _check(recipe: AgentRecipe, recipe_path: Path | None) -> tuple[list[Controller], CompositeReward]:
    """The recipe's ranges, then the names it gives (baselines, teacher, reward terms), before anything
    is written; returns the baselines (FIFO first) and the reward."""
    check_recipe(recipe, f"recipe {recipe_path}" if recipe_path else "recipe")
    where = f"recipe {recipe_path}: " if recipe_path else ""
    baselines = ["fifo", *[name for name in recipe.evaluation.baselines if name != "fifo"]]
    key = "evaluation.baselines"
    try:
        rules = [make_controller(name) for name in baselines]
        key = "data.select_split"
        if recipe.task == "overfit" and recipe.data.select_split is not None:
            raise ValueError("a per-video agent is checked on the track it trains on; select_split is for "
                             "task: generalize")
        key = "imitation.teacher"
        if recipe.imitation.teacher is None and recipe.imitation.teacher_options:
            raise ValueError(f"teacher_options {dict(recipe.imitation.teacher_options)} given, but no teacher "
                             "(imitation.teacher: null); name one, e.g. imitation.teacher=search")
        if recipe.imitation.teacher is not None:
            check_teacher(make_controller(recipe.imitation.teacher, **recipe.imitation.teacher_options))
        key = "reward.terms"
        reward = CompositeReward.from_config(recipe.reward)
    except (ValueError, TypeError) as error:  # TypeError: options the controller does not take
        raise RecipeError(f"{where}{key}: {error}") from error
    return rules, reward


def run(recipe: AgentRecipe, recipe_path: Path | None = None) -> dict:
    """Train the recipe's agents (one per track, or one generalist), score them next to the baselines,
    and write results, plots and agents to `output.dir`; returns the headline summary (empty on DDP
    ranks other than 0)."""
    rules, reward = _check(recipe, recipe_path)
    where = f"recipe {recipe_path}: " if recipe_path else ""
    torch.set_num_threads(recipe.trainer.threads)
    out = Path(recipe.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out / "recipe.yaml")
    recipe_yaml = OmegaConf.to_yaml(OmegaConf.structured(recipe))
    console = Console(width=max(Console().width, 130))  # the table (with its intervals) is unreadable when wrapped
    tracker = _tracker(recipe)
    dataset = VideoDataset(recipe.data.root, split=recipe.data.split)
    tracks = _select(dataset, recipe.data.tracks)
    decided = _decided(dataset, tracks)
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
    cache, budget = recipe.data.feature_cache, recipe.data.feature_memory
    memory = FeatureMemory(FeatureBudget(budget.device_mib, budget.host_mib), tracker.device)  # all videos, one budget
    # encoded when first read: the training envs, the warm start and the evaluation share these stores
    features = _features(tracker, dataset, cache, memory)
    began = time.time()
    checks = None
    if recipe.task == "overfit":
        jobs = [(f"{t.sequence}-{t.object_id}", [t]) for t in tracks]
        eval_data, eval_tracks = dataset, tracks
    else:
        jobs = [("generalist", tracks)]
        checks = _selection(recipe, dataset, tracker, cache, memory, where)
        eval_data = VideoDataset(recipe.data.val_root or recipe.data.root, split=recipe.data.val_split)
        if eval_data.root.resolve() == dataset.root.resolve() and recipe.data.val_split == recipe.data.split:
            console.print("[yellow]warning:[/yellow] data.val_root and data.val_split name the training videos: "
                          "the generalist is scored on videos it trained on")
        eval_tracks = _select(eval_data, recipe.data.val_tracks, "data.val_tracks")
    agents: dict[str, AgentController] = {}
    kept: dict[str, int] = {}  # the iteration each agent keeps (`selection.json`)
    is_main = True
    for number, (name, train_tracks) in enumerate(jobs, start=1):
        def say(line: str, where: str = f"agent {number} of {len(jobs)} ({name})") -> None:
            console.print(f"[bold]{where}[/bold]: {line}", highlight=False)

        finished = out / name / "agent.pt"
        if recipe.resume == "auto" and finished.is_file():  # trained by an earlier run
            agents[name] = load_agent(finished, tracker)
            say(f"trained by an earlier run, loaded from {finished}")
            if (out / name / "selection.json").is_file():
                kept[name] = json.loads((out / name / "selection.json").read_text())["kept_iteration"]
            continue
        say(f"training on {len(train_tracks)} track(s), {recipe.trainer.iterations} PPO iterations")
        trained = _train(recipe, tracker, reward, dataset, train_tracks, features, out / name,
                         recipe.resume == "auto", say, recipe_yaml, checks)
        is_main = trained.is_main
        if not is_main:
            continue
        agents[name] = AgentController(trained.actor, trained.layout.actions)
        kept[name] = trained.kept_iteration
    if not is_main:  # a DDP rank other than 0: rank 0 evaluates and reports
        return {}
    trained_s = time.time() - began
    if recipe.task == "overfit":
        agent: Controller = PerTrackAgents({(t.sequence, t.object_id): agents[name] for name, (t,) in jobs})
    else:
        agent = agents["generalist"]
        agent.name = "agent (generalist)"
    console.print(f"[bold]evaluation[/bold]: {', '.join(c.name for c in [*rules, agent])} on {len(eval_tracks)} track(s)",
                  highlight=False)
    results = evaluate(tracker, eval_data, [*rules, agent], skip_first=recipe.evaluation.skip_first,
                       cache_dir=cache, tracks=eval_tracks, features=features if eval_data is dataset else None,
                       feature_memory=memory)
    results["data"] = {"root": str(eval_data.root), "sequences": len(eval_data), "tracks": len(eval_tracks),
                       "seed": recipe.trainer.seed}  # `sam2rl pool` tells training seeds of the same tracks apart
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
