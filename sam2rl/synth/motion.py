"""Where the objects go: the target's bouncing, jumping path and the distractors' paths that pass it.

A path is a ``[T, 2]`` array of (x, y) centres in pixels. The target cruises
with momentum and jumps at scheduled frames; a distractor follows a smooth
Hermite spline through its meetings with the target and waypoints kept away from
it, so that it is near the target mostly at its scheduled passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sam2rl.synth.difficulty import Difficulty, draw_float
from sam2rl.synth.primitives import unit_vector

__all__ = ["Meeting", "distractor_path", "target_path"]

#: Share of the target's velocity kept from one frame to the next (the rest is random steering).
_MOMENTUM = 0.85
#: Directions tried for each jump before falling back to a jump towards the centre.
_JUMP_DIRECTIONS = 24
#: Paths drawn for a distractor until one keeps clear of the target on the prompt frames.
_DISTRACTOR_PATH_TRIES = 16
#: The first frames, where a distractor must be well apart from the target (the prompt is on frame 0).
_PROMPT_FRAMES = 3


class Meeting(NamedTuple):
    """A scheduled pass: the distractor is at ``position`` with ``velocity`` (pixels per frame) on ``frame``."""

    frame: int
    position: np.ndarray
    velocity: np.ndarray


def _hermite(knot_times: np.ndarray, points: np.ndarray, tangents: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Cubic Hermite through ``(knot_times, points)`` with ``tangents`` (per unit time), evaluated at ``times``."""
    segment = np.clip(np.searchsorted(knot_times, times, side="right") - 1, 0, len(knot_times) - 2)
    start, stop = knot_times[segment], knot_times[segment + 1]
    span = stop - start
    frac = ((times - start) / span)[:, None]  # position inside the segment, 0..1
    frac2, frac3 = frac * frac, frac * frac * frac
    return (
        (2 * frac3 - 3 * frac2 + 1) * points[segment]
        + (frac3 - 2 * frac2 + frac) * span[:, None] * tangents[segment]
        + (-2 * frac3 + 3 * frac2) * points[segment + 1]
        + (frac3 - frac2) * span[:, None] * tangents[segment + 1]
    )


# --------------------------------------------------------------------------- target


def target_path(
    rng: np.random.Generator,
    difficulty: Difficulty,
    num_frames: int,
    size: int,
    bounding_radius: float,
    jump_frames: list[int],
    jump_distances: list[float],
) -> np.ndarray:
    """Centres of a target cruising at a drawn speed, mirrored off the borders, jumping at ``jump_frames``.

    The centre stays 0.7 ``bounding_radius`` inside the frame, so most of the
    target is always on screen.
    """
    low, high = 0.7 * bounding_radius, size - 0.7 * bounding_radius
    speed = draw_float(rng, difficulty.speed) * size
    position = rng.uniform(0.3 * size, 0.7 * size, size=2)
    velocity = speed * unit_vector(rng.uniform(0, 2 * math.pi))
    steering = rng.normal(size=(num_frames, 2))
    jump_headings = rng.uniform(0, 2 * math.pi, size=(max(len(jump_frames), 1), _JUMP_DIRECTIONS))
    path = np.zeros((num_frames, 2))
    path[0] = position
    jump_index = {frame: j for j, frame in enumerate(jump_frames)}
    for t in range(1, num_frames):
        velocity = _MOMENTUM * velocity + (1 - _MOMENTUM) * 2.0 * speed * steering[t]
        norm = float(np.linalg.norm(velocity)) + 1e-9
        velocity = velocity * float(np.clip(norm, 0.5 * speed, 1.5 * speed)) / norm
        if t in jump_index:
            j = jump_index[t]
            position = _jump(position, jump_distances[j], jump_headings[j], low, high, size)
        else:
            position, velocity = _cruise(position, velocity, low, high)
        path[t] = position
    return path


