"""`sam2rl run RECIPE [key=value ...]`: run the job a recipe's `task` names."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from sam2rl.recipe import RecipeError, load_recipe, read_recipe_file

__all__ = ["TASKS", "main"]

TASKS = {
    "pretrain_tracker": ("sam2rl.pretrain.run", "PretrainRecipe"),
    "overfit": ("sam2rl.agents.run", "AgentRecipe"),
    "generalize": ("sam2rl.agents.run", "AgentRecipe"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2rl run", description=__doc__)
    parser.add_argument("recipe", type=Path, help="YAML recipe (see recipes/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=100")
    args = parser.parse_args(argv)
    task = read_recipe_file(args.recipe).get("task")
    if task not in TASKS:
        raise RecipeError(f"recipe {args.recipe}: `task` is {task!r}; known tasks: {', '.join(TASKS)}")
    module_name, schema_name = TASKS[task]
    module = importlib.import_module(module_name)
    recipe = load_recipe(args.recipe, getattr(module, schema_name), args.overrides)
    module.run(recipe, args.recipe)
    return 0
