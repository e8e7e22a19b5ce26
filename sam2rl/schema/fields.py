"""Each recipe field's valid values, declared on the field itself (`dataclasses.field(metadata=...)`).

Why: a value out of range (a negative iteration count, a NaN learning rate, an output folder that is
a file) must fail before anything runs, as one line naming the key, the way an unknown key does.
Declaring the rule where the field and its default are declared keeps one definition per field;
`sam2rl.schema.recipe.check_recipe` walks a typed recipe and reads the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2rl.lookup import did_you_mean

__all__ = ["RULE", "Problems", "Rule", "accelerator", "choice", "custom", "flag", "folder", "items",
           "number", "options", "output_file", "precision", "section", "strategy", "text", "texts", "whole"]

RULE = "sam2rl.rule"
"""The `field.metadata` key of a field's `Rule`."""

Problems = Iterator[tuple[str, str]]
"""(where below the field: "" or "[i]" or ".name", what is wrong) pairs."""


@dataclass(frozen=True)
class Rule:
    """What one field accepts. `check(value)` yields a problem per bad part; None values (optional
    fields left empty) are not checked."""

    check: Callable[[Any], Problems]

    def problems(self, value: Any) -> Problems:
        return iter(()) if value is None else self.check(value)


def _anything(value: Any) -> Problems:
    return iter(())


def _field(default: Any, check: Callable[[Any], Problems]) -> Any:
    """A dataclass field with `default` (a callable: its factory) and its rule."""
    metadata = {RULE: Rule(check)}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


def _fmt(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {_fmt(low)}"
    return "" if high is None else f" {'<' if high_open else '<='} {_fmt(high)}"


def _outside(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    below = low is not None and (value <= low if low_open else value < low)
    return below or (high is not None and (value >= high if high_open else value > high))


def whole(default: int | None, *, low: int | None = None, high: int | None = None,
          multiple_of: int | None = None) -> Any:
    """An integer in [low, high] (either may be open-ended), optionally a multiple of `multiple_of`
    (then at least `multiple_of`, unless `low` says otherwise)."""
    if multiple_of is not None and low is None:
        low = multiple_of
    must = (f"a positive multiple of {multiple_of}" if multiple_of is not None and low == multiple_of
            else f"a whole number{_bounds(low, high, False, False)}"
                 + (f" and a multiple of {multiple_of}" if multiple_of else ""))

    def check(value: Any) -> Problems:
        bad = isinstance(value, bool) or not isinstance(value, int) or _outside(value, low, high, False, False)
        if bad or (multiple_of is not None and value % multiple_of):
            yield "", f"must be {must}, got {value!r}"

    return _field(default, check)


def number(default: float | None, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> Any:
    """A finite real number in the interval from `low` to `high` (closed unless `*_open`)."""
    must = f"a finite number{_bounds(low, high, low_open, high_open)}"

    def check(value: Any) -> Problems:
        real = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not real or not math.isfinite(value) or _outside(value, low, high, low_open, high_open):
            yield "", f"must be {must}, got {value!r}"

    return _field(default, check)


def section(cls: type, check: Callable[[Any], Problems] | None = None) -> Any:
    """A recipe section: a dataclass whose fields have their own rules; `check(section)` for rules
    across its fields, yielding (".field", what is wrong), asked only when each field is in range."""
    return _field(cls, check or _anything)


def flag(default: bool) -> Any:
    """true or false (OmegaConf already refuses anything else)."""
    return _field(default, _anything)


def options(default: Callable[[], dict[str, Any]] = dict) -> Any:
    """Free-form keyword arguments of a named component, which checks them itself when it is built."""
    return _field(default, _anything)


def _nonempty(value: Any) -> Problems:
    if not isinstance(value, str) or not value.strip():
        yield "", f"must be a non-empty string, got {value!r}"


def text(default: str | None) -> Any:
    """A non-empty string whose meaning a component checks (a model name, a path read later)."""
    return _field(default, _nonempty)


def _choices(values: Sequence[Any], value: Any) -> Problems:
    if value not in values:
        shown = ", ".join("null" if v is None else repr(v) for v in values)
        yield "", f"must be one of {shown}, got {value!r}{did_you_mean(str(value), [str(v) for v in values])}"


def choice(default: Any, values: Sequence[Any] | Callable[[], Sequence[Any]]) -> Any:
    """One of `values` (a callable is asked when a recipe is checked, e.g. Lightning's registries)."""
    return _field(default, lambda value: _choices(values() if callable(values) else values, value))


def texts(default: Callable[[], list[str]] | None, *, regex: str | None = None,
          must: str = "a non-empty string") -> Any:
    """A list of strings, each non-empty (and matching `regex` whole, described by `must`)."""
    compiled = re.compile(regex or r".*\S.*", re.DOTALL)

    def check(value: Any) -> Problems:
        for i, item in enumerate(value):
            if not isinstance(item, str) or not compiled.fullmatch(item):
                yield f"[{i}]", f"must be {must}, got {item!r}"

    return _field(default, check)


def items(default: Callable[[], list[Any]], what: str, *,
          check: Callable[[list[Any]], Problems] | None = None) -> Any:
    """A non-empty list of `what` (sections, which are checked field by field, or entries a component
    checks when it is built), and `check(list)` for rules across the entries."""

    def check_list(value: Any) -> Problems:
        if not value:
            yield "", f"must list at least one {what}, got none"
        if check is not None:
            yield from check(value)

    return _field(default, check_list)


def _writable(value: Any, want_folder: bool) -> Problems:
    """Whether path `value` can be made a folder (or written as a file): nothing of the other kind
    stands there, and no file stands where one of its folders would be."""
    if not isinstance(value, str) or not value.strip():
        yield from _nonempty(value)
        return
    path = Path(value)
    if path.exists() and path.is_dir() != want_folder:
        yield "", f"{path} is {'a file' if want_folder else 'a folder'}, not {'a folder' if want_folder else 'a file'}"
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                yield "", f"{path}: {parent} is a file, not a folder"
            return


def folder(default: str | None) -> Any:
    """A folder the run writes into (made when missing)."""
    return _field(default, lambda value: _writable(value, want_folder=True))


def output_file(default: str) -> Any:
    """A file the run writes (its folders made when missing)."""
    return _field(default, lambda value: _writable(value, want_folder=False))


def custom(default: Any, check: Callable[[Any], str | None]) -> Any:
    """A rule of its own: `check(value)` returns what is wrong, or None."""

    def problems(value: Any) -> Problems:
        message = check(value)
        if message:
            yield "", message

    return _field(default, problems)


def _lightning_accelerators() -> list[str]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]


def _lightning_strategies() -> list[str]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]


def _lightning_precisions() -> list[str]:
    from typing import get_args

    from lightning.fabric.connector import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS

    return [*get_args(_PRECISION_INPUT_STR), *get_args(_PRECISION_INPUT_STR_ALIAS)]


def accelerator(default: str) -> Any:
    """A Lightning accelerator name (`Trainer(accelerator=...)`)."""
    return choice(default, _lightning_accelerators)


def strategy(default: str) -> Any:
    """A Lightning strategy name (`Trainer(strategy=...)`)."""
    return choice(default, _lightning_strategies)


def precision(default: str) -> Any:
    """A Lightning precision (`Trainer(precision=...)`), e.g. 32-true or bf16-mixed."""
    return choice(default, _lightning_precisions)
