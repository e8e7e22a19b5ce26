"""Deterministic synthetic videos in which a tracker's memory matters: the entry point.

SAM 2 remembers the prompted frame plus the 6 most recent frames (FIFO). Every
video made here contains the events that break such a memory:

* **look-alike distractors** (mask ids 2..): the target's shape family, colour and
  texture, slightly perturbed, steered so that they pass near or across the
  target at scheduled frames; depth order decides who is on top;
* **full occlusions**: a wide textured bar (background, id 0, drawn above every
  object) sweeps in and hides the target completely for several frames; its
  mask is then empty;
* **sudden jumps** of the target (large displacement between two frames);
* **gradual appearance change** of the target: hue/brightness drift, texture
  frequency/phase change, scale change and rotation inside change windows;
* **cluttered backgrounds**: low-frequency colour noise plus random shapes in
  other colours.

Everything is drawn with hard edges (a pixel belongs to a shape iff its centre
is inside it), so the id map is exactly the top visible layer of the rendered
frame. All randomness comes from ``np.random.default_rng(seed)``; rendering is
vectorised numpy (about 20-40 ms for 48 frames of 128 px).

Object pixels are ``c2 + tex * (c1 - c2)`` with ``tex`` in [0, 1], i.e. they lie
on the segment between the object's two colours of that frame (before the
bounded sensor noise), which the tests use to check mask/frame consistency.

A video is made in three steps, one module each: :mod:`~sam2rl.synth.scene`
builds the scene from the seed (knobs in :mod:`~sam2rl.synth.difficulty`),
:mod:`~sam2rl.synth.render` draws it and :mod:`~sam2rl.synth.events` labels
what happened. This module keeps the public names in one place.
"""

from __future__ import annotations

import numpy as np

from sam2rl.synth.difficulty import DIFFICULTIES, REFERENCE_FRAMES, Difficulty, resolve_difficulty
from sam2rl.synth.events import FAST_MOTION_FRACTION, NEAR_DIAMETERS, SceneEvents, label_events
from sam2rl.synth.render import render_scene
from sam2rl.synth.scene import build_scene

__all__ = [
    "DIFFICULTIES",
    "FAST_MOTION_FRACTION",
    "GENERATOR_VERSION",
    "NEAR_DIAMETERS",
    "REFERENCE_FRAMES",
    "Difficulty",
    "SceneEvents",
    "generate_video",
    "resolve_difficulty",
]

GENERATOR_VERSION = 1


def generate_video(
    seed: int, difficulty: str | Difficulty = "medium", num_frames: int = 48, size: int = 128
) -> tuple[np.ndarray, np.ndarray, SceneEvents]:
    """Generate one video.

    Returns ``frames`` uint8 [T, H, W, 3], ``masks`` uint8 [T, H, W] object ids
    (1 = target, 2.. = distractors, 0 = background, bars included) and the
    :class:`SceneEvents`. The target is fully visible on frame 0 (the prompt).
    """
    scene = build_scene(seed, difficulty, num_frames, size)
    frames, masks = render_scene(scene)
    return frames, masks, label_events(scene, masks)
