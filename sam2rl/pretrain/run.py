"""`task: pretrain_tracker` — train a small SAM 2 (our `nano`) on synthetic clips with Lightning."""

from __future__ import annotations

import json
import platform
import time
import warnings
from datetime import timedelta
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from sam2rl.controllers import FifoController
from sam2rl.datasets import VideoDataset
from sam2rl.evaluation.evaluate import evaluate
from sam2rl.pretrain.data import CurriculumStage, SyntheticClips
from sam2rl.pretrain.losses import LossWeights
from sam2rl.pretrain.module import OptimSettings, TrackerPretraining
from sam2rl.atomic import write_text
from sam2rl.recipe import RecipeError, save_recipe
from sam2rl.synth import resolve_difficulty, write_dataset
from sam2rl.tracker import ModelSpec, Tracker, build_sam2_model, save_official_checkpoint
from sam2rl.tracker.checkpoint import file_sha256

__all__ = ["PretrainRecipe", "run"]


def _default_curriculum() -> list[CurriculumStage]:
    """The shipped recipe's (`recipes/pretrain_tracker.yaml`)."""
    return [
        CurriculumStage(until=1250, difficulty={"easy": 1.0}, clip_frames=4),
        CurriculumStage(until=2600, difficulty={"easy": 0.4, "medium": 0.6}, clip_frames=8),
        CurriculumStage(until=None, difficulty={"easy": 0.2, "medium": 0.5, "hard": 0.3}, clip_frames=8),
    ]


@dataclass
class ModelSection:
    name: str = "nano"
    image_size: int = 128
    init_checkpoint: str | None = None  # start from these weights instead of random (seed below)


@dataclass
class DataSection:
    batch_size: int = 8
    video_frames: int = 48
    clips_per_video: int = 4
    target_prob: float = 0.7
    num_workers: int = 0  # processes generating clips (a GPU outruns one CPU core of synthesis)
    curriculum: list[CurriculumStage] = field(default_factory=_default_curriculum)


@dataclass
class ValidationSection:
    every_steps: int = 250
    num_videos: int = 6
    seed: int = 9001  # `sam2rl synth --seed 9001`: held out, never a training seed
    difficulty: str = "medium"
    frames: int = 48


@dataclass
class TrainerSection:
    max_steps: int = 20000
    max_minutes: float | None = None  # stop after this much training time, resumed runs included (then validate and export)
    accelerator: str = "auto"
    devices: int = 1
    precision: str = "32-true"
    threads: int = 2
    seed: int = 0
    log_every: int = 10


@dataclass
class OutputSection:
    dir: str = "runs/pretrain_tracker"
    export: str = "${output.dir}/nano.pt"  # official-format weights of the best validation step
    export_dtype: str = "float32"  # or float16: half the file, same masks to within rounding


