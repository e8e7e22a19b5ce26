"""The base of every error that blames the user's input rather than the code, and how the
commands report it: one `error:` line naming the file, key or value at fault, status 2.
Any other exception is a bug and keeps its traceback."""

from __future__ import annotations

from typing import Callable

__all__ = ["InputError", "run_command"]


class InputError(Exception):
    """Input that cannot be used; the message names the file, key or value at fault."""


def run_command(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """`main(argv)`, with an `InputError` printed as one line (status 2) instead of a traceback."""
    try:
        return main(argv)
    except InputError as error:
        print(f"error: {error}")
        return 2
