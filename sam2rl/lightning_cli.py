"""The `lightning` command: lightning 2.6 installs none, so `lightning run RECIPE.yaml` is ours
(same as `sam2rl run`); anything else goes to `lightning_sdk`'s command when it is installed."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

from sam2rl.run_cli import main as run_main, shipped_recipes
from sam2rl.errors import run_command
from sam2rl.memory_reuse import reuse_freed_memory

__all__ = ["console", "main"]

HELP = """usage: lightning run RECIPE.yaml|NAME [key=value ...]

Runs a sam2rl recipe: a YAML file, or one shipped in the package by name (overfit, generalize,
pretrain_tracker).
Other `lightning` commands belong to lightning_sdk, which is not installed."""


def _sdk_command():
    for entry in entry_points(group="console_scripts", name="lightning"):
        if entry.value.split(":")[0] != __name__:
            return entry.load()
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"] and len(argv) > 1 and (argv[1].endswith((".yaml", ".yml")) or argv[1] in shipped_recipes()):
        return run_command(run_main, argv[1:])
    sdk = _sdk_command()
    if sdk is not None:
        sys.argv = ["lightning", *argv]
        return sdk()
    print(HELP)
    return 0 if not argv or argv[0] in ("-h", "--help") else 2


def console() -> int:
    """Entry point of the `lightning` command; keeps freed tensor memory as `sam2rl.cli.console` does."""
    reuse_freed_memory()
    return main()
