"""A plain (non-editable) wheel carries what sam2rl needs: nano weights, configs, recipes, the sample."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds, from a copy of the sources (the build writes next to them)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "sam2rl", source / "sam2rl", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out)], check=True, capture_output=True)
    return next(out.glob("sam2rl-*.whl"))


def test_the_wheel_holds_weights_configs_recipes_and_sample(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for wanted in ("sam2rl/weights/nano.pt", "sam2rl/weights/nano.md", "sam2rl/configs/nano.yaml",
                   "sam2rl/recipes/overfit.yaml", "sam2rl/recipes/generalize.yaml",
                   "sam2rl/recipes/pretrain_tracker.yaml", "sam2rl/sample/ImageSets/train.txt"):
        assert wanted in names, wanted
    assert any(name.startswith("sam2rl/sample/JPEGImages/") for name in names)
    metadata = next(name for name in names if name.endswith("METADATA"))
    requires = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: hydra-core" in requires  # imported by sam2rl.tracker.models


def test_the_installed_wheel_runs_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    """Unpacked where nothing of the repository is (an install's site-packages), with the recipes and
    the nano checkpoint found by name and the bundled sample tracked end to end."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    script = (
        "import sys, sam2rl\n"
        "from sam2rl.run_cli import recipe_path\n"
        "from sam2rl.schema.recipe import load_recipe\n"
        "from sam2rl.schema.agent import AgentRecipe\n"
        "from sam2rl.tracker import ModelSpec\n"
        "from sam2rl.cli import main\n"
        "print(sam2rl.__file__)\n"
        "print(ModelSpec('nano').resolve_checkpoint())\n"
        "print(load_recipe(recipe_path('overfit'), AgentRecipe).data.root)\n"
        "sys.exit(main(['eval', '--data', 'sam2rl:sample', '--model', 'nano', '--json', 'scores.json']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "SAM2RL_CHECKPOINT_DIR": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    package, checkpoint, root = done.stdout.splitlines()[:3]
    assert package.startswith(str(site)) and checkpoint == str(site / "sam2rl" / "weights" / "nano.pt")
    assert root == "sam2rl:sample" and (work / "scores.json").is_file()
