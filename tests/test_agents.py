"""PPO agent: learning on a task with a known answer, checkpoints as a library, recipes, `lightning run`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from sam2rl.agents import AgentCheckpointError, AgentLayout, PPOModule, load_agent, make_actor_critic
from sam2rl.cli import main as sam2rl
from sam2rl.datasets import VideoDataset
from sam2rl.envs import TOKEN_FEATURES, SAM2MemoryEnv
from sam2rl.lightning_cli import main as lightning
from sam2rl.rewards import REWARDS, CompositeReward, register_reward
from sam2rl.schema.agent import EncoderSettings, EpisodeSettings, PPOSettings
from sam2rl.tracker import ModelSpec, Tracker
from sam2rl.tracker.bank import ActionLayout

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "overfit.yaml"


def imitate_fifo(td):
    """Toy task with a known answer: 1 for SAM 2's FIFO action (evict the oldest), else 0."""
    return (td["action"] == td["fifo_action"]).float()


@pytest.fixture
def toy_reward():
    register_reward("imitate_fifo")(imitate_fifo)
    yield
    del REWARDS["imitate_fifo"]  # other tests see only the built-ins


def tiny_ppo(reward: str, batch_size: int, window: int, width: int):
    """A random-weight nano at 64 px on the bundled sample: its env factory, and a small actor-critic."""
    torch.manual_seed(0)
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True))
    videos = VideoDataset(SAMPLE).sequences

    def make_env(seed: int, rank: int = 0, world: int = 1) -> SAM2MemoryEnv:
        return SAM2MemoryEnv(tracker, videos, batch_size, CompositeReward([reward]), EpisodeSettings(window=window),
                             seed=seed)

    actor, critic = make_actor_critic(make_env(0).token_dim, 4, 1, tracker.num_recent,
                                      EncoderSettings(width=width, layers=1, heads=2))
    return make_env, actor, critic


def test_ppo_learns_a_memory_task_with_a_known_answer(tmp_path: Path, toy_reward: None) -> None:
    make_env, actor, critic = tiny_ppo("imitate_fifo", batch_size=8, window=12, width=32)
    module = PPOModule(actor, critic, make_env, PPOSettings(rollout_steps=10, minibatch_size=40, lr=1e-3), iterations=40)
    L.Trainer(max_epochs=40, logger=CSVLogger(str(tmp_path), name="", version=""), enable_checkpointing=False,
              log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False).fit(module)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("train/reward")
    rewards = [float(line.split(",")[column]) for line in lines[1:] if line.split(",")[column]]
    assert len(rewards) == 40
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert first < 0.35, "a random policy picks FIFO's slot about 1 time in 7"
    assert last > first + 0.2, f"reward went from {first:.2f} to {last:.2f}"
    assert {"train/kl_approx", "train/clip_fraction", "train/explained_variance", "train/entropy",
            "train/action_discard", "train/action_write_slot1"} <= set(header)


def test_critic_warmup_leaves_the_actor_alone() -> None:
    make_env, actor, critic = tiny_ppo("iou", batch_size=4, window=6, width=16)
    before = [p.detach().clone() for p in (*actor.parameters(), *critic.parameters())]
    settings = PPOSettings(rollout_steps=4, minibatch_size=8, critic_warmup=2)
    trainer_options = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    for iterations, actor_moves in ((2, False), (3, True)):  # two critic-only iterations, then PPO as usual
        module = PPOModule(actor, critic, make_env, settings, iterations=iterations)
        L.Trainer(max_epochs=iterations, **trainer_options).fit(module)
        moved = [not torch.equal(a, b) for a, b in zip((*actor.parameters(), *critic.parameters()), before)]
        num_actor = len(list(actor.parameters()))
        assert any(moved[:num_actor]) == actor_moves and any(moved[num_actor:])
        for p, b in zip((*actor.parameters(), *critic.parameters()), before):
            p.data.copy_(b)


