"""The `sam2rl` command: one subcommand per job, each module owning its own arguments."""

from __future__ import annotations

import importlib
import sys
import warnings

from sam2rl.errors import run_command
from sam2rl.memory_reuse import reuse_freed_memory

COMMANDS = {
    "run": ("sam2rl.run_cli", "run a YAML recipe (recipes/*.yaml) with key=value overrides"),
    "eval": ("sam2rl.evaluation.cli", "track a dataset with memory controllers and score them"),
    "pool": ("sam2rl.evaluation.pool_cli", "one table and headline over several runs' tracks"),
    "bench": ("sam2rl.benchmark.cli", "transitions/s of the plain SAM 2 loop against SAM2MemoryEnv (--parts: where a step goes)"),
    "synth": ("sam2rl.synth.cli", "write synthetic tracking videos in the DAVIS layout"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
        print("usage: sam2rl COMMAND [options]   (sam2rl COMMAND --help for its options)\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    warnings.filterwarnings("ignore", message=".*cannot import name '_C' from 'sam2'.*")
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return run_command(module.main, argv[1:])


def console() -> int:
    """Entry point of the `sam2rl` command. The process is the command's own, so it keeps freed
    tensor memory for reuse (`sam2rl.memory_reuse`); `main` called from Python leaves its host's
    allocator alone."""
    reuse_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(console())