@dataclass
class PretrainRecipe:
    """`recipes/pretrain_tracker.yaml`: every section, with its defaults."""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimSettings = field(default_factory=OptimSettings)
    validation: ValidationSection = field(default_factory=ValidationSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    output: OutputSection = field(default_factory=OutputSection)
    resume: str | None = None  # a Lightning checkpoint; "auto" = the run directory's last.ckpt


class FifoValidation(Callback):
    """Every N steps: FIFO tracking quality on held-out synthetic videos; export the best weights."""

    def __init__(self, recipe: PretrainRecipe, spec: ModelSpec, resuming: bool, recipe_path: Path | None = None):
        self.recipe = recipe
        self.spec = spec
        self.recipe_path = recipe_path
        out = Path(recipe.output.dir)
        val = recipe.validation
        self.data_dir = out / "validation_videos"
        try:  # reuses the folder when it holds these very videos
            write_dataset(self.data_dir, val.num_videos, val.seed, val.difficulty, val.frames, recipe.model.image_size)
        except FileExistsError as error:
            raise RecipeError(f"validation: {error}") from error
        self.history_path = out / "validation.jsonl"
        # a new run in an old run's folder starts its own history (and its own best)
        history = [json.loads(line) for line in self.history_path.open()] if resuming and self.history_path.is_file() else []
        self.history = history
        self.best = max((r["quality"] for r in history), default=-1.0)
        self.last_step = history[-1]["step"] if history else -1
        # minutes count across resumed runs (time between the last validation and a crash is lost)
        self.started = time.time() - 60 * (history[-1]["minutes"] if history else 0.0)

    def on_train_batch_end(self, trainer: L.Trainer, module: TrackerPretraining, *args: object) -> None:
        if trainer.global_step % self.recipe.validation.every_steps == 0 and trainer.is_global_zero:
            self._validate(trainer, module)
            module.log("val/quality", self.history[-1]["quality"])

    def on_train_end(self, trainer: L.Trainer, module: TrackerPretraining) -> None:
        """The final weights count too, when the run does not end on a validation step."""
        if trainer.global_step != self.last_step and trainer.is_global_zero:
            self._validate(trainer, module)

    def _validate(self, trainer: L.Trainer, module: TrackerPretraining) -> None:
        step = self.last_step = trainer.global_step
        module.model.eval()
        tracker = Tracker(module.model, spec=self.spec)
        results = evaluate(tracker, VideoDataset(self.data_dir), [FifoController()])
        module.model.train()
        overall = results["controllers"]["fifo"]["overall"]
        record = {"step": step, "quality": overall["quality"], "jf": overall["jf_mean"],
                  "presence": overall["presence"], "minutes": (time.time() - self.started) / 60}
        self.history.append(record)
        out = Path(self.recipe.output.dir)
        save_official_checkpoint(module.model, out / f"{Path(self.recipe.model.name).stem}-last.pt", step=step)
        if overall["quality"] > self.best:
            self.best = overall["quality"]
            export = save_official_checkpoint(module.model, self.recipe.output.export, step=step, validation=record,
                                              dtype=getattr(torch, self.recipe.output.export_dtype))
            write_model_card(export, self.recipe, record, self.history, self.recipe_path)
        # after the export: a crash in between leaves the best unrecorded (re-exported later), never
        # recorded but not exported; rewritten whole, so a resume never reads a torn line
        write_text(self.history_path, "".join(json.dumps(r) + "\n" for r in self.history))


def write_model_card(weights: Path, recipe: PretrainRecipe, record: dict, history: list[dict],
                     recipe_path: Path | None = None) -> Path:
    """`<weights>.md` beside the weights: how they were made and what they measure."""
    curve = "\n".join(f"| {r['step']} | {r['quality']:.3f} | {r['jf']:.3f} | {r['minutes']:.0f} |" for r in history)
    val = recipe.validation
    text = f"""# Model card: {weights.name}

- Architecture: `sam2rl/configs/{recipe.model.name}.yaml` (sam2's modules), input {recipe.model.image_size} px.
- Format: official SAM 2 checkpoint (`{{"model": state_dict}}`), sha256 `{file_sha256(weights)}`.
- Trained by `sam2rl run {recipe_path or "recipes/pretrain_tracker.yaml"}` (resolved recipe: `recipe.yaml` in the run
  directory), seed {recipe.trainer.seed}, from {recipe.model.init_checkpoint or "random weights"}, on synthetic clips (`sam2rl.synth`, seeds
  from 2^40, curriculum {[(c.until, c.difficulty, c.clip_frames) for c in recipe.data.curriculum]}).
- This export: step {record['step']} (batch {recipe.data.batch_size}), {record['minutes']:.0f} min of training on
  {platform.processor() or platform.machine()} with {torch.get_num_threads()} threads ({"CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"}).
- Validation (held out, never trained on): `sam2rl synth --seed {val.seed} --num {val.num_videos} --difficulty
  {val.difficulty} --frames {val.frames} --size {recipe.model.image_size}`, every object tracked with SAM 2's FIFO
  rule: tracking quality {record['quality']:.3f} (mean IoU, first 7 frames skipped), J&F {record['jf']:.3f},
  presence accuracy {record['presence']:.3f}.

## Learning curve (validation)

| step | FIFO quality | J&F | minutes |
|---:|---:|---:|---:|
{curve}
"""
    path = weights.with_suffix(".md")
    write_text(path, text)
    return path


def _check(recipe: PretrainRecipe) -> None:
    """Values that would otherwise fail in the middle of a run, checked before anything is written."""
    if recipe.output.export_dtype not in ("float32", "float16", "bfloat16"):
        raise RecipeError(f"output.export_dtype: {recipe.output.export_dtype!r} is not float32, float16 or bfloat16")
    if recipe.trainer.devices != 1:  # clips are not split across processes, nor validation videos written once
        raise RecipeError(f"trainer.devices: pretraining runs on one device, got {recipe.trainer.devices}")
    if recipe.validation.every_steps < 1:
        raise RecipeError(f"validation.every_steps must be >= 1, got {recipe.validation.every_steps}")
    named = [("validation.difficulty", recipe.validation.difficulty)]
    for i, stage in enumerate(recipe.data.curriculum):
        if stage.clip_frames < 2:
            raise RecipeError(f"data.curriculum[{i}].clip_frames must be >= 2 (a prompt and a tracked frame), "
                              f"got {stage.clip_frames}")
        named += [(f"data.curriculum[{i}].difficulty", name) for name in stage.difficulty or {}]
    for key, name in named:
        try:
            resolve_difficulty(name)
        except ValueError as error:
            raise RecipeError(f"{key}: {error}") from error
    if recipe.resume not in (None, "auto") and not Path(recipe.resume).is_file():
        raise RecipeError(f"resume: checkpoint {recipe.resume} not found (or resume=auto: the run's last.ckpt)")


def run(recipe: PretrainRecipe, recipe_path: Path | None = None) -> None:
    """Train the tracker on synthetic clips, validate it every `validation.every_steps` with SAM 2's
    FIFO rule on held-out videos, and export the best weights (official format, with a model card)."""
    _check(recipe)
    torch.set_num_threads(recipe.trainer.threads)
    torch.set_float32_matmul_precision("high")  # TF32 on GPUs that have it; no effect on CPU
    L.seed_everything(recipe.trainer.seed, workers=True)
    out = Path(recipe.output.dir)
    spec = ModelSpec(recipe.model.name, checkpoint=recipe.model.init_checkpoint, image_size=recipe.model.image_size,
                     random_weights=recipe.model.init_checkpoint is None, seed=recipe.trainer.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = build_sam2_model(spec)
    out.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out / "recipe.yaml")  # once the model is built: a bad name leaves the run's record alone
    module = TrackerPretraining(model.train(), recipe.loss, recipe.optim, recipe.trainer.max_steps)
    clips = SyntheticClips(recipe.data.curriculum, recipe.model.image_size, recipe.data.video_frames,
                           recipe.data.clips_per_video, recipe.data.target_prob, recipe.trainer.seed,
                           recipe.data.batch_size)
    resume = recipe.resume
    if resume == "auto":
        last = out / "checkpoints" / "last.ckpt"
        resume = str(last) if last.is_file() else None
    if resume is not None:
        clips.start_step = torch.load(resume, map_location="cpu", weights_only=False)["global_step"]
    workers = recipe.data.num_workers
    loader = torch.utils.data.DataLoader(clips, batch_size=recipe.data.batch_size, num_workers=workers,
                                         persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
    minutes = recipe.trainer.max_minutes
    trainer = L.Trainer(
        max_steps=recipe.trainer.max_steps, max_time=None if minutes is None else timedelta(minutes=minutes),
        accelerator=recipe.trainer.accelerator, devices=recipe.trainer.devices,
        precision=recipe.trainer.precision, gradient_clip_val=recipe.optim.grad_clip,
        log_every_n_steps=recipe.trainer.log_every, default_root_dir=str(out),
        logger=CSVLogger(str(out), name="logs", version=""),
        callbacks=[ModelCheckpoint(dirpath=out / "checkpoints", every_n_train_steps=100, save_last=True,
                                   save_top_k=0), FifoValidation(recipe, spec, resume is not None, recipe_path)],
        enable_model_summary=False,
    )
    trainer.fit(module, loader, ckpt_path=resume)
    # Lightning writes last.ckpt only with a periodic save; a run ending between two (max_minutes, or
    # max_steps off the period) would resume from the previous one
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