def test_fifo_prior_starts_the_policy_at_sam2s_own_rule() -> None:
    torch.manual_seed(0)
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True))
    env = SAM2MemoryEnv(tracker, VideoDataset(SAMPLE).sequences, 6, CompositeReward(["iou"]), EpisodeSettings(window=12))
    obs = env.reset()
    for _ in range(8):  # banks fill up, then FIFO evicts
        obs = env.step(obs.set("action", env.fifo_action()))["next"]
    assert torch.equal(obs["fifo_action"].argmax(-1), env.fifo_action())
    for prior, expect_fifo in ((10.0, True), (0.0, False)):
        actor, _ = make_actor_critic(env.token_dim, 4, 1, tracker.num_recent, EncoderSettings(fifo_prior=prior))
        logits = actor.module[0](obs.clone())["logits"]
        chosen = logits.softmax(-1).gather(1, env.fifo_action()[:, None])[:, 0]
        assert bool((chosen > 0.99).all()) == expect_fifo, (prior, chosen)


def test_without_appearance_the_networks_read_only_the_slot_scalars() -> None:
    torch.manual_seed(0)
    token_dim, num_recent = 16 + len(TOKEN_FEATURES), 3
    obs = {"tokens": torch.randn(5, 1 + num_recent + 1, token_dim), "global": torch.randn(5, 4),
           "fifo_action": torch.nn.functional.one_hot(torch.full((5,), 2), num_recent + 2).float()}
    other_looks = {**obs, "tokens": obs["tokens"].clone()}
    other_looks["tokens"][..., :16] = torch.randn(5, 1 + num_recent + 1, 16)  # pooled features only
    other_scores = {**obs, "tokens": obs["tokens"].clone()}
    other_scores["tokens"][..., 16:] += torch.randn(5, 1 + num_recent + 1, len(TOKEN_FEATURES))
    for appearance in (True, False):
        torch.manual_seed(0)
        actor, critic = make_actor_critic(token_dim, 4, 1, num_recent, EncoderSettings(appearance=appearance))
        policy, value = actor.module[0].module, critic.module

        def outputs(o: dict) -> tuple[torch.Tensor, torch.Tensor]:
            return policy(o["tokens"], o["global"], o["fifo_action"]), value(o["tokens"], o["global"])

        base = outputs(obs)
        looks_matter = any(not torch.allclose(a, b) for a, b in zip(base, outputs(other_looks)))
        assert looks_matter == appearance
        assert all(not torch.allclose(a, b) for a, b in zip(base, outputs(other_scores)))


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("overfit")
    code = lightning(["run", str(RECIPE), "model.random_weights=true", "model.image_size=64", "trainer.iterations=2", "env.batch_size=4", "env.group_size=2",
                      "ppo.rollout_steps=4", "data.tracks=[synth-medium-1000-000:1]", "imitation.teacher=oracle",
                      "imitation.steps=2", "imitation.rounds=2", "imitation.improve_rounds=1",
                      f"output.dir={out}"])
    assert code == 0
    return out


