"""Recipe values outside their field's range fail before anything runs, naming the file and the key."""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import pytest

from sam2rl.lightning_cli import main as lightning
from sam2rl.schema.agent import AgentRecipe, TrainerSection
from sam2rl.schema.fields import RULE
from sam2rl.schema.pretrain import PretrainRecipe
from sam2rl.schema.recipe import RecipeError, load_recipe, read_recipe_file, recipe_problems
from sam2rl.tasks import task
from sam2rl.tasks.agent import run as run_agents

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
OVERFIT, PRETRAIN = RECIPES / "overfit.yaml", RECIPES / "pretrain_tracker.yaml"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_pass_validation(path: Path) -> None:
    schema, _ = task(read_recipe_file(path).get("task"))
    assert recipe_problems(load_recipe(path, schema)) == []


def _unruled(schema: type, prefix: str = "") -> list[str]:
    """Fields of `schema`, its sections and its lists' sections that declare no rule."""
    missing = []
    for spec in fields(schema):
        default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
        if is_dataclass(default):
            missing += _unruled(type(default), f"{prefix}{spec.name}.")
            continue
        if RULE not in spec.metadata:
            missing.append(f"{prefix}{spec.name}")
        if isinstance(default, list) and default and is_dataclass(default[0]):
            missing += _unruled(type(default[0]), f"{prefix}{spec.name}[i].")
    return missing


@pytest.mark.parametrize("schema", [AgentRecipe, PretrainRecipe])
def test_every_field_declares_its_range(schema: type) -> None:
    assert _unruled(schema) == []


AGENT_CASES = [  # (override, the error's end: key and what is wrong)
    ("trainer.iterations=-1", "trainer.iterations: must be a whole number >= 1, got -1"),
    ("env.batch_size=0", "env.batch_size: must be a whole number >= 1, got 0"),
    ("env.window=1", "env.window: must be a whole number >= 3, got 1"),  # optional int
    ("model.image_size=100", "model.image_size: must be a positive multiple of 32, got 100"),
    ("trainer.devices=0", "trainer.devices: must be a whole number >= 1, or -1 for every device, got 0"),
    ("ppo.lr=nan", "ppo.lr: must be a finite number > 0, got nan"),
    ("ppo.lr=inf", "ppo.lr: must be a finite number > 0, got inf"),
    ("ppo.entropy_coeff=-0.1", "ppo.entropy_coeff: must be a finite number >= 0, got -0.1"),
    ("ppo.gamma=-3", "ppo.gamma: must be a finite number in [0, 1], got -3.0"),  # probabilities
    ("ppo.lmbda=1.5", "ppo.lmbda: must be a finite number in [0, 1], got 1.5"),
    ("imitation.label_smoothing=1", "imitation.label_smoothing: must be a finite number in [0, 1), got 1.0"),
    ("agent.fifo_prior=nan", "agent.fifo_prior: must be a finite number, got nan"),
    ("data.feature_memory.device_mib=-1", "data.feature_memory.device_mib: must be a finite number >= 0, got -1.0"),
    ("data.feature_memory.host_mib=inf", "data.feature_memory.host_mib: must be a finite number >= 0, got inf"),
    ("trainer.accelerator=gpux", "trainer.accelerator: must be one of 'auto', 'gpu', "),  # choices
    ("trainer.precision=17", "got '17'; did you mean '16'?"),
    ("trainer.strategy=dpp", "trainer.strategy: must be one of 'auto', 'ddp', "),
    ("task=generalise", "task: must be one of 'overfit', 'generalize', got 'generalise'; did you mean 'generalize'?"),
    ("resume=always", "resume: must be one of null, 'auto', got 'always'"),
    ("imitation.teacher=' '", "imitation.teacher: must be a non-empty string, got ' '"),  # optional string
    ("data.tracks=[synth-medium-1000-000:1,bear]",  # list items
     "data.tracks[1]: must be 'sequence:object_id' (e.g. 'bear:1'), got 'bear'"),
    ("evaluation.baselines=[fifo,' ']", "evaluation.baselines[1]: must be a non-empty string, got ' '"),
    ("reward.terms=[]", "reward.terms: must list at least one term, got none"),
    ("agent.heads=5", "agent.heads: must divide agent.width (64), got 5"),  # across fields
    ("agent.heads=0", "agent.heads: must be a whole number >= 1, got 0"),  # ranges first
    ("env.allow_anchor=true", "env.allow_anchor: adds anchors only with env.max_anchors >= 2"),
    ("ppo.self_imitation=true & env.window=16", "ppo.self_imitation: clones whole-track episodes; it needs env.window: "
                                               "null (got 16)"),  # across sections
]


