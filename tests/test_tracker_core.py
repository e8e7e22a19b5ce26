"""Model building, checkpoints, feature cache, memory bank and the batched step."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from sam2rl.tracker import CheckpointError, FeatureCache, Memories, MemoryBank, ModelError, ModelSpec, Tracker, build_sam2_model
from sam2rl.tracker import resize_prompt_mask
from sam2rl.tracker.checkpoint import file_sha256


# -- building ------------------------------------------------------------------------------------

def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown SAM 2 model 'sam3'.*sam2\.1_hiera_t.*nano"):
        build_sam2_model(ModelSpec("sam3"))


def test_official_model_without_checkpoint_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAM2RL_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"sam2\.1_hiera_l needs its checkpoint sam2\.1_hiera_large\.pt.*SAM2RL_CHECKPOINT_DIR"):
        build_sam2_model(ModelSpec("sam2.1_hiera_l"))


def test_checkpoint_found_in_search_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nano_random_checkpoint: Path) -> None:
    (tmp_path / "nano.pt").write_bytes(nano_random_checkpoint.read_bytes())
    monkeypatch.setenv("SAM2RL_CHECKPOINT_DIR", str(tmp_path))
    _, found = build_sam2_model(ModelSpec("nano"))
    assert found == tmp_path / "nano.pt"


def test_random_weights_warn_and_are_seeded() -> None:
    with pytest.warns(UserWarning, match="random weights"):
        first, _ = build_sam2_model(ModelSpec("nano", image_size=64, random_weights=True))
    torch.rand(3)  # the global generator's state does not matter
    second, _ = build_sam2_model(ModelSpec("nano", image_size=64, random_weights=True))
    other, _ = build_sam2_model(ModelSpec("nano", image_size=64, random_weights=True, seed=1))
    weight = "memory_attention.layers.0.self_attn.q_proj.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


@pytest.mark.parametrize("size", [100, 0, -32])
def test_image_size_must_be_multiple_of_32(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        build_sam2_model(ModelSpec("nano", image_size=size, random_weights=True))


def test_official_config_at_any_size_sets_rope_tables() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = build_sam2_model(ModelSpec("sam2_hiera_s", image_size=320, random_weights=True))
    layer = model.memory_attention.layers[0]
    assert model.image_size == 320
    assert layer.self_attn.freqs_cis.shape[0] == layer.cross_attn_image.freqs_cis.shape[0] == 20 * 20


# -- checkpoints ---------------------------------------------------------------------------------

def test_missing_checkpoint_file() -> None:
    with pytest.raises(CheckpointError, match=r"checkpoint /nowhere/x\.pt for model nano: file not found"):
        build_sam2_model(ModelSpec("nano", checkpoint="/nowhere/x.pt"))


def test_truncated_checkpoint(tmp_path: Path, nano_random_checkpoint: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(nano_random_checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"broken\.pt: cannot be read.*truncated"):
        build_sam2_model(ModelSpec("nano", checkpoint=str(broken)))


def test_checkpoint_without_model_key(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=r"weights\.pt: expected the official SAM 2 format.*state_dict"):
        build_sam2_model(ModelSpec("nano", checkpoint=str(path)))


def test_checkpoint_of_another_config(nano_random_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match=r"does not match model config .*sam2\.1_hiera_t\.yaml: missing keys: .*shape mismatches"):
        build_sam2_model(ModelSpec("sam2.1_hiera_t", checkpoint=str(nano_random_checkpoint), image_size=128))


def test_checkpoint_with_missing_keys(tmp_path: Path, nano_random_checkpoint: Path) -> None:
    state = torch.load(nano_random_checkpoint, weights_only=True)["model"]
    del state["no_mem_embed"]
    path = tmp_path / "partial.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"partial\.pt does not match .*missing keys: no_mem_embed"):
        build_sam2_model(ModelSpec("nano", checkpoint=str(path)))


def test_sha256_check(nano_random_checkpoint: Path) -> None:
    good = file_sha256(nano_random_checkpoint)
    build_sam2_model(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), sha256=good))
    with pytest.raises(CheckpointError, match=f"sha256 is {good}, expected 0000"):
        build_sam2_model(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), sha256="0" * 64))


# -- feature cache -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tracker(nano_random_checkpoint: Path) -> Tracker:
    return Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))


def test_feature_cache_layout_and_size(tracker: Tracker) -> None:
    frames = torch.randn(5, 3, 64, 64)
    cache = tracker.encode_frames(frames, chunk=2)
    assert cache.num_frames == 5
    assert [tuple(x.shape[1:]) for x in cache.levels] == [(16, 16, 16), (32, 8, 8), (128, 4, 4)]
    # hidden/8 (S/4)^2 + hidden/4 (S/8)^2 + hidden (S/16)^2 float32 values
    assert cache.bytes_per_frame == 4 * (16 * 256 + 32 * 64 + 128 * 16)
    single = tracker.encode_frames(frames[3:4], chunk=1)
    assert all(torch.allclose(a[3], b[0], atol=1e-5) for a, b in zip(cache.levels, single.levels))
    features = cache.gather(torch.tensor([4, 0, 4]))
    assert torch.equal(features.top[0], features.top[2]) and features.pos_top.shape == (16, 3, 128)


# -- memory bank ---------------------------------------------------------------------------------

def candidate(frames: list[int], value: float = 1.0) -> Memories:
    batch = len(frames)
    return Memories(features=torch.full((batch, 2, 1, 1), value), obj_ptr=torch.full((batch, 4), value),
                    frame=torch.tensor(frames), object_score=torch.ones(batch), iou=torch.full((batch,), 0.9),
                    area=torch.full((batch,), 0.1), valid=torch.ones(batch, dtype=torch.bool), batch_size=[batch])


def empty_bank(batch: int = 2, anchors: int = 2) -> MemoryBank:
    return MemoryBank.empty(batch, num_recent=3, max_anchors=anchors, num_pointers=4, feature_shape=(2, 1, 1),
                            ptr_dim=4, dtype=torch.float32, device="cpu")


def test_fifo_fills_empty_slots_then_evicts_oldest() -> None:
    bank = empty_bank(1)
    actions = []
    for t in range(1, 6):
        action = bank.fifo_action()
        actions.append(int(action))
        bank = bank.apply(candidate([t]), action)
    assert actions == [1, 2, 3, 1, 2]
    assert bank.recent.frame.tolist() == [[4, 5, 3]]


def test_apply_discard_write_and_anchor_per_track() -> None:
    bank = empty_bank(3)
    bank = bank.apply(candidate([7, 7, 7], 2.0), torch.tensor([0, 2, bank.anchor_action]))
    assert bank.recent.valid.tolist() == [[False] * 3, [False, True, False], [False] * 3]
    assert bank.recent.frame[1].tolist() == [-1, 7, -1]
    assert torch.equal(bank.recent.features[1, 1], torch.full((2, 1, 1), 2.0))
    assert bank.anchors.valid.tolist() == [[False, False], [False, False], [True, False]]
    bank = bank.apply(candidate([8, 8, 8]), torch.tensor([0, 0, bank.anchor_action]))
    assert bank.anchors.frame[2].tolist() == [7, 8]
    assert bank.action_mask(allow_anchor=True)[:, bank.anchor_action].tolist() == [True, True, False]
    with pytest.raises(ValueError, match="anchor slots are all taken"):
        bank.apply(candidate([9, 9, 9]), torch.tensor([0, 0, bank.anchor_action]))


def test_invalid_action_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"actions must be in \[0, 4\]"):
        empty_bank(1).apply(candidate([1]), torch.tensor([5]))


def test_pointer_history_is_newest_first() -> None:
    bank = empty_bank(1)
    for t in range(1, 7):
        bank = bank.push_pointer(torch.full((1, 4), float(t)), torch.tensor([t]))
    assert bank.pointer_frame.tolist() == [[6, 5, 4, 3]]
    assert bank.pointers[0, :, 0].tolist() == [6.0, 5.0, 4.0, 3.0]


# -- batched step --------------------------------------------------------------------------------

def run(tracker: Tracker, cache: FeatureCache, prompt: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
    """Track B copies of one video, each with its own action sequence [B, T-1]."""
    batch = actions.shape[0]
    zeros = torch.zeros(batch, dtype=torch.long)
    total = torch.full((batch,), cache.num_frames)
    _, bank = tracker.start(cache.gather(zeros), prompt.expand(batch, -1, -1, -1), zeros)
    logits = []
    for t in range(1, cache.num_frames):
        step = tracker.step(cache.gather(zeros + t), bank, zeros + t, total, act=lambda *_: actions[:, t - 1])
        bank = step.bank
        logits.append(step.prediction.low_res_masks)
    return logits


@torch.inference_mode()
def test_batch_of_different_banks_equals_one_track_at_a_time(tracker: Tracker) -> None:
    """Tracks whose banks hold different numbers of memories share one batch correctly."""
    torch.manual_seed(1)
    cache = tracker.encode_frames(torch.randn(10, 3, 64, 64))
    prompt = resize_prompt_mask(torch.zeros(1, 64, 64, dtype=torch.bool).index_fill_(1, torch.arange(20, 40), True), 64)
    actions = torch.tensor([
        [1, 2, 3, 4, 5, 6, 1, 2, 3],  # FIFO
        [0, 1, 0, 0, 2, 0, 0, 0, 0],  # mostly discards: fewer memories
        [3, 3, 3, 3, 3, 3, 3, 3, 3],  # always overwrites one slot
    ])
    batched = run(tracker, cache, prompt, actions)
    for row in range(3):
        alone = run(tracker, cache, prompt, actions[row:row + 1])
        for t, (b, a) in enumerate(zip(batched, alone)):
            assert torch.allclose(b[row], a[0], atol=1e-5), f"track {row}, frame {t + 1}"
    assert not torch.allclose(batched[-1][0], batched[-1][1], atol=1e-4)  # the banks did matter


@torch.inference_mode()
def test_candidate_pointers_include_sam2_choice(tracker: Tracker) -> None:
    cache = tracker.encode_frames(torch.randn(3, 3, 64, 64))
    zeros = torch.zeros(2, dtype=torch.long)
    prompt = torch.zeros(2, 1, 64, 64)
    prompt[:, :, 10:30, 10:30] = 1
    _, bank = tracker.start(cache.gather(zeros), prompt, zeros)
    features = cache.gather(zeros + 1)
    prediction = tracker.predict(features, bank, zeros + 1, zeros + 3)
    pix = tracker._condition(features, bank, zeros + 1, zeros + 3)
    *_, obj_ptr, _ = tracker.model._forward_sam_heads(pix, high_res_features=features.high_res, multimask_output=True)
    rows = torch.arange(2)
    assert torch.allclose(prediction.obj_ptrs[rows, prediction.sam_choice], obj_ptr, atol=1e-6)
    assert prediction.low_res_masks.shape == (2, 3, 16, 16) and prediction.high_res_masks.shape == (2, 3, 64, 64)
    other = (prediction.sam_choice + 1) % 3
    memory = tracker.remember(features, prediction, other, zeros + 1)
    assert torch.equal(memory.iou, prediction.ious[rows, other]) and memory.features.dtype == torch.bfloat16


@torch.inference_mode()
def test_an_anchored_frame_gives_its_pointer_once(tracker: Tracker) -> None:
    """SAM 2 keeps a frame in its conditioning or its non-conditioning outputs, never both: a frame
    kept as an anchor is not attended a second time from the pointer history."""
    anchors = tracker.with_anchors(2)
    cache = anchors.encode_frames(torch.randn(4, 3, anchors.image_size, anchors.image_size))
    zeros, total = torch.zeros(1, dtype=torch.long), torch.tensor([4])
    prompt = torch.zeros(1, 1, anchors.image_size, anchors.image_size)
    prompt[..., 16:32, 16:32] = 1
    _, bank = anchors.start(cache.gather(zeros), prompt, zeros)
    bank = anchors.step(cache.gather(zeros + 1), bank, zeros + 1, total,
                        act=lambda p, candidate, b: torch.full_like(candidate.frame, b.anchor_action)).bank
    assert bank.anchors.frame.tolist() == [[0, 1]] and bank.pointer_frame[0, 0] == 1  # in both places
    _, distances, attended = anchors._pointer_items(bank, zeros + 2, total)
    assert distances[attended].tolist() == [2, 1]  # the prompt's and frame 1's, once each


def test_settings_the_memory_seam_does_not_follow_are_refused() -> None:
    spec = ModelSpec("nano", image_size=64, random_weights=True, overrides={"model.memory_temporal_stride_for_eval": 2})
    with pytest.raises(ModelError, match=r"\{'memory_temporal_stride_for_eval': 2\}.*would silently differ from SAM 2"):
        Tracker.from_spec(spec)


@torch.inference_mode()
def test_a_tracker_without_autocast_keeps_the_callers(tracker: Tracker) -> None:
    """Lightning's bf16-mixed wraps training in an autocast; the tracker must not switch it off."""
    seen = []
    layer = tracker.model.memory_attention.layers[0].linear1  # a matmul: bfloat16 under autocast
    hook = layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        cache = tracker.encode_frames(torch.randn(3, 3, tracker.image_size, tracker.image_size))
        zeros, total = torch.zeros(1, dtype=torch.long), torch.tensor([3])
        prompt = torch.zeros(1, 1, tracker.image_size, tracker.image_size)
        prompt[..., 16:32, 16:32] = 1
        _, bank = tracker.start(cache.gather(zeros), prompt, zeros)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tracker.step(cache.gather(zeros + 1), bank, zeros + 1, total)
    finally:
        hook.remove()
    assert not tracker.settings.autocast and seen == [torch.bfloat16]
