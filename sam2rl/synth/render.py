"""Drawing a scene: frames and id masks, frame by frame, with hard edges and bounded sensor noise.

Layers are painted far to near: background, blobs by depth, then bars. A pixel
takes the colour and id of the top layer whose shape contains its centre, so
the id map is exactly the top visible layer of the frame.
"""

from __future__ import annotations

import math

import numpy as np

from sam2rl.synth.objects import Blob
from sam2rl.synth.occluders import Bar
from sam2rl.synth.primitives import pixel_centres, shape_axes
from sam2rl.synth.scene import Scene

__all__ = ["blob_layer", "render_scene"]

BlobLayer = tuple[tuple[slice, slice], np.ndarray, np.ndarray]  # (box, coverage, colours) in the box


def _texture(kind: str, u: np.ndarray, v: np.ndarray, rho: np.ndarray, freq: float, phase: float) -> np.ndarray:
    """Texture ``kind`` in [0, 1] at shape coordinates ``(u, v)`` (``rho`` = their norm), ``freq`` cycles per unit."""
    omega = 2.0 * math.pi * freq
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(omega * u + phase)
    if kind == "checker":
        return 0.5 + 0.5 * np.tanh(4.0 * np.sin(omega * u + phase) * np.sin(omega * v))
    if kind == "rings":
        return 0.5 + 0.5 * np.sin(omega * rho + phase)
    if kind == "waves":
        return 0.5 + 0.5 * np.sin(omega * u + 1.5 * np.sin(0.7 * omega * v) + phase)
    raise ValueError(kind)


def blob_layer(blob: Blob, t: int, size: int) -> BlobLayer | None:
    """(box slices, coverage, colours) of ``blob`` at frame ``t`` inside its bounding box, or None off screen."""
    centre_x, centre_y = blob.center[t]
    radius = float(blob.radius[t])
    reach = radius * blob.outline.extent
    x0, x1 = max(0, int(math.floor(centre_x - reach))), min(size, int(math.ceil(centre_x + reach)) + 1)
    y0, y1 = max(0, int(math.floor(centre_y - reach))), min(size, int(math.ceil(centre_y + reach)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - centre_x)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - centre_y)[:, None]
    u, v = shape_axes(dx, dy, blob.angle[t], radius)
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    outline = blob.outline
    limit = 1.0 + sum(a * np.cos(k * phi + p) for k, a, p in zip(outline.orders, outline.amplitudes, outline.phases))
    coverage = rho <= limit
    texture = _texture(blob.texture, u, v, rho, float(blob.texture_freq[t]), float(blob.texture_phase[t]))
    color1 = blob.color1[t].astype(np.float32)
    color2 = blob.color2[t].astype(np.float32)
    colours = color2 + texture[..., None].astype(np.float32) * (color1 - color2)
    return (slice(y0, y1), slice(x0, x1)), coverage, colours


def _bar_layer(bar: Bar, t: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(coverage, colours) of ``bar`` over the whole frame at frame ``t``, or None off screen."""
    offset = bar.offset[t]
    if not np.isfinite(offset):
        return None
    cos, sin = math.cos(bar.angle), math.sin(bar.angle)
    across = x * cos + y * sin - offset
    coverage = np.abs(across) <= bar.half_width
    along = -x * sin + y * cos
    freq = bar.texture_freq
    texture = 0.5 + 0.25 * np.sin(freq * along + bar.texture_phase) + 0.25 * np.sin(0.5 * freq * across)
    colours = bar.color2 + texture[..., None] * (bar.color1 - bar.color2)
    return coverage, colours


def render_scene(
    scene: Scene, hide: frozenset[int] | set[int] = frozenset(), hide_bars: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Render frames uint8 [T, S, S, 3] and id masks uint8 [T, S, S].

    Objects whose id is in ``hide`` (and bars if ``hide_bars``) are skipped. The
    sensor noise is identical whatever is hidden, so renders differ only where a
    hidden layer was the top visible one.
    """
    num_frames, size = scene.num_frames, scene.size
    x, y = pixel_centres(size)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    masks = np.zeros((num_frames, size, size), np.uint8)
    noise_rng = np.random.default_rng(scene.noise_seed)
    amplitude = scene.difficulty.sensor_noise
    blobs = [blob for blob in scene.blobs if blob.obj_id not in hide]
    bars = [] if hide_bars else scene.bars
    for t in range(num_frames):
        image = scene.background.copy()
        ids = masks[t]
        for blob in blobs:
            layer = blob_layer(blob, t, size)
            if layer is not None:
                box, coverage, colours = layer
                image[box][coverage] = colours[coverage]
                ids[box][coverage] = blob.obj_id
        for bar in bars:
            layer = _bar_layer(bar, t, x, y)
            if layer is not None:
                coverage, colours = layer
                image[coverage] = colours[coverage]
                ids[coverage] = 0
        noise = noise_rng.integers(-amplitude, amplitude + 1, size=(size, size, 3), dtype=np.int16)
        frames[t] = np.clip(np.rint(image).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return frames, masks
