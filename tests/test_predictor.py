"""SAM2RLVideoPredictor: sam2's predictor interface, equal to it under FIFO, driven by a loaded agent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2rl.controllers import make_controller
from sam2rl.datasets import VideoDataset
from sam2rl.predictor import SAM2RLVideoPredictor
from sam2rl.tracker import ModelSpec, Tracker
from test_tracker_equivalence import reference_predictor


def test_fifo_predictor_matches_sam2_predictor(blackswan_clip: Path, nano_random_checkpoint: Path) -> None:
    video = VideoDataset(blackswan_clip)["blackswan"]
    folder = str(video.frame_paths[0].parent)
    mask = video.object_mask(0, 1)
    spec = ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=128)
    theirs = reference_predictor(spec, nano_random_checkpoint)
    ours = SAM2RLVideoPredictor(Tracker.from_spec(spec))
    with torch.inference_mode():
        state = theirs.init_state(folder)
        theirs.add_new_points_or_box(state, 0, 1, points=[[400, 200]], labels=[1])
        theirs.add_new_mask(state, 0, 2, mask)
        theirs.add_new_points_or_box(state, 0, 3, box=[300, 100, 600, 400])
        reference = {t: m.clone() for t, _, m in theirs.propagate_in_video(state)}
    state = ours.init_state(folder)
    _, ids, first = ours.add_new_points_or_box(state, 0, 1, points=[[400, 200]], labels=[1])
    assert ids == [1] and first.shape == (1, 1, 480, 854)
    ours.add_new_mask(state, 0, 2, mask)
    ours.add_new_points_or_box(state, 0, 3, box=[300, 100, 600, 400])
    outputs = {t: m for t, ids, m in ours.propagate_in_video(state)}
    assert sorted(outputs) == sorted(reference) == list(range(24))
    for t in range(24):
        agreement = ((outputs[t] > 0) == (reference[t] > 0)).float().mean()
        assert agreement >= 0.999, f"frame {t}: {agreement:.5f}"
        # random weights barely use memory, so masks alone would not tell FIFO from another rule
        assert torch.allclose(outputs[t], reference[t], atol=1e-4), f"frame {t}: logits differ"


def test_predictor_with_a_box_and_a_late_object(blackswan_clip: Path, nano_random_checkpoint: Path) -> None:
    tracker = Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))
    predictor = SAM2RLVideoPredictor(tracker, make_controller("random", seed=0))
    state = predictor.init_state(str(VideoDataset(blackswan_clip)["blackswan"].frame_paths[0].parent))
    predictor.add_new_points_or_box(state, 0, 5, box=[300, 100, 600, 400])
    predictor.add_new_points_or_box(state, 10, 7, points=[[100, 100], [120, 90]], labels=[1, 0])
    frames = list(predictor.propagate_in_video(state))
    assert [t for t, _, _ in frames] == list(range(24))
    assert frames[3][1] == [5, 7] and bool((frames[3][2][1] == -1024).all())  # object 7 not yet prompted
    assert not bool((frames[12][2][1] == -1024).all())
    predictor.add_new_points_or_box(state, 10, 7, points=[[110, 100]], labels=[1])  # same frame: replaces
    with pytest.raises(ValueError, match="object 7 is already prompted on frame 10, not 12"):
        predictor.add_new_points_or_box(state, 12, 7, points=[[110, 100]], labels=[1])
    assert state["prompts"][7][0] == 10
    _, _, pixels = predictor.add_new_points_or_box(state, 10, 8, points=[[427, 240]], labels=[1])
    _, _, unit = predictor.add_new_points_or_box(state, 10, 8, points=[[0.5, 0.5]], labels=[1], normalize_coords=False)
    assert torch.equal(pixels, unit)  # the same click, in video pixels or in [0, 1]
    with pytest.raises(ValueError, match="points and labels must be given together"):
        predictor.add_new_points_or_box(state, 10, 9, points=[[1, 2]])
    with pytest.raises(RuntimeError, match="no prompts"):
        next(predictor.propagate_in_video({**state, "prompts": {}}))
