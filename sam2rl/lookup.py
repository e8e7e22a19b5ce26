"""Resolving what a user names: dotted paths, options for a factory, and did-you-mean hints.

Recipes, controllers and rewards all let a user name a built-in or their own code; these three
helpers are the one way that is done, so every such error reads the same.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["check_options", "did_you_mean", "import_dotted"]


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """`"; did you mean 'x'?"` for the closest of `choices`, or `""` when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def import_dotted(target: str, error: Callable[[str], Exception]) -> Any:
    """The object at dotted path `target` (`pkg.module.name`, or `pkg.module.Class.attr`).

    The longest importable module prefix is used. `error(message)` builds the exception raised when
    the path is malformed, a module fails to import, or an attribute is missing; the message says which.
    """
    parts = target.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise error(f"{target!r} is not a dotted path 'package.module.name'")
    missing: BaseException | None = None
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # only "this prefix is not a module" means: try a shorter prefix; a module that exists but
            # fails to import (its own missing dependency) is reported as it is
            if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                missing = exc
                continue
            raise error(f"importing {module_name!r} failed ({exc})") from exc
        except Exception as exc:
            raise error(f"importing {module_name!r} failed ({exc})") from exc
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                why = f" ({missing})" if missing is not None else ""
                raise error(f"module {module_name!r} has no attribute {'.'.join(parts[split:])!r}{why}")
            obj = getattr(obj, attr)
        return obj
    raise error(f"cannot import it ({missing}); is its package on sys.path?")


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], error: Callable[[str], Exception],
                  noun: str = "options", skip: int = 0) -> None:
    """Fail before anything runs if `factory(..., **options)` would not take `options`: names it
    does not accept, or required ones missing (its first `skip` parameters are the caller's).
    `error(message)` builds the exception; a factory without an introspectable signature (some
    builtins) is trusted."""
    try:
        params = list(inspect.signature(factory).parameters.values())[skip:]
    except (TypeError, ValueError):
        return
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = [p.name for p in named]
    if not any(p.kind == p.VAR_KEYWORD for p in params):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise error(f"unknown {noun} {unknown}; it accepts {accepted or 'none'}")
    missing = [p.name for p in named if p.default is p.empty and p.name not in options]
    if missing:
        raise error(f"missing required {noun} {missing}")