def test_overfit_recipe_scores_agents_against_the_baselines(overfit_run: Path) -> None:
    summary = json.loads((overfit_run / "summary.json").read_text())
    results = json.loads((overfit_run / "results.json").read_text())
    controllers = results["controllers"]
    assert list(controllers) == ["fifo", "samurai", "dam4sam", "sam2long", "oracle", "agent (per video)"]
    assert controllers["dam4sam"]["bank"]["anchors"] == 4 and controllers["agent (per video)"]["bank"]["anchors"] == 1
    for entry in controllers.values():  # only the trained track is scored
        assert [(r["sequence"], r["object_id"]) for r in entry["tracks"]] == [("synth-medium-1000-000", 1)]
        assert len(entry["tracks"][0]["iou"]) == 24
    assert summary["task"] == "overfit" and summary["num_tracks"] == 1
    (row,) = summary["tracks"]
    assert row["fifo"] == controllers["fifo"]["tracks"][0]["quality"]
    assert row["agent"] == controllers["agent (per video)"]["tracks"][0]["quality"]
    gains = {name: entry["overall"]["gain_over_fifo"] for name, entry in controllers.items()}
    best = max(["samurai", "dam4sam", "sam2long"], key=lambda name: gains[name])
    assert summary["best_heuristic"] == best and summary["agent_gain"] == gains["agent (per video)"]
    assert summary["bootstrap"]["seed"] == 0 and summary["bootstrap"]["tracks"] == 1 and results["data"]["seed"] == 0
    assert sum(summary["agent_wins"].values()) == 1  # one track: a win, a tie or a loss against FIFO
    assert {p.name for p in (overfit_run / "plots").iterdir()} >= {"synth-medium-1000-000_obj1_iou.png",
                                                                     "synth-medium-1000-000_obj1_memory.png"}
    assert (overfit_run / "scores.csv").is_file()
    assert "iterations: 2" in (overfit_run / "recipe.yaml").read_text()
    assert (overfit_run / "synth-medium-1000-000-1" / "logs" / "metrics.csv").is_file()
    selection = json.loads((overfit_run / "synth-medium-1000-000-1" / "selection.json").read_text())
    checks = {c["iteration"]: c["quality"] for c in selection["greedy_quality"]}
    assert list(checks) == [0, 2]  # before training and after the last iteration
    assert summary["kept_iteration"] == {"synth-medium-1000-000-1": selection["kept_iteration"]}
    assert row["agent"] == max(checks.values()) == checks[selection["kept_iteration"]]  # the kept iterate is scored
    warm = json.loads((overfit_run / "synth-medium-1000-000-1" / "imitation.json").read_text())
    assert warm["teacher"] == "oracle" and len(warm["loss"]) == 2  # 2 steps
    assert [r["decisions"] for r in warm["rounds"]] == [23, 46]  # 24 frames; DAgger adds the clone's own 23
    (improved,) = warm["improvement_rounds"]  # the rollout-improved policy labels its own 23 frames
    assert improved["decisions"] == 23 and 0 <= improved["greedy_quality"] <= 1
    assert checks[0] == improved["greedy_quality"]  # PPO starts from the improved clone


def test_agent_checkpoint_loads_as_a_controller_in_eval(overfit_run: Path, tmp_path: Path) -> None:
    agent = overfit_run / "synth-medium-1000-000-1" / "agent.pt"
    code = sam2rl(["eval", "--data", str(SAMPLE), "--model", "nano", "--random-weights", "--image-size", "64",
                   "--controllers", f"fifo,agent:{agent}", "--json", str(tmp_path / "scores.json")])
    assert code == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    actions = [a for track in scores["controllers"]["agent:agent.pt"]["tracks"] for a in track["actions"]]
    assert actions and all(0 <= a <= 7 for a in actions)
    # the loaded policy is the trained one, weight for weight (a fresh one with the FIFO prior would
    # take the same actions here)
    saved = torch.load(agent, weights_only=False)["actor"]
    loaded = load_agent(agent).actor.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_agent_for_another_sam2_is_refused_unless_forced(overfit_run: Path) -> None:
    agent = overfit_run / "synth-medium-1000-000-1" / "agent.pt"
    other = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True, seed=5))
    with pytest.raises(AgentCheckpointError, match=r"agent\.pt: trained on SAM 2 weights_sha256='random-seed0'.*force=True"):
        load_agent(agent, other)
    assert load_agent(agent, other, force=True).name == "agent:agent.pt"
    with pytest.raises(AgentCheckpointError, match="file not found"):
        load_agent(overfit_run / "missing.pt")


def test_incomplete_agent_checkpoint_names_what_it_lacks(overfit_run: Path, tmp_path: Path) -> None:
    payload = torch.load(overfit_run / "synth-medium-1000-000-1" / "agent.pt", weights_only=False)
    del payload["layout"], payload["actor"]
    torch.save(payload, tmp_path / "cut.pt")
    with pytest.raises(AgentCheckpointError, match=r"cut\.pt: no layout, actor \(an incomplete sam2rl-agent/1 file\)"):
        load_agent(tmp_path / "cut.pt")


