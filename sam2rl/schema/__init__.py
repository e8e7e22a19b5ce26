"""Recipe schemas, the bottom layer every task and component reads its settings from.

`recipe` loads and checks recipes (keys, types, ranges), `fields` declares each field's range,
`agent` and `pretrain` hold each task's sections. Nothing here imports the rest of sam2rl (but
`errors`, `atomic` and `lookup`), so any layer may import a section type.
"""

from sam2rl.schema.recipe import RecipeError, check_recipe, load_recipe, read_recipe_file, save_recipe

__all__ = ["RecipeError", "check_recipe", "load_recipe", "read_recipe_file", "save_recipe"]
