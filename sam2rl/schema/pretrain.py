"""The tracker pretraining recipe (`task: pretrain_tracker`, `recipes/pretrain_tracker.yaml`): every
section, field, default and valid range, in one place.

Why here: the components read their own section (the losses `LossWeights`, the optimiser
`OptimSettings`, the clip stream `CurriculumStage`), so each field is defined once, and a recipe
is checked whole, before anything runs, against the ranges declared on the fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sam2rl.schema.fields import (accelerator, choice, custom, folder, items, number, output_file,
                                  precision, section, text, whole)

__all__ = ["CurriculumStage", "DataSection", "LossWeights", "ModelSection", "OptimSettings", "OutputSection",
           "PretrainRecipe", "TrainerSection", "ValidationSection"]


def _weights(value: dict[str, float]) -> str | None:
    if not value:  # as null: medium only
        return None
    bad = {name: w for name, w in value.items()
           if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0}
    if bad:
        return f"weights must be finite numbers >= 0, got {bad}"
    return None if sum(value.values()) > 0 else f"needs a weight > 0, got {value}"


@dataclass
class CurriculumStage:
    """Until global step `until` (None: forever), draw difficulties with these weights."""

    until: int | None = whole(None, low=1)
    difficulty: dict[str, float] | None = custom(None, _weights)
    """Weight of each `sam2rl synth` difficulty (easy, medium, hard); None: medium only."""
    clip_frames: int = whole(8, low=2)
    """Frames per clip: the prompt and at least one tracked frame."""


def _default_curriculum() -> list[CurriculumStage]:
    """The shipped recipe's (`recipes/pretrain_tracker.yaml`)."""
    return [
        CurriculumStage(until=1250, difficulty={"easy": 1.0}, clip_frames=4),
        CurriculumStage(until=2600, difficulty={"easy": 0.4, "medium": 0.6}, clip_frames=8),
        CurriculumStage(until=None, difficulty={"easy": 0.2, "medium": 0.5, "hard": 0.3}, clip_frames=8),
    ]


def _stage_order(stages: list[CurriculumStage]) -> Iterator[tuple[str, str]]:
    """Each stage ends after the one before; only the last may last forever (a later one is never reached)."""
    for i, (stage, after) in enumerate(zip(stages, stages[1:])):
        if stage.until is None:
            yield f"[{i}].until", "null (forever) is for the last stage only: the stages after it are never reached"
        elif after.until is not None and after.until <= stage.until:
            yield f"[{i + 1}].until", f"must be greater than the stage before's ({stage.until}), got {after.until}"


@dataclass
class ModelSection:
    """The architecture trained (recipe section `model`)."""
    name: str = text("nano")
    image_size: int = whole(128, multiple_of=32)
    init_checkpoint: str | None = text(None)  # start from these weights instead of random (seed below)


@dataclass
class DataSection:
    """The stream of synthetic training clips (recipe section `data`, `sam2rl.pretrain.data`)."""
    batch_size: int = whole(8, low=1)
    video_frames: int = whole(48, low=2)
    """Frames of each generated video the clips are cut from."""
    clips_per_video: int = whole(4, low=1)
    target_prob: float = number(0.7, low=0.0, high=1.0)
    """Chance the clip follows the target rather than a look-alike, when both are visible."""
    num_workers: int = whole(0, low=0)  # processes generating clips (a GPU outruns one CPU core of synthesis)
    curriculum: list[CurriculumStage] = items(_default_curriculum, "stage", check=_stage_order)


@dataclass
class LossWeights:
    """SAM 2.1's weights (`loss_mask` 20, `loss_dice` 1, `loss_iou` 1, `loss_class` 1)."""

    focal: float = number(20.0, low=0.0)
    dice: float = number(1.0, low=0.0)
    iou: float = number(1.0, low=0.0)
    """On the predicted IoU of every candidate."""
    object_score: float = number(1.0, low=0.0)
    focal_alpha: float = number(0.25, low=0.0, high=1.0)
    focal_gamma: float = number(2.0, low=0.0)


@dataclass
class OptimSettings:
    """AdamW with linear warm-up, then cosine decay to `lr * min_lr_ratio` (recipe section `optim`)."""
    lr: float = number(5e-4, low=0.0, low_open=True)
    weight_decay: float = number(0.05, low=0.0)
    warmup_steps: int = whole(200, low=0)
    min_lr_ratio: float = number(0.1, low=0.0, high=1.0)
    grad_clip: float = number(1.0, low=0.0)  # max gradient norm; 0: no clipping


@dataclass
class ValidationSection:
    """FIFO tracking on held-out synthetic videos (recipe section `validation`)."""
    every_steps: int = whole(250, low=1)
    num_videos: int = whole(6, low=1)
    seed: int = whole(9001, low=0)  # `sam2rl synth --seed 9001`: held out, never a training seed
    difficulty: str = text("medium")
    frames: int = whole(48, low=2)


def _one_device(value: int) -> str | None:
    # clips are not split across processes, nor validation videos written once
    return None if value == 1 else f"pretraining runs on one device, got {value}"


@dataclass
class TrainerSection:
    """Lightning's `Trainer` (recipe section `trainer`)."""
    max_steps: int = whole(20000, low=1)
    max_minutes: float | None = number(None, low=0.0, low_open=True)
    """Stop after this much training time, resumed runs included (then validate and export)."""
    accelerator: str = accelerator("auto")
    devices: int = custom(1, _one_device)
    precision: str = precision("32-true")
    threads: int = whole(2, low=1)
    seed: int = whole(0, low=0)
    log_every: int = whole(10, low=1)


@dataclass
class OutputSection:
    """Where the run writes (recipe section `output`)."""
    dir: str = folder("runs/pretrain_tracker")
    export: str = output_file("${output.dir}/nano.pt")  # official-format weights of the best validation step
    export_dtype: str = choice("float32", ("float32", "float16", "bfloat16"))
    """float16: half the file, the same masks to within rounding."""


def _checkpoint(value: str) -> str | None:
    if value == "auto" or Path(value).is_file():
        return None
    return f"checkpoint {value} not found (or resume=auto: the run's last.ckpt)"


@dataclass
class PretrainRecipe:
    """`recipes/pretrain_tracker.yaml`: every section, with its defaults."""
    model: ModelSection = section(ModelSection)
    data: DataSection = section(DataSection)
    loss: LossWeights = section(LossWeights)
    optim: OptimSettings = section(OptimSettings)
    validation: ValidationSection = section(ValidationSection)
    trainer: TrainerSection = section(TrainerSection)
    output: OutputSection = section(OutputSection)
    resume: str | None = custom(None, _checkpoint)  # a Lightning checkpoint; "auto" = the run directory's last.ckpt
