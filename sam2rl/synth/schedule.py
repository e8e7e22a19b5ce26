"""When a video's events happen: occlusion windows, jump frames, appearance-change windows, distractor passes.

Only frame numbers (and jump lengths) are drawn here; what happens at those
frames is built by the modules that own the objects: bars in
:mod:`~sam2rl.synth.occluders`, jumps and passes in :mod:`~sam2rl.synth.motion`,
appearance curves in :mod:`~sam2rl.synth.objects`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2rl.synth.difficulty import Difficulty, draw_count, draw_float, draw_int

__all__ = ["Timeline", "Window", "draw_pass_frames", "draw_timeline"]

Window = tuple[int, int]  # frames [start, stop)

#: Tries to place one window, or one distractor pass, before giving up on it.
_PLACEMENT_TRIES = 50


@dataclass
class Timeline:
    """The target's own events, drawn before its path (which must jump at ``jump_frames``)."""

    occlusion_windows: list[Window]  # the target is fully hidden by a bar
    jump_frames: list[int]  # sorted
    jump_distances: list[float]  # pixels, one per jump frame
    appearance_windows: list[Window]


def _place_windows(
    rng: np.random.Generator, count: int, lengths: tuple[int, int], first: int, end: int, gap: int
) -> list[Window]:
    """Up to ``count`` windows inside ``[first, end)`` with ``gap`` free frames between them, sorted."""
    windows: list[Window] = []
    for _ in range(count):
        for _try in range(_PLACEMENT_TRIES):
            length = draw_int(rng, lengths)
            if end - length < first:
                continue
            start = int(rng.integers(first, end - length + 1))
            stop = start + length
            if all(stop + gap <= other_start or other_stop + gap <= start for other_start, other_stop in windows):
                windows.append((start, stop))
                break
    return sorted(windows)


def draw_timeline(rng: np.random.Generator, difficulty: Difficulty, num_frames: int, size: int) -> Timeline:
    """Occlusions after the prompt frames, jumps outside them, then appearance-change windows."""
    first = min(6, max(num_frames - 1, 1))
    num_occlusions = draw_count(rng, difficulty.occlusions, num_frames)
    occlusion_windows = _place_windows(rng, num_occlusions, difficulty.occlusion_frames, first, num_frames - 1, gap=4)
    jump_frames = _draw_jump_frames(rng, difficulty, num_frames, occlusion_windows)
    jump_distances = [draw_float(rng, difficulty.jump_distance) * size for _ in jump_frames]
    num_changes = draw_count(rng, difficulty.appearance_changes, num_frames)
    appearance_windows = _place_windows(rng, num_changes, difficulty.appearance_frames, 2, num_frames, gap=1)
    return Timeline(occlusion_windows, jump_frames, jump_distances, appearance_windows)


def _draw_jump_frames(
    rng: np.random.Generator, difficulty: Difficulty, num_frames: int, occlusion_windows: list[Window]
) -> list[int]:
    """Sorted jump frames from frame 3 on, 4 apart, neither inside an occlusion nor beside one (it would be hidden)."""
    banned = {t for start, stop in occlusion_windows for t in range(start - 1, stop + 2)}
    jump_frames: list[int] = []
    for _ in range(draw_count(rng, difficulty.jumps, num_frames)):
        free = [t for t in range(3, num_frames) if t not in banned and all(abs(t - j) >= 4 for j in jump_frames)]
        if free:
            jump_frames.append(int(rng.choice(free)))
    return sorted(jump_frames)


def draw_pass_frames(
    rng: np.random.Generator,
    difficulty: Difficulty,
    num_distractors: int,
    occlusion_windows: list[Window],
    num_frames: int,
) -> list[list[int]]:
    """Sorted frames at which each distractor passes the target: from frame 10, 10 apart, not while it is hidden.

    Passes are dealt to the distractors in turn; a pass with no free frame is dropped.
    """
    num_passes = draw_count(rng, difficulty.distractor_passes, num_frames) if num_distractors else 0
    hidden = {t for start, stop in occlusion_windows for t in range(start - 1, stop + 1)}
    pass_frames: list[list[int]] = [[] for _ in range(num_distractors)]
    for index in range(num_passes):
        own = pass_frames[index % num_distractors]
        for _try in range(_PLACEMENT_TRIES):
            frame = int(rng.integers(min(10, num_frames - 1), num_frames)) if num_frames > 1 else 0
            if frame in hidden or any(abs(frame - other) < 10 for other in own):
                continue
            own.append(frame)
            break
    return [sorted(frames) for frames in pass_frames]
