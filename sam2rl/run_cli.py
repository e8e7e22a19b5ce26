"""`sam2rl run RECIPE [key=value ...]`: run the job a recipe's `task` names (`sam2rl.tasks`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sam2rl.schema.recipe import RecipeError, load_recipe, read_recipe_file
from sam2rl.tasks import TASKS, task as load_task

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2rl run", description=__doc__)
    parser.add_argument("recipe", type=Path, help="YAML recipe (see recipes/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=100")
    args = parser.parse_args(argv)
    task = read_recipe_file(args.recipe).get("task")
    if task not in TASKS:
        raise RecipeError(f"recipe {args.recipe}: `task` is {task!r}; known tasks: {', '.join(TASKS)}")
    schema, runner = load_task(task)
    recipe = load_recipe(args.recipe, schema, args.overrides)
    runner(recipe, args.recipe)
    return 0
