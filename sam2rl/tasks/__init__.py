"""Task runners: what `sam2rl run RECIPE` (and `lightning run RECIPE`) runs for a recipe's `task`.

They sit above evaluation (they score, report and plot) and below the commands; each reads its
recipe type from `sam2rl.schema`. `TASKS` names, per task, the recipe type and the runner by dotted
path, so a command imports only the task it runs (`task`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "task"]

TASKS = {
    "pretrain_tracker": ("sam2rl.schema.pretrain.PretrainRecipe", "sam2rl.tasks.pretrain.run"),
    "overfit": ("sam2rl.schema.agent.AgentRecipe", "sam2rl.tasks.agent.run"),
    "generalize": ("sam2rl.schema.agent.AgentRecipe", "sam2rl.tasks.agent.run"),
}


def _named(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def task(name: str) -> tuple[type, Callable[..., Any]]:
    """The recipe type and the runner (`run(recipe, recipe_path)`) of task `name`, one of `TASKS`."""
    schema, runner = TASKS[name]
    return _named(schema), _named(runner)
