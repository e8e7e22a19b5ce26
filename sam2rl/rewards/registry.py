"""Reward functions by name (`@register_reward`) or by dotted path, and what they need.

A reward function is ``fn(td: TensorDict, **kwargs) -> Tensor[B]`` (the TensorDict contract is
in :mod:`sam2rl.rewards`). Keeping them plain functions, rather than classes, lets a user add
one in a few lines of their own module and name it from a recipe without touching sam2rl.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor
from tensordict import TensorDictBase

from sam2rl.errors import InputError
from sam2rl.lookup import import_dotted

__all__ = ["REWARDS", "OPTIONAL_KEYS", "RewardError", "RewardFn", "import_reward", "register_reward"]

RewardFn = Callable[..., Tensor]
"""``fn(td: TensorDictBase, **kwargs) -> Tensor[B]``."""

REWARDS: dict[str, RewardFn] = {}
"""Registered reward functions by name (the built-ins, plus any registered by imported user code)."""

OPTIONAL_KEYS: frozenset[str] = frozenset({"reference_iou"})
"""Keys the environment adds to the reward TensorDict only when a configured term needs them
(they cost extra compute: `reference_iou` means running the reference controller)."""

_NEEDS_ATTR = "__reward_needs__"


class RewardError(InputError, ValueError):
    """A reward term that cannot be built or that produced an unusable value; names the term."""


def register_reward(name: str, needs: Iterable[str] = ()) -> Callable[[RewardFn], RewardFn]:
    """Register ``fn`` under ``name``; ``needs`` lists the optional TensorDict keys it reads.

    The keys in ``needs`` are what the environment must add beyond the always-present contract
    (today only ``reference_iou``), so it computes them only for recipes that use them. The
    declaration is also stored on the function, so a function referenced by dotted path
    (``_target_``) keeps its needs. Registering a different function under a taken name is an
    error (two plugins silently shadowing each other would be worse); re-registering the same
    function (module reloaded) replaces it.
    """
    needs = frozenset(needs)
    for key in needs:
        if not isinstance(key, str) or not key:
            raise RewardError(f"reward {name!r}: needs must be TensorDict key names, got {key!r}")
        if key not in OPTIONAL_KEYS:
            raise RewardError(f"reward {name!r} needs {key!r}, which the environment cannot add "
                              f"(it adds on request: {', '.join(sorted(OPTIONAL_KEYS))})")

    def register(fn: RewardFn) -> RewardFn:
        if not callable(fn):
            raise RewardError(f"reward {name!r}: register_reward decorates a function, got {fn!r}")
        old = REWARDS.get(name)
        if old is not None and _qualified(old) != _qualified(fn):
            raise RewardError(
                f"reward {name!r} is already registered ({_qualified(old)}); pick another name for {_qualified(fn)}"
            )
        setattr(fn, _NEEDS_ATTR, needs)
        REWARDS[name] = fn
        return fn

    return register


def needs_of(fn: RewardFn) -> frozenset[str]:
    """The optional keys a reward function declared with `register_reward` (none otherwise)."""
    return frozenset(getattr(fn, _NEEDS_ATTR, ()))


def _qualified(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def import_reward(target: str) -> RewardFn:
    """The function at dotted path ``target`` (``pkg.module.function``), or a RewardError naming it.

    The longest importable module prefix is used, so ``pkg.module.Class.method`` works too.
    """
    fn = import_dotted(target, lambda message: RewardError(f"reward term {target!r}: {message}"))
    if not callable(fn):
        raise RewardError(f"reward term {target!r}: {fn!r} is not callable")
    return fn


def check_td(td: Any) -> TensorDictBase:
    """``td`` itself if it is a TensorDict (the batch size is how term outputs are checked)."""
    if not isinstance(td, TensorDictBase):
        raise RewardError(f"rewards take a tensordict.TensorDict of batch size [B], got {type(td).__name__}")
    return td
