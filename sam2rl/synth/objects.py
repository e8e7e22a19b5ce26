"""The tracked objects: a textured star-shaped blob for the target and for each look-alike distractor.

The target's look is drawn once (:class:`TargetLook`); the target then drifts
in colour, scale, rotation and texture inside its appearance-change windows,
and every distractor is that same look slightly perturbed (mask ids 2..).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sam2rl.synth.difficulty import Difficulty, draw_float
from sam2rl.synth.motion import Meeting, distractor_path, target_path
from sam2rl.synth.primitives import hsv_color, unit_vector
from sam2rl.synth.schedule import Timeline, Window

__all__ = [
    "TARGET_ID",
    "TEXTURES",
    "Blob",
    "Outline",
    "TargetLook",
    "build_distractor",
    "build_target",
    "draw_target_look",
]

TEXTURES = ("stripes", "checker", "rings", "waves")
#: Mask id of the target (distractors are 2.., background and bars 0).
TARGET_ID = 1
#: Chance that a distractor keeps the target's texture kind.
_SAME_TEXTURE_PROB = 0.8


@dataclass
class Outline:
    """A star-shaped outline: radius ``1 + sum(a cos(k phi + p))`` over the harmonics (k, a, p)."""

    orders: np.ndarray  # [K] harmonic orders k
    amplitudes: np.ndarray  # [K] a, sum |a| < 0.6
    phases: np.ndarray  # [K] p

    @property
    def extent(self) -> float:
        """Bounding-circle radius / radius."""
        return 1.0 + float(np.abs(self.amplitudes).sum())

    def perturbed(self, rng: np.random.Generator) -> Outline:
        """The same harmonics with jittered amplitudes and phases: a look-alike's outline."""
        amplitudes = np.clip(self.amplitudes + rng.normal(0, 0.04, size=3), 0.0, 0.3)
        return Outline(self.orders, amplitudes, self.phases + rng.normal(0, 0.5, size=3))


@dataclass
class Blob:
    """A textured star-shaped blob; every per-frame quantity is an array over frames."""

    obj_id: int
    depth: float  # drawing order: higher is nearer (the target is at 0)
    center: np.ndarray  # [T, 2] (x, y), pixels
    radius: np.ndarray  # [T] pixels (base radius * scale)
    angle: np.ndarray  # [T] radians
    outline: Outline
    texture: str  # one of TEXTURES
    texture_freq: np.ndarray  # [T] cycles per radius
    texture_phase: np.ndarray  # [T]
    color1: np.ndarray  # [T, 3] 0..255, where the texture is 1
    color2: np.ndarray  # [T, 3] where the texture is 0


@dataclass
class TargetLook:
    """The target's base look, which the distractors imitate."""

    radius: float  # pixels
    outline: Outline
    texture: str
    texture_freq: float
    hue: float
    saturation: float
    value: float
    angle: float


def draw_target_look(rng: np.random.Generator, difficulty: Difficulty, size: int) -> TargetLook:
    """The target's size, outline, texture, colour and orientation."""
    radius = draw_float(rng, difficulty.target_radius) * size
    amplitudes = np.array([rng.uniform(0.08, 0.3), rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.05)])
    outline = Outline(np.array([2, 3, 5]), amplitudes, rng.uniform(0, 2 * math.pi, size=3))
    texture = _draw_texture(rng)
    texture_freq = rng.uniform(1.0, 2.0)
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.6, 0.95), rng.uniform(0.7, 0.95)
    return TargetLook(radius, outline, texture, texture_freq, hue, saturation, value, angle=rng.uniform(0, 2 * math.pi))


def _draw_texture(rng: np.random.Generator) -> str:
    """A texture kind, uniformly."""
    return TEXTURES[int(rng.integers(len(TEXTURES)))]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, an S-curve with flat ends between (so changes start and stop gently)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _appearance_curves(
    rng: np.random.Generator, difficulty: Difficulty, num_frames: int, windows: list[Window]
) -> np.ndarray:
    """[6, T] offsets of the target's (hue, value, log scale, rotation, log texture freq, texture phase).

    Each window ramps every offset smoothly by a drawn amount and holds it after,
    so the appearance changes exactly inside the windows (rotation included).
    """
    t = np.arange(num_frames, dtype=np.float64)
    curves = np.zeros((6, num_frames))
    for start, stop in windows:
        ramp = _smoothstep((t - start + 1) / (stop - start))
        sign = rng.choice([-1.0, 1.0], size=6)
        magnitude = rng.uniform(0.5, 1.0, size=6)
        delta = sign * magnitude * np.array(
            [
                difficulty.hue_drift,
                1.5 * difficulty.hue_drift,
                difficulty.scale_drift,
                difficulty.rotation_drift,
                difficulty.texture_drift,
                math.pi,
            ]
        )
        # keep the total scale change bounded
        delta[2] = float(np.clip(curves[2, -1] + delta[2], -0.45, 0.45) - curves[2, -1])
        curves += delta[:, None] * ramp[None, :]
    return curves


