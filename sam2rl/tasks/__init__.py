"""Task runners: what `sam2rl run RECIPE` (and `lightning run RECIPE`) runs for a recipe's `task`.

They sit above evaluation (they score, report and plot) and below the commands; each reads its
recipe type from `sam2rl.schema`. `TASKS` names, per task, the recipe type and the runner by dotted
path, so a command imports only the task it runs.
"""

TASKS = {
    "pretrain_tracker": ("sam2rl.schema.pretrain.PretrainRecipe", "sam2rl.tasks.pretrain.run"),
    "overfit": ("sam2rl.schema.agent.AgentRecipe", "sam2rl.tasks.agent.run"),
    "generalize": ("sam2rl.schema.agent.AgentRecipe", "sam2rl.tasks.agent.run"),
}

__all__ = ["TASKS"]
