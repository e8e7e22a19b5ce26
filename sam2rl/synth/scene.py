"""What one synthetic video is before it is drawn, and how it is built from a seed.

:func:`build_scene` draws everything from one ``np.random.default_rng(seed)`` in
a fixed order (the target's look, its event timeline and path, the distractors,
the bars, the background, the noise seed), so a seed always gives the same
scene; changing that order changes every video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2rl.synth.background import build_background
from sam2rl.synth.difficulty import Difficulty, draw_int, resolve_difficulty
from sam2rl.synth.objects import TARGET_ID, Blob, build_distractor, build_target, draw_target_look
from sam2rl.synth.occluders import Bar, build_bar
from sam2rl.synth.schedule import Window, draw_pass_frames, draw_timeline

__all__ = ["Scene", "build_scene"]


@dataclass
class Scene:
    """Every object of a video over all its frames, with the event schedule that shaped them."""

    size: int
    num_frames: int
    difficulty: Difficulty
    background: np.ndarray  # [H, W, 3] float32, 0..255
    blobs: list[Blob]  # sorted far -> near
    bars: list[Bar]
    noise_seed: int  # of the sensor noise, drawn apart so that hiding a layer keeps the noise
    occlusion_windows: list[Window]
    jump_frames: list[int]
    appearance_windows: list[Window]
    distractor_passes: list[tuple[int, int]]  # (frame, distractor id), sorted

    @property
    def target(self) -> Blob:
        """The tracked object (mask id 1)."""
        return next(blob for blob in self.blobs if blob.obj_id == TARGET_ID)


def build_scene(seed: int, difficulty: str | Difficulty, num_frames: int, size: int) -> Scene:
    """The scene of video ``seed`` (>= 0) at ``difficulty``, ``num_frames`` (>= 1) frames of ``size`` (>= 16) px."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if num_frames < 1 or size < 16:
        raise ValueError("need num_frames >= 1 and size >= 16")
    settings = resolve_difficulty(difficulty)
    rng = np.random.default_rng(seed)
    num_frames, size = int(num_frames), int(size)

    look = draw_target_look(rng, settings, size)
    timeline = draw_timeline(rng, settings, num_frames, size)
    target = build_target(rng, settings, look, timeline, num_frames, size)
    num_distractors = draw_int(rng, settings.num_distractors)
    pass_frames = draw_pass_frames(rng, settings, num_distractors, timeline.occlusion_windows, num_frames)
    distractors = [
        build_distractor(rng, settings, index, look, target, frames, num_frames, size)
        for index, frames in enumerate(pass_frames)
    ]
    bars = [build_bar(rng, window, target, look.hue, num_frames, size) for window in timeline.occlusion_windows]
    background = build_background(rng, settings, size, look.hue)
    return Scene(
        size=size,
        num_frames=num_frames,
        difficulty=settings,
        background=background,
        blobs=sorted([target, *distractors], key=lambda blob: blob.depth),
        bars=bars,
        noise_seed=int(rng.integers(2**62)),
        occlusion_windows=timeline.occlusion_windows,
        jump_frames=timeline.jump_frames,
        appearance_windows=timeline.appearance_windows,
        distractor_passes=sorted(
            (frame, blob.obj_id) for blob, frames in zip(distractors, pass_frames) for frame in frames
        ),
    )