def build_target(
    rng: np.random.Generator, difficulty: Difficulty, look: TargetLook, timeline: Timeline, num_frames: int, size: int
) -> Blob:
    """The target (id 1): ``look`` drifting inside the appearance windows, on a path that jumps at the jump frames."""
    curves = _appearance_curves(rng, difficulty, num_frames, timeline.appearance_windows)
    hue_shift, value_shift, log_scale, rotation, log_texture_freq, texture_phase = curves
    radius = look.radius * np.exp(log_scale)
    bounding_radius = float((radius * look.outline.extent).max())
    center = target_path(
        rng, difficulty, num_frames, size, bounding_radius, timeline.jump_frames, timeline.jump_distances
    )
    frames = range(num_frames)
    color1 = [hsv_color(look.hue + hue_shift[t], look.saturation, look.value + value_shift[t]) for t in frames]
    color2 = [
        hsv_color(look.hue + 0.03 + hue_shift[t], 0.8 * look.saturation, 0.45 * (look.value + value_shift[t]))
        for t in frames
    ]
    return Blob(
        obj_id=TARGET_ID,
        depth=0.0,
        center=center,
        radius=radius,
        angle=look.angle + rotation,
        outline=look.outline,
        texture=look.texture,
        texture_freq=look.texture_freq * np.exp(log_texture_freq),
        texture_phase=texture_phase,
        color1=np.stack(color1),
        color2=np.stack(color2),
    )


def build_distractor(
    rng: np.random.Generator,
    difficulty: Difficulty,
    index: int,
    look: TargetLook,
    target: Blob,
    pass_frames: list[int],
    num_frames: int,
    size: int,
) -> Blob:
    """Distractor ``index`` (id ``index + 2``): the target's look perturbed, passing the target at ``pass_frames``.

    Its colours are constant; it spins slowly, and lies above the target with
    probability ``distractor_front_prob``.
    """
    hue = look.hue + rng.normal(0, difficulty.distractor_hue_jitter)
    saturation = float(np.clip(look.saturation + rng.normal(0, 0.05), 0.3, 1.0))
    value = float(np.clip(look.value + rng.normal(0, 0.05), 0.4, 1.0))
    radius = look.radius * math.exp(rng.normal(0, difficulty.distractor_size_jitter))
    outline = look.outline.perturbed(rng)
    texture = look.texture if rng.uniform() < _SAME_TEXTURE_PROB else _draw_texture(rng)
    in_front = rng.uniform() < difficulty.distractor_front_prob
    depth = (1.0 if in_front else -1.0) * (1.0 + 0.1 * index)
    texture_freq = look.texture_freq * math.exp(rng.normal(0, 0.15))
    angle, spin = rng.uniform(0, 2 * math.pi), rng.uniform(-0.04, 0.04)
    texture_phase = rng.uniform(0, 2 * math.pi)
    speed = draw_float(rng, difficulty.speed) * size * rng.uniform(1.5, 2.5)
    target_diameters = 2.0 * target.radius
    meetings = _meetings(rng, difficulty, pass_frames, target.center, target_diameters, speed)
    return Blob(
        obj_id=index + 2,
        depth=depth,
        center=distractor_path(rng, num_frames, size, speed, meetings, target.center, target_diameters),
        radius=np.full(num_frames, radius),
        angle=angle + spin * np.arange(num_frames),
        outline=outline,
        texture=texture,
        texture_freq=np.full(num_frames, texture_freq),
        texture_phase=np.full(num_frames, texture_phase),
        color1=np.tile(hsv_color(hue, saturation, value), (num_frames, 1)),
        color2=np.tile(hsv_color(hue + 0.03, 0.8 * saturation, 0.45 * value), (num_frames, 1)),
    )


def _meetings(
    rng: np.random.Generator,
    difficulty: Difficulty,
    pass_frames: list[int],
    target_centres: np.ndarray,
    target_diameters: np.ndarray,
    speed: float,
) -> list[Meeting]:
    """Where and how fast a distractor crosses the target's neighbourhood at each pass frame."""
    meetings = []
    for frame in pass_frames:
        side = unit_vector(rng.uniform(0, 2 * math.pi))
        offset = draw_float(rng, difficulty.pass_distance) * target_diameters[frame] * side
        heading = unit_vector(rng.uniform(0, 2 * math.pi))
        meetings.append(Meeting(frame, target_centres[frame] + offset, speed * heading))
    return meetings