def test_agent_layout_round_trips_and_old_flat_layouts_still_load(overfit_run: Path, tmp_path: Path) -> None:
    saved = torch.load(overfit_run / "synth-medium-1000-000-1" / "agent.pt", weights_only=False)
    assert saved["layout"]["actions"] == {"num_anchor": 1, "allow_discard": True, "allow_anchor": False,
                                         "distinct_writes": True, "hold": 2}  # the recipe's
    layout = AgentLayout.from_saved(saved["layout"])
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True))
    assert asdict(layout) == saved["layout"] and layout.token_dim == tracker.memory_shape[0] + len(TOKEN_FEATURES)
    # checkpoints written before `AgentLayout` kept one flat dict
    # (no held decisions, no distinct writes then)
    flat = {"token_dim": layout.token_dim, "global_dim": layout.global_dim, "num_recent": layout.num_recent,
            "num_anchor": 1, "allow_discard": True, "allow_anchor": False}
    torch.save({**saved, "layout": flat}, tmp_path / "flat.pt")
    agent = load_agent(tmp_path / "flat.pt")
    assert agent.actions == ActionLayout(1, True, False) == ActionLayout(1, True, False, distinct_writes=False, hold=1)
    assert all(torch.equal(saved["actor"][k], v) for k, v in agent.actor.state_dict().items())


def test_lightning_command_help_and_bad_recipe(capsys: pytest.CaptureFixture) -> None:
    assert lightning(["--help"]) == 0 and "lightning run RECIPE.yaml" in capsys.readouterr().out
    assert lightning(["run", str(RECIPE), "ppo.clip_epsilom=0.1"]) == 2
    assert "did you mean 'ppo.clip_epsilon'?" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "evaluation.baselines=[fifo,samuray]"]) == 2
    assert "evaluation.baselines: unknown controller 'samuray'" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "imitation.teacher=sam2long:3"]) == 2
    assert "imitation.teacher: teacher 'sam2long:3' searches whole videos" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "imitation.teacher=search", "imitation.teacher_options={marginn: 0.1}"]) == 2
    assert "imitation.teacher:" in (out := capsys.readouterr().err) and "marginn" in out
    assert lightning(["run", str(RECIPE), "imitation.teacher_options={margin: 0.1}"]) == 2
    assert "imitation.teacher: teacher_options {'margin': 0.1} given, but no teacher" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "ppo.self_imitation=true", "env.window=16"]) == 2
    assert "ppo.self_imitation: clones whole-track episodes; it needs env.window: null (got 16)" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "ppo.self_imitation=true", "trainer.devices=2"]) == 2
    assert "ppo.self_imitation: clones each process's own episodes" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "task=generalise"]) == 2
    assert "task: must be one of 'overfit', 'generalize', got 'generalise'; did you mean 'generalize'?" in capsys.readouterr().err


