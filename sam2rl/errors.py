"""The base of every error that blames the user's input rather than the code, and how the
commands report it: one `error:` line on stderr naming the file, key or value at fault, status 2.
Any other exception is a bug and keeps its traceback."""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.markup import escape

__all__ = ["InputError", "report_error", "run_command"]


class InputError(Exception):
    """Input that cannot be used; the message names the file, key or value at fault."""


def run_command(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """`main(argv)`, with an `InputError` printed as one line (status 2) instead of a traceback."""
    try:
        return main(argv)
    except InputError as error:
        return report_error(error)


def report_error(error: object) -> int:
    """Print `error: <message>` on stderr (red on a terminal, never wrapped); returns 2, the status of
    a command given input it cannot use."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True, highlight=False)
    return 2
