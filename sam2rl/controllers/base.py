"""The controller interface: what every memory rule (heuristic, oracle, learned agent) implements."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

import torch

from sam2rl.datasets import Track, VideoSequence
from sam2rl.tracker import FeatureCache, Memories, MemoryBank, Prediction, Tracker

__all__ = ["CONTROLLERS", "Controller", "build_controller", "make_controller", "register_controller"]


class Controller:
    """Decides, for B tracks after each frame, which candidate mask is the prediction and what
    the memory bank does with the frame's memory (an action, see `sam2rl.tracker.bank`).

    Controllers hold per-episode state only; `reset` starts B new episodes.
    """

    name = "controller"
    max_anchors = 1
    """Anchor slots this rule may use (the tracker's bank must have at least as many)."""
    heuristic = False
    """True for the published hand-written rules (SAMURAI, DAM4SAM, SAM2Long): what SAM2RL's headline
    compares an agent with. SAM 2's own rule is the reference itself; the random rule is a floor;
    the oracle and the search read the ground truth, so they are upper references."""

    def reset(self, batch_size: int) -> None:
        """Forget per-episode state; called before the prompt frame of B new tracks."""

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: FeatureCache | None = None) -> Controller:
        """Hook for rules that need the whole video (the oracle reads its ground truth)."""
        return self

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        """Where the B episodes start (prompt frames) and their videos' lengths; after `reset`."""

    def choose(self, prediction: Prediction, bank: MemoryBank) -> torch.Tensor:
        """[B] index of the multimask candidate that becomes the prediction (SAM 2's by default)."""
        return prediction.sam_choice

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        """[B] action on the candidate memory of this frame."""
        raise NotImplementedError


CONTROLLERS: dict[str, Callable[..., Controller]] = {}


def register_controller(name: str) -> Callable[[type[Controller]], type[Controller]]:
    """Class decorator: make a `Controller` available by `name` (`sam2rl eval --controllers`, recipes)."""
    def register(cls: type[Controller]) -> type[Controller]:
        CONTROLLERS[name] = cls
        cls.name = name
        return cls

    return register


def build_controller(name: str, factory: Callable[..., Controller], options: dict[str, object]) -> Controller:
    """`factory(**options)`, with options it does not take named in a `ValueError` with the controller."""
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        raise ValueError(f"controller {name!r}: {error} (options {options})") from None
    return factory(**options)


def make_controller(name: str, **options: object) -> Controller:
    """A registered controller by name, `agent:PATH` for a trained agent, or a user's class by
    dotted path (`mypkg.mod.MyRule`)."""
    if name.startswith("agent:"):
        from sam2rl.agents.controller import load_agent  # agents build on controllers

        return load_agent(name.removeprefix("agent:"), **options)
    if name in CONTROLLERS:
        return build_controller(name, CONTROLLERS[name], options)
    module, _, attr = name.rpartition(".")
    if module:
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"controller {name!r}: cannot import it ({error})") from error
        return build_controller(name, factory, options)
    raise ValueError(f"unknown controller {name!r}; available: {', '.join(sorted(CONTROLLERS))} "
                     "(or a dotted path to your own Controller class)")
