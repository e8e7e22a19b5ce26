"""`sam2rl run RECIPE [key=value ...]`: run the job a recipe's `task` names (`sam2rl.tasks`).

RECIPE is a YAML file, or the name of a recipe shipped inside the package (`overfit`, `generalize`,
`pretrain_tracker`: `sam2rl/recipes/NAME.yaml`), so an installed wheel runs them from any folder."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from sam2rl.schema.recipe import RecipeError, load_recipe, read_recipe_file
from sam2rl.tasks import TASKS, task as load_task

__all__ = ["main", "recipe_path", "shipped_recipes"]


def shipped_recipes() -> list[str]:
    """Names of the recipes inside the package."""
    folder = resources.files("sam2rl") / "recipes"
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def recipe_path(recipe: str) -> Path:
    """The file `recipe` names: a path, or a shipped recipe's name."""
    path = Path(recipe)
    if not path.is_file() and path.suffix not in (".yaml", ".yml") and recipe in shipped_recipes():
        return Path(str(resources.files("sam2rl") / "recipes" / f"{recipe}.yaml"))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2rl run", description=__doc__)
    parser.add_argument("recipe", type=recipe_path,
                        help=f"YAML recipe file, or a shipped recipe's name ({', '.join(shipped_recipes())})")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=100")
    args = parser.parse_args(argv)
    task = read_recipe_file(args.recipe).get("task")
    if task not in TASKS:
        raise RecipeError(f"recipe {args.recipe}: `task` is {task!r}; known tasks: {', '.join(TASKS)}")
    schema, runner = load_task(task)
    recipe = load_recipe(args.recipe, schema, args.overrides)
    runner(recipe, args.recipe)
    return 0