def _jump(
    position: np.ndarray, distance: float, headings: np.ndarray, low: float, high: float, size: int
) -> np.ndarray:
    """``position`` moved ``distance`` along the first of ``headings`` that stays in bounds, else towards the centre."""
    landings = position[None, :] + distance * np.stack([np.cos(headings), np.sin(headings)], 1)
    inside = np.all((landings >= low) & (landings <= high), axis=1)
    if inside.any():
        return landings[int(np.argmax(inside))]
    to_centre = np.array([size / 2, size / 2]) - position
    return np.clip(position + distance * to_centre / (np.linalg.norm(to_centre) + 1e-9), low, high)


def _cruise(
    position: np.ndarray, velocity: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """One step along ``velocity``, mirrored off the borders (the velocity turns around with it)."""
    position = position + velocity
    for axis in range(2):
        if position[axis] < low:
            position[axis], velocity[axis] = 2 * low - position[axis], abs(velocity[axis])
        elif position[axis] > high:
            position[axis], velocity[axis] = 2 * high - position[axis], -abs(velocity[axis])
    return np.clip(position, low, high), velocity


# --------------------------------------------------------------------------- distractors


@dataclass
class _Knots:
    """Knots of a Hermite path being laid out; a tangent left ``None`` is filled in Catmull-Rom style."""

    times: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    tangents: list[np.ndarray | None] = field(default_factory=list)

    def append(self, time: float, point: np.ndarray, tangent: np.ndarray | None = None) -> None:
        """Add a knot after the others."""
        self.times.append(time)
        self.points.append(point)
        self.tangents.append(tangent)

    def prepend(self, time: float, point: np.ndarray) -> None:
        """Add a knot, with a Catmull-Rom tangent, before the others."""
        self.times.insert(0, time)
        self.points.insert(0, point)
        self.tangents.insert(0, None)

    def path(self, num_frames: int) -> np.ndarray:
        """The spline through the knots at frames ``0 .. num_frames - 1``."""
        times = np.array(self.times)
        points = np.stack(self.points)
        tangents = np.zeros_like(points)
        last = len(times) - 1
        for i, tangent in enumerate(self.tangents):
            if tangent is not None:
                tangents[i] = tangent
            else:
                before, after = max(i - 1, 0), min(i + 1, last)
                tangents[i] = (points[after] - points[before]) / max(times[after] - times[before], 1e-9)
        return _hermite(times, points, tangents, np.arange(num_frames, dtype=np.float64))


class _Waypoints:
    """Draws a distractor's waypoints: steps at its speed, nudged to stay away from the target."""

    def __init__(
        self,
        rng: np.random.Generator,
        size: int,
        speed: float,
        target_centres: np.ndarray,
        target_diameters: np.ndarray,
    ) -> None:
        self.rng, self.size, self.speed = rng, size, speed
        self.target_centres, self.target_diameters = target_centres, target_diameters

    def away(self, base: np.ndarray, spread: float, time: float) -> np.ndarray:
        """A point near ``base``, at least 2.5 target diameters from the target at ``time`` where possible."""
        frame = int(np.clip(round(time), 0, len(self.target_centres) - 1))
        low, high = 0.1 * self.size, 0.9 * self.size
        candidates = np.clip(base[None, :] + spread * self.rng.normal(size=(16, 2)), low, high)
        candidates = np.concatenate([np.clip(base, low, high)[None, :], candidates])
        distance = np.linalg.norm(candidates - self.target_centres[frame], axis=1)
        far = distance >= 2.5 * self.target_diameters[frame]
        return candidates[int(np.argmax(far))] if far.any() else candidates[int(np.argmax(distance))]

    def step(self, start: np.ndarray, duration: float) -> np.ndarray:
        """Where ``duration`` frames at the distractor's speed in a random direction lead from ``start``."""
        return start + self.speed * duration * unit_vector(self.rng.uniform(0, 2 * math.pi))

    def leg(self) -> float:
        """Frames between two wandering waypoints."""
        return self.rng.uniform(8, 14)


def distractor_path(
    rng: np.random.Generator,
    num_frames: int,
    size: int,
    speed: float,
    meetings: list[Meeting],
    target_centres: np.ndarray,
    target_diameters: np.ndarray,
) -> np.ndarray:
    """Smooth path through ``meetings`` (sorted by frame) that keeps away from the target elsewhere.

    Between and around the passes the path's waypoints are picked away from the
    target (at least 2.5 target diameters where possible), so that a distractor is
    near the target mostly at its scheduled passes. Paths are redrawn until the
    prompt frames show the target well apart from it.
    """
    waypoints = _Waypoints(rng, size, speed, target_centres, target_diameters)
    path = _draw_distractor_path(waypoints, meetings, num_frames)
    for _retry in range(_DISTRACTOR_PATH_TRIES - 1):
        shown = min(_PROMPT_FRAMES, num_frames)
        gaps = np.linalg.norm(path[:shown] - target_centres[:shown], axis=1)
        if (gaps > 2.0 * target_diameters[:shown]).all():
            break
        path = _draw_distractor_path(waypoints, meetings, num_frames)
    return path


def _draw_distractor_path(waypoints: _Waypoints, meetings: list[Meeting], num_frames: int) -> np.ndarray:
    """One candidate path: the meetings (or a start away from the target), then wandering to both ends."""
    knots = _meeting_knots(waypoints, meetings) if meetings else _start_knot(waypoints)
    _wander_from_frame_zero(knots, waypoints)
    _wander_to_the_end(knots, waypoints, num_frames)
    return knots.path(num_frames)


def _meeting_knots(waypoints: _Waypoints, meetings: list[Meeting]) -> _Knots:
    """The meetings, a swing away between each two, and an approach before and a departure after them."""
    size = waypoints.size
    knots = _Knots()
    for j, meeting in enumerate(meetings):
        if j > 0:
            previous = meetings[j - 1]
            time = (previous.frame + meeting.frame) / 2
            knots.append(time, waypoints.away((previous.position + meeting.position) / 2, 0.3 * size, time))
        knots.append(
            float(meeting.frame), np.asarray(meeting.position, dtype=float), np.asarray(meeting.velocity, dtype=float)
        )
    first, last = meetings[0], meetings[-1]
    lead = min(waypoints.leg(), float(first.frame))
    if lead > 0:
        time = first.frame - lead
        knots.prepend(time, waypoints.away(first.position - first.velocity * lead, 0.15 * size, time))
    lead = waypoints.leg()
    time = last.frame + lead
    knots.append(time, waypoints.away(last.position + last.velocity * lead, 0.15 * size, time))
    return knots


def _start_knot(waypoints: _Waypoints) -> _Knots:
    """A distractor that never passes the target starts somewhere away from it."""
    knots = _Knots()
    size = waypoints.size
    knots.append(0.0, waypoints.away(np.array([size / 2, size / 2]), 0.3 * size, 0.0))
    return knots


def _wander_from_frame_zero(knots: _Knots, waypoints: _Waypoints) -> None:
    """Waypoints back to frame 0, about 12 frames apart, where the path sits away from the target."""
    if knots.times[0] <= 0:
        return
    legs = math.ceil(knots.times[0] / 12)
    for time in np.linspace(0, knots.times[0], legs + 1)[-2::-1]:
        point = waypoints.away(waypoints.step(knots.points[0], knots.times[0] - time), 0.1 * waypoints.size, time)
        knots.prepend(float(time), point)


def _wander_to_the_end(knots: _Knots, waypoints: _Waypoints, num_frames: int) -> None:
    """Waypoints after the last knot until the path covers the last frame."""
    while knots.times[-1] < num_frames - 1:
        leg = waypoints.leg()
        time = knots.times[-1] + leg
        knots.append(time, waypoints.away(waypoints.step(knots.points[-1], leg), 0.1 * waypoints.size, time))
