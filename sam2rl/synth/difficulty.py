"""How hard a synthetic video is: the knobs, the three presets, and how one video draws its values from them.

Every quantity a scene takes from a :class:`Difficulty` range goes through
:func:`draw_int`, :func:`draw_float` or :func:`draw_count`, so the range
conventions (integers inclusive, event counts per :data:`REFERENCE_FRAMES`) are
written once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "DIFFICULTIES",
    "REFERENCE_FRAMES",
    "Difficulty",
    "draw_count",
    "draw_float",
    "draw_int",
    "resolve_difficulty",
]

#: Event counts in :class:`Difficulty` are given per this many frames and scaled
#: proportionally for other lengths.
REFERENCE_FRAMES = 48


@dataclass(frozen=True)
class Difficulty:
    """How often and how strongly each event happens.

    Ranges ``(lo, hi)`` are sampled uniformly per video (integers inclusive).
    Event counts are per 48 frames (scaled for other lengths; at least one when
    ``lo >= 1``). Sizes and speeds are fractions of the frame size.
    """

    name: str = "custom"
    # target
    target_radius: tuple[float, float] = (0.09, 0.12)
    speed: tuple[float, float] = (0.010, 0.020)
    # look-alike distractors
    num_distractors: tuple[int, int] = (1, 2)
    distractor_passes: tuple[int, int] = (2, 3)
    pass_distance: tuple[float, float] = (0.2, 0.8)  # centre offset at the pass, target diameters
    distractor_hue_jitter: float = 0.04  # std of hue offset (hue circle = 1): lower = more alike
    distractor_size_jitter: float = 0.12  # std of log radius
    distractor_front_prob: float = 0.5  # chance a distractor is drawn above the target
    # full occlusions by a bar
    occlusions: tuple[int, int] = (1, 2)
    occlusion_frames: tuple[int, int] = (3, 6)
    # sudden jumps
    jumps: tuple[int, int] = (1, 2)
    jump_distance: tuple[float, float] = (0.2, 0.3)
    # gradual appearance change of the target
    appearance_changes: tuple[int, int] = (1, 2)
    appearance_frames: tuple[int, int] = (8, 14)
    hue_drift: float = 0.08  # max hue shift per change window
    scale_drift: float = 0.25  # max |log scale| change per window
    rotation_drift: float = 1.2  # max rotation per window, radians
    texture_drift: float = 0.35  # max |log texture frequency| change per window
    # background clutter
    clutter_shapes: tuple[int, int] = (6, 10)
    background_contrast: float = 0.12
    sensor_noise: int = 3  # max |uniform integer noise| added to every pixel

    def to_dict(self) -> dict:
        """The knobs as JSON-ready values (ranges as lists), in field order."""
        values = {knob.name: getattr(self, knob.name) for knob in fields(self)}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


#: The knobs the easy and hard presets set, as ``(easy, hard)``; medium is the
#: :class:`Difficulty` defaults. One line a topic, in the order of the class.
_PRESET_KNOBS: dict[str, tuple[Any, Any]] = {
    "speed": ((0.008, 0.015), (0.015, 0.025)),
    "num_distractors": ((1, 1), (2, 3)), "distractor_passes": ((0, 1), (4, 6)),
    "pass_distance": ((0.6, 0.9), (0.0, 0.5)), "distractor_hue_jitter": (0.10, 0.02),
    "distractor_size_jitter": (0.2, 0.08), "distractor_front_prob": (0.3, 0.6),
    "occlusions": ((0, 1), (2, 3)), "occlusion_frames": ((2, 3), (4, 8)),
    "jumps": ((0, 1), (2, 4)), "jump_distance": ((0.12, 0.18), (0.25, 0.4)),
    "appearance_changes": ((0, 1), (2, 3)), "appearance_frames": ((12, 18), (6, 12)),
    "hue_drift": (0.03, 0.15), "scale_drift": (0.1, 0.4), "rotation_drift": (0.5, 2.0), "texture_drift": (0.15, 0.6),
    "clutter_shapes": ((3, 6), (10, 16)), "background_contrast": (0.08, 0.18), "sensor_noise": (2, 4),
}


def _preset(name: str, column: int) -> Difficulty:
    """The preset whose knobs are column ``column`` (0 = easy, 1 = hard) of :data:`_PRESET_KNOBS`."""
    return Difficulty(name=name, **{knob: values[column] for knob, values in _PRESET_KNOBS.items()})


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": _preset("easy", 0),
    "medium": Difficulty(name="medium"),
    "hard": _preset("hard", 1),
}


def resolve_difficulty(difficulty: str | Difficulty) -> Difficulty:
    """A preset by name (`easy`, `medium`, `hard`), or the `Difficulty` given."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    try:
        return DIFFICULTIES[difficulty]
    except KeyError:
        raise ValueError(f"unknown difficulty {difficulty!r}; choose from {sorted(DIFFICULTIES)}") from None


def draw_int(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer in ``[lo, hi]``, both ends included (every integer range of :class:`Difficulty`)."""
    low, high = bounds
    return int(rng.integers(low, high + 1))


def draw_float(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A float drawn uniformly from a :class:`Difficulty` range."""
    return float(rng.uniform(bounds[0], bounds[1]))


def draw_count(rng: np.random.Generator, bounds: tuple[int, int], num_frames: int) -> int:
    """An event count given per :data:`REFERENCE_FRAMES`, scaled to ``num_frames`` (at least 1 when ``lo >= 1``)."""
    count = int(round(draw_int(rng, bounds) * num_frames / REFERENCE_FRAMES))
    return max(count, 1) if bounds[0] >= 1 else count
