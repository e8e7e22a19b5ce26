"""Synthetic tracking benchmark whose videos break a FIFO memory (see :mod:`sam2rl.synth.generator`)."""

from sam2rl.synth.generator import (
    DIFFICULTIES,
    GENERATOR_VERSION,
    Difficulty,
    SceneEvents,
    davis_palette,
    generate_video,
    resolve_difficulty,
    video_seed,
    write_dataset,
)

__all__ = [
    "DIFFICULTIES",
    "GENERATOR_VERSION",
    "Difficulty",
    "SceneEvents",
    "davis_palette",
    "generate_video",
    "resolve_difficulty",
    "video_seed",
    "write_dataset",
]
