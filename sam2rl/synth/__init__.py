"""Synthetic tracking benchmark whose videos break a FIFO memory (see :mod:`sam2rl.synth.generator`;
:mod:`sam2rl.synth.writer` puts datasets on disk)."""

from sam2rl.datasets.palette import davis_palette
from sam2rl.synth.generator import (
    DIFFICULTIES,
    GENERATOR_VERSION,
    Difficulty,
    SceneEvents,
    generate_video,
    resolve_difficulty,
)
from sam2rl.synth.writer import video_seed, write_dataset

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