@pytest.mark.parametrize("override,message", AGENT_CASES, ids=[case[0] for case in AGENT_CASES])
def test_agent_recipe_value_outside_its_range(override: str, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(OVERFIT, AgentRecipe, override.split(" & "))
    assert str(info.value).startswith(f"recipe {OVERFIT}: ") and message in str(info.value)


PRETRAIN_CASES = [
    ("trainer.max_steps=0", "trainer.max_steps: must be a whole number >= 1, got 0"),
    ("data.num_workers=-1", "data.num_workers: must be a whole number >= 0, got -1"),
    ("trainer.max_minutes=-5", "trainer.max_minutes: must be a finite number > 0, got -5.0"),  # optional float
    ("trainer.max_minutes=nan", "trainer.max_minutes: must be a finite number > 0, got nan"),
    ("optim.weight_decay=-1", "optim.weight_decay: must be a finite number >= 0, got -1.0"),
    ("data.target_prob=1.5", "data.target_prob: must be a finite number in [0, 1], got 1.5"),
    ("loss.focal_alpha=-0.1", "loss.focal_alpha: must be a finite number in [0, 1], got -0.1"),
    ("trainer.accelerator=cpux", "trainer.accelerator: must be one of 'auto', 'gpu', "),
    ("trainer.precision=33", "trainer.precision: must be one of "),
    ("output.export_dtype=float8", "output.export_dtype: must be one of 'float32', 'float16', 'bfloat16', got 'float8'"),
    ("trainer.devices=2", "trainer.devices: pretraining runs on one device, got 2"),
    ("resume=/nowhere/last.ckpt", "resume: checkpoint /nowhere/last.ckpt not found"),
    ("data.curriculum=[]", "data.curriculum: must list at least one stage, got none"),
    ("data.curriculum=[{until: 5, clip_frames: 4}, {until: 2, clip_frames: 1}]",  # list of sections
     "data.curriculum[1].clip_frames: must be a whole number >= 2, got 1"),
    ("data.curriculum=[{until: 5}, {until: 5}]",
     "data.curriculum[1].until: must be greater than the stage before's (5), got 5"),
    ("data.curriculum=[{until: null}, {until: 5}]", "data.curriculum[0].until: null (forever) is for the last stage only"),
    ("data.curriculum=[{until: null, difficulty: {easy: -1.0}}]",
     "data.curriculum[0].difficulty: weights must be finite numbers >= 0, got {'easy': -1.0}"),
    ("data.curriculum=[{until: null, difficulty: {easy: 0.0}}]", "data.curriculum[0].difficulty: needs a weight > 0"),
]


@pytest.mark.parametrize("override,message", PRETRAIN_CASES, ids=[case[0] for case in PRETRAIN_CASES])
def test_pretrain_recipe_value_outside_its_range(override: str, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(PRETRAIN, PretrainRecipe, [override])
    assert str(info.value).startswith(f"recipe {PRETRAIN}: ") and message in str(info.value)


@pytest.mark.parametrize("recipe,key", [(OVERFIT, "output.dir"), (OVERFIT, "data.feature_cache"),
                                        (PRETRAIN, "output.dir"), (PRETRAIN, "output.export")])
def test_output_paths_where_a_file_or_folder_stands(recipe: Path, key: str, tmp_path: Path) -> None:
    schema = AgentRecipe if recipe == OVERFIT else PretrainRecipe
    (tmp_path / "file").write_text("taken")
    wrong = tmp_path if key == "output.export" else tmp_path / "file"
    kind = "a folder, not a file" if key == "output.export" else "a file, not a folder"
    with pytest.raises(RecipeError, match=f"{key}: {wrong} is {kind}"):
        load_recipe(recipe, schema, [f"{key}={wrong}"])
    with pytest.raises(RecipeError, match=f"{key}: {tmp_path / 'file' / 'below'}: {tmp_path / 'file'} is a file"):
        load_recipe(recipe, schema, [f"{key}={tmp_path / 'file' / 'below'}"])


@pytest.mark.parametrize("override,message", [
    ("trainer.iterations=-1", "trainer.iterations: must be a whole number >= 1, got -1"),
    ("env.batch_size=0", "env.batch_size: must be a whole number >= 1, got 0"),
    ("env.window=1", "env.window: must be a whole number >= 3, got 1"),
    ("ppo.lr=nan", "ppo.lr: must be a finite number > 0, got nan"),
    ("ppo.gamma=-3", "ppo.gamma: must be a finite number in [0, 1], got -3.0"),
    ("output.dir=FILE", "output.dir: FILE is a file, not a folder"),
])
def test_the_command_prints_one_line_and_writes_nothing(override: str, message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative data.root and output.dir: nothing is read or written before the check
    (tmp_path / "FILE").write_text("taken")
    assert lightning(["run", str(OVERFIT), override]) == 2
    err = capsys.readouterr().err
    assert err == f"error: recipe {OVERFIT}: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"] and (tmp_path / "FILE").read_text() == "taken"


def test_a_recipe_built_in_python_is_checked_by_the_runner(tmp_path: Path) -> None:
    recipe = AgentRecipe(trainer=TrainerSection(iterations=-1))
    recipe.output.dir = str(tmp_path / "run")
    with pytest.raises(RecipeError, match=r"^recipe: trainer\.iterations: must be a whole number >= 1, got -1$"):
        run_agents(recipe)
    assert not (tmp_path / "run").exists()
