"""`task: pretrain_tracker` — train a small SAM 2 (our `nano`) on synthetic clips with Lightning.

A task runner: it sits above evaluation (validation scores FIFO tracking with `evaluate`) and reads
its recipe from `sam2rl.schema.pretrain`, whose ranges are checked before anything is written.
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from sam2rl.controllers import FifoController
from sam2rl.datasets import VideoDataset
from sam2rl.evaluation.evaluate import evaluate
from sam2rl.pretrain.data import SyntheticClips
from sam2rl.pretrain.module import TrackerPretraining
from sam2rl.atomic import write_text
from sam2rl.schema.pretrain import PretrainRecipe
from sam2rl.schema.recipe import RecipeError, check_recipe, save_recipe
from sam2rl.synth import resolve_difficulty, write_dataset
from sam2rl.tracker import ModelSpec, Tracker, build_sam2_model, save_official_checkpoint
from sam2rl.tracker.checkpoint import file_sha256
from sam2rl.tasks.quiet import quiet_lightning

__all__ = ["FifoValidation", "run", "write_model_card"]


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


def _check(recipe: PretrainRecipe, recipe_path: Path | None) -> None:
    """The recipe's ranges, and the difficulty names `sam2rl.synth` knows, before anything is written."""
    check_recipe(recipe, f"recipe {recipe_path}" if recipe_path else "recipe")
    named = [("validation.difficulty", recipe.validation.difficulty)]
    for i, stage in enumerate(recipe.data.curriculum):
        named += [(f"data.curriculum[{i}].difficulty", name) for name in stage.difficulty or {}]
    for key, name in named:
        try:
            resolve_difficulty(name)
        except ValueError as error:
            raise RecipeError(f"{key}: {error}") from error


def run(recipe: PretrainRecipe, recipe_path: Path | None = None) -> None:
    """Train the tracker on synthetic clips, validate it every `validation.every_steps` with SAM 2's
    FIFO rule on held-out videos, and export the best weights (official format, with a model card)."""
    _check(recipe, recipe_path)
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
    with quiet_lightning():  # Lightning's device banner and tips (sam2rl.tasks.quiet)
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