def test_bad_paths_and_names_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Input errors raised deep inside a run (dataset, checkpoint, model) print one line, no traceback."""
    monkeypatch.chdir(tmp_path)  # a relative data.root is read from the current folder: not found from here
    assert lightning(["run", str(RECIPE), "data.root=data/sample"]) == 2
    out = capsys.readouterr().err
    assert out.startswith("error: dataset root data/sample (relative to the current folder: ") and "Traceback" not in out
    assert str(tmp_path / "data" / "sample") in out
    assert lightning(["run", str(RECIPE), f"model.checkpoint={tmp_path / 'nope.pt'}"]) == 2
    assert f"error: checkpoint {tmp_path / 'nope.pt'} for model nano: file not found" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "model.name=sam3"]) == 2
    assert "error: unknown SAM 2 model 'sam3'" in capsys.readouterr().err
    assert lightning(["run", str(RECIPE), "model.random_weights=true", "model.image_size=100"]) == 2
    assert "model.image_size: must be a positive multiple of 32, got 100" in capsys.readouterr().err


def test_loaded_agent_drives_the_predictor(overfit_run: Path) -> None:
    import sam2rl
    from sam2rl.predictor import SAM2RLVideoPredictor

    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True))
    agent = sam2rl.load_agent(overfit_run / "synth-medium-1000-000-1" / "agent.pt", tracker)
    predictor = SAM2RLVideoPredictor(tracker, agent)
    video = VideoDataset(SAMPLE).sequences[0]
    state = predictor.init_state(str(video.frame_paths[0].parent))
    predictor.add_new_mask(state, 0, 1, video.object_mask(0, 1))
    outputs = list(predictor.propagate_in_video(state))
    assert len(outputs) == video.num_frames and outputs[-1][2].shape == (1, 1, video.height, video.width)


def test_generalize_recipe_scores_the_held_out_videos(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    generalize = RECIPE.parent / "generalize.yaml"
    code = lightning(["run", str(generalize), "model.random_weights=true", "model.image_size=64", "trainer.iterations=1",
                      "trainer.select_every=1", "env.batch_size=4", "ppo.rollout_steps=4", "imitation.steps=2",
                      "evaluation.baselines=[fifo]", "evaluation.plots=false", f"output.dir={tmp_path}"])
    assert code == 0
    assert "scored on videos it trained on" not in capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    held_out = VideoDataset(SAMPLE, split="ImageSets/val.txt")
    expected = sorted((t.sequence, t.object_id) for t in held_out.tracks())
    for name in ("fifo", "agent (generalist)"):
        assert sorted((t["sequence"], t["object_id"]) for t in results["controllers"][name]["tracks"]) == expected
    assert {t.sequence for t in held_out.tracks()}.isdisjoint(VideoDataset(SAMPLE, split="ImageSets/train.txt").names())
    assert (tmp_path / "generalist" / "agent.pt").is_file()


def test_generalist_checks_score_the_selection_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    generalize = RECIPE.parent / "generalize.yaml"
    tiny = ["model.random_weights=true", "model.image_size=64", "trainer.iterations=1", "trainer.select_every=1",
            "env.batch_size=4", "ppo.rollout_steps=4", "imitation.teacher=null", "agent.fifo_prior=10",
            "evaluation.baselines=[fifo]", "evaluation.plots=false"]
    code = lightning(["run", str(generalize), *tiny, "data.select_split=ImageSets/train.txt", f"output.dir={tmp_path}"])
    assert code == 2
    assert "data.select_split: synth-medium-1000-000 also in the training videos" in capsys.readouterr().err
    code = lightning(["run", str(generalize), *tiny, "data.select_split=ImageSets/val.txt", f"output.dir={tmp_path}"])
    assert code == 0
    # the check before the first update is FIFO's choice (prior 10), scored on the selection video: what the
    # evaluation gives FIFO there (val_root is that same video here)
    selection = json.loads((tmp_path / "generalist" / "selection.json").read_text())
    checks = selection["greedy_quality"]
    fifo = json.loads((tmp_path / "results.json").read_text())["controllers"]["fifo"]["overall"]["quality"]
    assert checks[0]["quality"] == pytest.approx(fifo, abs=1e-6)
    # the best so far, written as it was found, is the agent the run kept
    best = torch.load(tmp_path / "generalist" / "best_so_far.pt", weights_only=False)
    kept = torch.load(tmp_path / "generalist" / "agent.pt", weights_only=False)
    assert best["iteration"] == selection["kept_iteration"]
    assert best["greedy_quality"] == max(c["quality"] for c in checks)
    assert best["actor"].keys() == kept["actor"].keys()
    assert all(torch.equal(best["actor"][k], kept["actor"][k]) for k in kept["actor"])


def test_a_track_with_nothing_to_decide_is_refused_by_name(late_object_sample: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    code = lightning(["run", str(RECIPE), f"data.root={late_object_sample}", "data.tracks=[synth-medium-1000-000:7]",
                      "model.random_weights=true", "model.image_size=64", f"output.dir={tmp_path}"])
    assert code == 2
    assert "data.tracks: synth-medium-1000-000:7 appear(s) fewer than 3 frames before the video ends" in capsys.readouterr().err
