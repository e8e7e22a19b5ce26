"""Tracker pretraining: SAM 2's losses on known cases, and the recipe end to end (tiny)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from sam2rl.cli import main as sam2rl
from sam2rl.pretrain.data import SyntheticClips
from sam2rl.pretrain.losses import frame_losses
from sam2rl.schema.pretrain import CurriculumStage, LossWeights
from sam2rl.tracker import ModelSpec, Prediction, build_sam2_model


def prediction(logits: torch.Tensor, ious: torch.Tensor, score: float) -> Prediction:
    batch, m = logits.shape[:2]
    return Prediction(low_res_masks=logits, high_res_masks=logits, ious=ious, obj_ptrs=torch.zeros(batch, m, 4),
                      object_score=torch.full((batch,), score), sam_choice=ious.argmax(dim=1), batch_size=[batch])


def test_losses_pick_the_best_candidate_and_score_iou_predictions() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    right = torch.where(target, 20.0, -20.0)
    wrong = torch.where(target, -20.0, 20.0)
    logits = torch.stack([wrong, right, wrong], dim=1)
    losses = frame_losses(prediction(logits, torch.tensor([[0.0, 1.0, 0.0]]), 5.0), target, LossWeights())
    assert losses["focal"] < 1e-6 and losses["dice"] < 1e-3  # the right candidate is the one supervised
    assert losses["iou"] < 1e-6  # predicted IoUs 0, 1, 0 are exactly the actual ones
    assert losses["frame_iou"] == 1.0
    bad_ious = frame_losses(prediction(logits, torch.tensor([[1.0, 0.0, 1.0]]), 5.0), target, LossWeights())
    assert torch.isclose(bad_ious["iou"], torch.tensor(1.0))


def test_absent_object_only_trains_presence() -> None:
    target = torch.zeros(2, 8, 8, dtype=torch.bool)
    logits = torch.randn(2, 3, 8, 8)
    present = frame_losses(prediction(logits, torch.rand(2, 3), 3.0), target, LossWeights())
    absent = frame_losses(prediction(logits, torch.rand(2, 3), -3.0), target, LossWeights())
    assert present["focal"] == present["dice"] == present["iou"] == 0
    assert present["object_score"] > 3 * absent["object_score"]


def test_pretrain_recipe_runs_exports_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    tiny = ["model.image_size=64", "data.batch_size=2", "data.video_frames=8", "data.clips_per_video=2",
            "data.curriculum=[{until: null, difficulty: {easy: 1.0}, clip_frames: 3}]", "validation.every_steps=2",
            "validation.num_videos=1", "validation.frames=6", f"output.dir={out}", "trainer.log_every=1"]
    assert sam2rl(["run", "recipes/pretrain_tracker.yaml", "trainer.max_steps=2", *tiny]) == 0
    assert (out / "recipe.yaml").is_file() and "max_steps: 2" in (out / "recipe.yaml").read_text()
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2] and 0 <= records[0]["quality"] <= 1
    build_sam2_model(ModelSpec("nano", checkpoint=str(out / "nano.pt"), image_size=64))  # official format
    card = (out / "nano.md").read_text()
    assert "sha256" in card and "| 2 |" in card and "--seed 9001" in card
    assert sam2rl(["run", "recipes/pretrain_tracker.yaml", "trainer.max_steps=4", "resume=auto", *tiny]) == 0
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]  # continued from step 2, not restarted
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
    assert sam2rl(["run", "recipes/pretrain_tracker.yaml", "trainer.max_steps=5", "resume=auto", *tiny]) == 0
    # ended between two periodic checkpoints (every 100 steps): last.ckpt still holds the end
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 5
    assert sam2rl(["run", "recipes/pretrain_tracker.yaml", "trainer.max_steps=2", *tiny]) == 0  # a new run, same folder
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2]  # its own history, not the old run's


@pytest.mark.parametrize("override,message", [
    ("optim.weight_decy=1", "unknown key 'optim.weight_decy'; did you mean 'optim.weight_decay'?"),
    ("trainer.max_steps=many", "bad value for trainer.max_steps"),
    ("max_steps", "expected key=value"),
    ("trainer.devices=2", "trainer.devices: pretraining runs on one device, got 2"),
    ("validation.difficulty=medum", "validation.difficulty: unknown difficulty 'medum'"),
    ("data.curriculum=[{until: null, difficulty: {hrad: 1.0}, clip_frames: 8}]",
     "data.curriculum[0].difficulty: unknown difficulty 'hrad'"),
    ("data.curriculum=[{until: null, difficulty: {easy: 1.0}, clip_frames: 1}]",
     "data.curriculum[0].clip_frames: must be a whole number >= 2, got 1"),
    ("validation.every_steps=0", "validation.every_steps: must be a whole number >= 1, got 0"),
    ("resume=/nowhere/last.ckpt", "resume: checkpoint /nowhere/last.ckpt not found"),
    ("data.curriculum.0.until=100", "data.curriculum is a list; override it whole, e.g. 'data.curriculum=[...]'"),
])
def test_recipe_errors_name_the_key(override: str, message: str, capsys: pytest.CaptureFixture) -> None:
    assert sam2rl(["run", "recipes/pretrain_tracker.yaml", override]) == 2
    assert message in capsys.readouterr().err


def test_recipe_with_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r.yaml").write_text("task: teleport\n")
    assert sam2rl(["run", str(tmp_path / "r.yaml")]) == 2
    assert "known tasks: pretrain_tracker" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 2])
def test_curriculum_follows_the_global_step_with_several_workers(workers: int) -> None:
    stages = [CurriculumStage(until=1, difficulty={"easy": 1.0}, clip_frames=3),
              CurriculumStage(until=3, difficulty={"easy": 1.0}, clip_frames=4),
              CurriculumStage(until=None, difficulty={"easy": 1.0}, clip_frames=5)]
    clips = SyntheticClips(stages, size=32, video_frames=8, clips_per_video=1, batch_size=2)
    loader = torch.utils.data.DataLoader(clips, batch_size=2, num_workers=workers)
    lengths = [frames.shape[1] for frames, _ in itertools.islice(loader, 5)]
    assert lengths == [3, 4, 4, 5, 5]


@pytest.mark.parametrize("text,message", [
    ("model: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping of sections"),
    ("task: pretrain_tracker\ndata: {curriculum: [{until: null, clip_frame: 8}]}\n",
     "unknown key 'clip_frame'; did you mean 'data.curriculum[i].clip_frames'?"),
    ("task: pretrain_tracker\ndata: {curriculum: [{until: null, clip_frames: many}]}\n",
     "bad value for data.curriculum[i].clip_frames: Value 'many'"),
])
def test_recipe_file_that_is_not_a_mapping(text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "r.yaml").write_text(text)
    assert sam2rl(["run", str(tmp_path / "r.yaml")]) == 2
    assert f"error: recipe {tmp_path / 'r.yaml'}: {message}" in capsys.readouterr().err
