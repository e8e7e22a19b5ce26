"""The cluttered background: a static image of low-frequency colour noise and random shapes in other colours.

It is drawn once per video, below every object, and belongs to mask id 0.
"""

from __future__ import annotations

import math

import numpy as np

from sam2rl.synth.difficulty import Difficulty, draw_int
from sam2rl.synth.primitives import hsv_color, pixel_centres, shape_axes

__all__ = ["build_background"]

#: (grid points per side, amplitude) of each octave of colour noise.
_NOISE_OCTAVES = ((4, 1.0), (9, 0.5))


def build_background(rng: np.random.Generator, difficulty: Difficulty, size: int, target_hue: float) -> np.ndarray:
    """[size, size, 3] float32 background in 0..255, its hues away from the target's."""
    base = hsv_color(target_hue + rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.6))
    background = np.tile(base[None, None, :], (size, size, 1))
    for grid, amplitude in _NOISE_OCTAVES:
        background += amplitude * difficulty.background_contrast * 255.0 * _colour_noise(rng, size, grid)
    x, y = pixel_centres(size)
    for _ in range(draw_int(rng, difficulty.clutter_shapes)):
        _paint_clutter_shape(rng, background, x, y, size, target_hue)
    return np.clip(background, 0, 255).astype(np.float32)


def _upsample_matrix(size: int, grid: int) -> np.ndarray:
    """[size, grid] linear-interpolation weights from a ``grid``-point grid to ``size`` pixels."""
    position = (np.arange(size) + 0.5) / size * (grid - 1)  # of each pixel centre, in grid steps
    left = np.clip(np.floor(position).astype(int), 0, grid - 2)
    right_weight = position - left
    weights = np.zeros((size, grid))
    weights[np.arange(size), left] = 1 - right_weight
    weights[np.arange(size), left + 1] = right_weight
    return weights


def _colour_noise(rng: np.random.Generator, size: int, grid: int) -> np.ndarray:
    """[size, size, 3] smooth noise interpolated from a ``grid`` x ``grid`` grid, mostly luminance."""
    weights = _upsample_matrix(size, grid)
    noise = rng.normal(size=(3, grid, grid))
    noise = 0.6 * noise.mean(0, keepdims=True) + 0.4 * noise
    return np.einsum("ia,cab,jb->ijc", weights, noise, weights)


def _paint_clutter_shape(
    rng: np.random.Generator, background: np.ndarray, x: np.ndarray, y: np.ndarray, size: int, target_hue: float
) -> None:
    """Paint one rectangle, ellipse or triangle, plain or striped, into ``background``."""
    hue = target_hue + rng.uniform(0.15, 0.85)
    color1 = hsv_color(hue, rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
    color2 = color1 * rng.uniform(0.5, 0.9)
    centre_x, centre_y = rng.uniform(0, size, size=2)
    radius = rng.uniform(0.04, 0.14) * size
    u, v = shape_axes(x - centre_x, y - centre_y, rng.uniform(0, math.pi), radius)
    kind = int(rng.integers(3))
    aspect = rng.uniform(0.4, 1.0)
    if kind == 0:  # rectangle
        inside = (np.abs(u) <= 1.0) & (np.abs(v) <= aspect)
    elif kind == 1:  # ellipse
        inside = u * u + (v / aspect) ** 2 <= 1.0
    else:  # triangle
        inside = (v >= -aspect) & (v <= aspect * (1 - 2 * np.abs(u)))
    if rng.uniform() < 0.5:
        texture = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(0.5, 2.0) * u)
    else:
        texture = np.ones_like(u)
    colours = color2 + texture[..., None] * (color1 - color2)
    background[inside] = colours[inside]
