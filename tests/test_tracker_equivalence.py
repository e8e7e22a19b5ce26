"""The tracker core reproduces `SAM2VideoPredictor.propagate_in_video` (FIFO, same weights)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from sam2.build_sam import build_sam2_video_predictor as sam2_builder

from sam2rl.datasets import VideoDataset
from sam2rl.tracker import MODELS, ModelSpec, Tracker, TrackerSettings, resize_prompt_mask, save_official_checkpoint
from sam2rl.tracker import build_sam2_model, build_sam2_video_predictor, to_video_resolution


def reference_predictor(spec: ModelSpec, checkpoint: Path):
    """sam2's own video predictor: its builder for official configs, its class for ours."""
    size = spec.image_size
    if spec.name in MODELS:
        config = "configs/" + str(MODELS[spec.name].config).split("/configs/", 1)[1]
        feat = [size // 16, size // 16]
        layer = "++model.memory_attention.layer"
        return sam2_builder(config, str(checkpoint), device="cpu", hydra_overrides_extra=[
            f"++model.image_size={size}", f"{layer}.self_attention.feat_sizes={feat}",
            f"{layer}.cross_attention.feat_sizes={feat}",
        ])
    return build_sam2_video_predictor(ModelSpec(spec.name, checkpoint=checkpoint, image_size=size))


def track_fifo(tracker: Tracker, clip: Path) -> dict[int, torch.Tensor]:
    video = VideoDataset(clip)["blackswan"]
    size = tracker.image_size
    cache = tracker.encode_frames(video.frames(size), chunk=1)
    one = torch.ones(1, dtype=torch.long)
    total = torch.full((1,), video.num_frames)
    prompt = torch.from_numpy(video.object_mask(0, 1))[None]
    low, bank = tracker.start(cache.gather(0 * one), resize_prompt_mask(prompt, size), 0 * one)
    out = {0: to_video_resolution(low, video.height, video.width)[0, 0]}
    for t in range(1, video.num_frames):
        step = tracker.step(cache.gather(t * one), bank, t * one, total)
        bank = step.bank
        out[t] = to_video_resolution(step.prediction.mask_logits(step.choice), video.height, video.width)[0, 0]
    return out


def track_reference(predictor, clip: Path) -> dict[int, torch.Tensor]:
    video = VideoDataset(clip)["blackswan"]
    state = predictor.init_state(str(video.frame_paths[0].parent))
    predictor.add_new_mask(state, 0, 1, torch.from_numpy(video.object_mask(0, 1)))
    return {t: masks[0, 0].clone() for t, _, masks in predictor.propagate_in_video(state)}


TRAINED_NANO = Path(__file__).resolve().parents[1] / "sam2rl" / "weights" / "nano.pt"


@pytest.mark.parametrize("name,size,weights,compiled", [("sam2.1_hiera_t", 256, None, False), ("nano", 128, None, False),
                                                        ("nano", 128, TRAINED_NANO, False),
                                                        ("nano", 128, TRAINED_NANO, True)])
@torch.inference_mode()
def test_fifo_core_reproduces_sam2_video_predictor(name: str, size: int, weights: Path | None, compiled: bool,
                                                   blackswan_clip: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if weights is None:  # random weights, saved in the official format
            model, _ = build_sam2_model(ModelSpec(name, image_size=size, random_weights=True))
            weights = save_official_checkpoint(model, tmp_path / "random.pt")
        checkpoint = weights
        spec = ModelSpec(name, checkpoint=str(checkpoint), image_size=size)
        reference = track_reference(reference_predictor(spec, checkpoint), blackswan_clip)
    ours = track_fifo(Tracker.from_spec(spec, settings=TrackerSettings(compile=compiled)), blackswan_clip)

    assert sorted(ours) == sorted(reference) == list(range(24))
    for t in range(24):
        agreement = ((ours[t] > 0) == (reference[t] > 0)).float().mean().item()
        assert agreement >= 0.999, f"frame {t}: binary masks agree on {agreement:.5f} of pixels"
        assert torch.allclose(ours[t], reference[t], atol=1e-4), f"frame {t}: logits differ"
    # random weights give weak logits; make sure they vary, so agreement is not trivial
    assert torch.stack([reference[t] for t in range(1, 24)]).std() > 1e-3


@torch.inference_mode()
def test_a_different_memory_rule_is_detected(blackswan_clip: Path, nano_random_checkpoint: Path) -> None:
    """The comparison above can fail: SAM 2 with bank-only pointers gives other logits."""
    spec = ModelSpec("nano", checkpoint=str(nano_random_checkpoint))
    fifo = track_fifo(Tracker.from_spec(spec), blackswan_clip)
    bank_ptrs = track_fifo(Tracker.from_spec(spec, settings=TrackerSettings(pointer_source="bank")), blackswan_clip)
    assert all(torch.equal(fifo[t], bank_ptrs[t]) for t in range(2))  # identical while history == bank
    assert max((fifo[t] - bank_ptrs[t]).abs().max().item() for t in range(8, 24)) > 1e-3


def test_compile_needs_the_compiled_model(nano_random_checkpoint: Path) -> None:
    model, _ = build_sam2_model(ModelSpec("nano", checkpoint=str(nano_random_checkpoint)))
    with pytest.raises(ValueError, match="compiled=True.*SAM2Base"):
        Tracker(model, TrackerSettings(compile=True))
