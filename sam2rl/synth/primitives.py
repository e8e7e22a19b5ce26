"""Conventions shared by building a scene and drawing it: pixel centres, shape axes, directions, colours.

A pixel belongs to a shape iff its centre is inside it, so every shape is tested
at :func:`pixel_centres`; colours are RGB floats in 0..255 made from HSV.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

__all__ = ["hsv_color", "pixel_centres", "shape_axes", "unit_vector"]


def pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x as a [1, size] row and y as a [size, 1] column of pixel-centre coordinates (float32)."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    return centres[None, :], centres[:, None]


def shape_axes(dx: np.ndarray, dy: np.ndarray, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(dx, dy)`` from a shape's centre in the shape's own axes (turned by ``angle``), per ``scale``."""
    cos, sin = math.cos(angle), math.sin(angle)
    return (dx * cos + dy * sin) / scale, (-dx * sin + dy * cos) / scale


def unit_vector(angle: float) -> np.ndarray:
    """The (x, y) direction at ``angle`` radians."""
    return np.array([math.cos(angle), math.sin(angle)])


def hsv_color(hue: float, saturation: float, value: float) -> np.ndarray:
    """RGB in 0..255 (float64) of an HSV colour; the hue wraps around, saturation and value are clipped to [0, 1]."""
    rgb = colorsys.hsv_to_rgb(hue % 1.0, float(np.clip(saturation, 0, 1)), float(np.clip(value, 0, 1)))
    return np.array(rgb) * 255.0
