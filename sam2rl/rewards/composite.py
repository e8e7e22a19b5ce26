"""Rewards composed from a recipe: a weighted sum of named or user-provided terms.

Why a list of terms rather than one reward function: reward shaping is the most-tuned part of
an RL setup, so trying "IoU + 0.1 presence - 0.01 churn" must be a recipe edit, and every term
is returned separately so its contribution can be logged and checked.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from tensordict import TensorDictBase
from torch import Tensor

from sam2rl.lookup import check_options, did_you_mean
from sam2rl.rewards.registry import REWARDS, RewardError, RewardFn, check_td, import_reward, needs_of
from sam2rl.schema.agent import RewardConfig

__all__ = ["CompositeReward", "RewardTerm", "TermSpec", "reward_needs"]

_TERM_KEYS = ("name", "_target_", "target", "weight", "kwargs")


@dataclass
class RewardTerm:
    """One term of a reward: a registered ``name`` or a user function's dotted path (``target``).

    ``weight`` multiplies the term in the total; ``kwargs`` go to the function. In YAML and dicts
    the dotted path is spelled ``_target_`` (the Hydra convention; ``target`` is accepted too),
    see :meth:`from_config`. The attribute is ``target``: a plain name for Python code, and what
    an ``OmegaConf.structured(RewardTerm)`` node calls its key. (OmegaConf 2.3.1 does accept a
    ``_target_`` dataclass field, contrary to common belief, but a recipe section typed
    ``list[RewardTerm]`` would then reject the bare-string form ``- iou``; recipes should type
    the list as `sam2rl.schema.agent.RewardConfig` does, ``list[Any]``, and let :class:`CompositeReward`
    validate each entry.)
    """

    name: str | None = None
    target: str | None = None
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the term is called in errors and in the per-term output: its name or dotted path."""
        return self.name if self.name is not None else str(self.target)

    @classmethod
    def from_config(cls, spec: TermSpec) -> RewardTerm:
        """A term from a recipe entry: ``"iou"``, a mapping (dict or OmegaConf node) or a RewardTerm.

        Mapping keys: ``name`` or ``_target_`` (alias ``target``), ``weight``, ``kwargs``.
        Unknown keys and bad types raise a RewardError naming the key, so a typo such as
        ``wieght`` is not silently ignored.
        """
        if isinstance(spec, RewardTerm):
            term = cls(spec.name, spec.target, spec.weight, dict(spec.kwargs))
        elif isinstance(spec, str):
            term = cls(name=spec)
        elif isinstance(spec, (Mapping, DictConfig)):
            data = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
            where = data.get("name") or data.get("_target_") or data.get("target") or data
            for key in data:
                if key not in _TERM_KEYS:
                    raise RewardError(f"reward term {where!r}: unknown key {key!r}{did_you_mean(key, _TERM_KEYS)} "
                                      "(valid: name, _target_, weight, kwargs)")
            if "_target_" in data and "target" in data:
                raise RewardError(f"reward term {where!r}: give the dotted path as _target_ or target, not both")
            kwargs = data.get("kwargs")
            term = cls(
                name=data.get("name"),
                target=data.get("_target_", data.get("target")),
                weight=data.get("weight", 1.0),
                kwargs={} if kwargs is None else kwargs,
            )
        else:
            raise RewardError(
                f"reward term {spec!r}: expected a name, a mapping (name/_target_, weight, kwargs) or a RewardTerm"
            )
        term._validate()
        return term

    def _validate(self) -> None:
        """Exactly one of name/target, a finite numeric weight, a str-keyed kwargs mapping."""
        if (self.name is None) == (self.target is None):
            both = "both" if self.name is not None else "neither"
            raise RewardError(
                f"reward term {self.name or self.target or self!r}: give exactly one of name (a built-in or "
                f"registered reward) or _target_ (a dotted path to your function); got {both}"
            )
        for key in ("name", "target"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise RewardError(f"reward term {value!r}: {key} must be a non-empty string")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not math.isfinite(self.weight):
            raise RewardError(f"reward term {self.label!r}: weight must be a finite number, got {self.weight!r}")
        self.weight = float(self.weight)
        if isinstance(self.kwargs, DictConfig):
            self.kwargs = OmegaConf.to_container(self.kwargs, resolve=True)
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise RewardError(f"reward term {self.label!r}: kwargs must be a mapping of names, got {self.kwargs!r}")
        self.kwargs = dict(self.kwargs)


TermSpec = Union[str, Mapping[str, Any], DictConfig, RewardTerm]


@dataclass(frozen=True)
class _Bound:
    """A term resolved to its function, with its output label and needed keys."""

    term: RewardTerm
    label: str
    fn: RewardFn
    needs: frozenset[str]


def _resolve(term: RewardTerm) -> RewardFn:
    if term.name is not None:
        if term.name not in REWARDS:
            hint = did_you_mean(term.name, REWARDS, cutoff=0.6) or "."
            raise RewardError(
                f"reward term {term.name!r}: unknown reward{hint} Available: {', '.join(sorted(REWARDS))} "
                "(or use _target_: a dotted path to your own function)"
            )
        return REWARDS[term.name]
    return import_reward(str(term.target))


def _check_kwargs(term: RewardTerm, fn: RewardFn) -> None:
    """Fail at construction, not mid-training, on kwargs the function does not take or lacks."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature (some builtins): trust the recipe
        return
    P = inspect.Parameter
    if not params or params[0].kind not in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.VAR_POSITIONAL):
        raise RewardError(f"reward term {term.label!r}: the function must take the TensorDict as first argument")
    check_options(fn, term.kwargs, lambda message: RewardError(f"reward term {term.label!r}: {message}"),
                  noun="kwargs", skip=0 if params[0].kind == P.VAR_POSITIONAL else 1)


class CompositeReward:
    """Weighted sum of reward terms: ``total, per_term = reward(td)``.

    ``total`` is ``sum(weight * term(td))``, float32 ``[B]``; ``per_term`` maps each term's label
    (its name, or its dotted path; ``label#2`` for a repeat) to its *unweighted* ``[B]`` value,
    for logging. Terms are resolved and their kwargs checked here, at construction, so a bad
    recipe fails before any rollout. Each call checks that every term returns a finite ``[B]``
    tensor (``validate=False`` skips the finiteness check, which syncs with the GPU).
    """

    def __init__(self, terms: Iterable[TermSpec] | ListConfig, *, validate: bool = True) -> None:
        if isinstance(terms, (str, Mapping, DictConfig, RewardTerm)):
            raise RewardError(
                "CompositeReward takes a list of terms (CompositeReward.from_config takes a reward: section)"
            )
        specs = list(terms)
        if not specs:
            raise RewardError("a reward needs at least one term")
        self.validate = validate
        bound: list[_Bound] = []
        seen: dict[str, int] = {}
        for spec in specs:
            term = RewardTerm.from_config(spec)
            fn = _resolve(term)
            _check_kwargs(term, fn)
            seen[term.label] = seen.get(term.label, 0) + 1
            label = term.label if seen[term.label] == 1 else f"{term.label}#{seen[term.label]}"
            bound.append(_Bound(term, label, fn, needs_of(fn)))
        self._bound = tuple(bound)

    @classmethod
    def from_config(cls, config: Any, *, validate: bool = True) -> CompositeReward:
        """From a recipe's ``reward:`` section (``{terms: [...]}``, dict, DictConfig or RewardConfig) or a list."""
        if isinstance(config, RewardConfig):
            return cls(config.terms, validate=validate)
        if isinstance(config, (Mapping, DictConfig)):
            extra = sorted(set(config.keys()) - {"terms"})
            if extra or "terms" not in config:
                raise RewardError(f"reward section: expected only a 'terms' list, got keys {sorted(config.keys())}")
            return cls(config["terms"], validate=validate)
        return cls(config, validate=validate)

    @property
    def terms(self) -> tuple[RewardTerm, ...]:
        """The normalised terms, in recipe order."""
        return tuple(b.term for b in self._bound)

    @property
    def weights(self) -> dict[str, float]:
        """Weight of each term, by the same labels as the per-term output."""
        return {b.label: b.term.weight for b in self._bound}

    @property
    def needs(self) -> set[str]:
        """Optional TensorDict keys some term reads (e.g. ``reference_iou``): the env must add them."""
        return set().union(*(b.needs for b in self._bound))

    def __repr__(self) -> str:
        inner = ", ".join(f"{b.term.weight:g}*{b.label}" for b in self._bound)
        return f"CompositeReward({inner})"

    def __call__(self, td: TensorDictBase) -> tuple[Tensor, dict[str, Tensor]]:
        td = check_td(td)
        keys = set(td.keys())
        total: Tensor | None = None
        per_term: dict[str, Tensor] = {}
        for b in self._bound:
            for key in sorted(b.needs - keys):
                raise RewardError(
                    f"reward term {b.label!r}: needs key {key!r}, which the TensorDict lacks (it has "
                    f"{sorted(keys)}); the environment adds it only when reward.needs lists it"
                )
            try:
                value = b.fn(td, **b.term.kwargs)
            except KeyError as exc:
                raise RewardError(f"reward term {b.label!r}: reads a key the TensorDict lacks: {exc}") from exc
            value = self._checked(b.label, value, td)
            per_term[b.label] = value
            weighted = value * b.term.weight
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, per_term

    def _checked(self, label: str, value: Any, td: TensorDictBase) -> Tensor:
        """``value`` as float ``[B]``, or a RewardError saying what is wrong with it."""
        expected = tuple(td.batch_size)
        if not isinstance(value, Tensor):
            raise RewardError(
                f"reward term {label!r}: returned {type(value).__name__}, expected a Tensor of shape {expected}"
            )
        if tuple(value.shape) != expected:
            raise RewardError(
                f"reward term {label!r}: returned shape {tuple(value.shape)}, expected {expected} "
                "(one value per episode: the TensorDict's batch size)"
            )
        if value.is_complex():
            raise RewardError(f"reward term {label!r}: returned a complex tensor ({value.dtype})")
        if not value.is_floating_point():
            value = value.to(torch.float32)
        if self.validate:
            bad = ~torch.isfinite(value)
            if bool(bad.any()):
                where = bad.nonzero().flatten().tolist()
                nan = int(torch.isnan(value).sum())
                raise RewardError(
                    f"reward term {label!r}: returned non-finite values ({nan} NaN, {len(where) - nan} inf) "
                    f"at batch indices {where[:8]}{' ...' if len(where) > 8 else ''}"
                )
        return value


def reward_needs(terms: CompositeReward | Iterable[TermSpec] | Any) -> set[str]:
    """Optional TensorDict keys the given terms (or reward section) need, e.g. ``{"reference_iou"}``.

    Lets the environment decide, before any rollout, whether to run the reference controller.
    """
    if isinstance(terms, CompositeReward):
        return terms.needs
    return CompositeReward.from_config(terms, validate=False).needs
