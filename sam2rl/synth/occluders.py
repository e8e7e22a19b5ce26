"""The full occlusions: wide textured bars that sweep across the frame and hide the target completely.

A bar is background (mask id 0) drawn above every object. During its
occlusion window it moves in a straight line at constant speed while covering
the target's whole bounding circle; before and after, it enters and leaves the
frame, so it is off screen on frame 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sam2rl.synth.objects import Blob
from sam2rl.synth.primitives import hsv_color, unit_vector
from sam2rl.synth.schedule import Window

__all__ = ["Bar", "build_bar"]


@dataclass
class Bar:
    """A full-span textured bar |p . n - offset[t]| <= half_width (offset NaN = off screen)."""

    angle: float  # of the normal n, radians
    half_width: float  # pixels
    offset: np.ndarray  # [T] pixels along n
    color1: np.ndarray  # [3] float32, where the texture is 1
    color2: np.ndarray  # [3] float32, where the texture is 0
    texture_freq: float  # radians per pixel
    texture_phase: float


def build_bar(
    rng: np.random.Generator, window: Window, target: Blob, target_hue: float, num_frames: int, size: int
) -> Bar:
    """A bar that hides ``target`` throughout ``window``, in colours far from the target's hue."""
    angle = rng.uniform(0, math.pi)
    normal = unit_vector(angle)
    target_offsets = target.center @ normal
    bounding_radius = target.radius * target.outline.extent
    half_width, start_offset, stop_offset = _covering_band(rng, window, target_offsets, bounding_radius, size)
    offsets = _sweep(rng, window, start_offset, stop_offset, half_width, normal, num_frames, size)
    hue = target_hue + rng.uniform(0.25, 0.75)
    color1 = hsv_color(hue, rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.8)).astype(np.float32)
    color2 = hsv_color(hue + 0.05, rng.uniform(0.1, 0.5), rng.uniform(0.15, 0.4)).astype(np.float32)
    texture_freq = float(2 * math.pi / rng.uniform(0.05, 0.12) / size)
    texture_phase = float(rng.uniform(0, 2 * math.pi))
    return Bar(float(angle), float(half_width), offsets, color1, color2, texture_freq, texture_phase)


def _covering_band(
    rng: np.random.Generator, window: Window, target_offsets: np.ndarray, bounding_radius: np.ndarray, size: int
) -> tuple[float, float, float]:
    """Half width and offsets at the window's first and last frame of a bar covering the target all along.

    The bar goes straight from the target's offset at the first frame to its
    offset at the last, so it must be wide enough for the bounding circle plus
    the target's deviation from that line; it is shifted at random within the slack.
    """
    start, stop = window
    last = stop - 1
    frames = np.arange(start, stop)
    if last > start:
        straight = np.interp(frames, [start, last], [target_offsets[start], target_offsets[last]])
    else:
        straight = target_offsets[frames]
    deviation = np.abs(straight - target_offsets[frames]).max()
    needed = float(bounding_radius[frames].max() + 0.02 * size + 1.0 + deviation)
    half_width = max(needed, rng.uniform(0.08, 0.14) * size)
    shift = rng.uniform(-1, 1) * 0.8 * (half_width - needed)
    return half_width, target_offsets[start] + shift, target_offsets[last] + shift


def _sweep(
    rng: np.random.Generator,
    window: Window,
    start_offset: float,
    stop_offset: float,
    half_width: float,
    normal: np.ndarray,
    num_frames: int,
    size: int,
) -> np.ndarray:
    """[T] offsets of a bar entering the frame, crossing the window, and leaving (NaN while off screen)."""
    start, stop = window
    last = stop - 1
    if abs(stop_offset - start_offset) > 1e-6:
        direction = np.sign(stop_offset - start_offset)
    else:
        direction = rng.choice([-1.0, 1.0])
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=float) @ normal
    below, above = corners.min() - half_width - 1, corners.max() + half_width + 1  # just off screen
    entry, exit_offset = (below, above) if direction > 0 else (above, below)
    speed = rng.uniform(0.1, 0.16) * size
    speed = max(speed, abs(start_offset - entry) / max(start - 1, 1))  # off screen at frame 0
    lead_in = max(2, math.ceil(abs(start_offset - entry) / speed))
    lead_out = max(2, math.ceil(abs(exit_offset - stop_offset) / speed))
    moving = last > start
    key_frames = [start - lead_in, start] + ([last] if moving else []) + [last + lead_out]
    key_offsets = [entry, start_offset] + ([stop_offset] if moving else []) + [exit_offset]
    frames = np.arange(num_frames, dtype=float)
    offsets = np.interp(frames, key_frames, key_offsets)
    offsets[(frames < key_frames[0]) | (frames > key_frames[-1])] = np.nan
    return offsets
