"""Image features on demand: the eager build's values, the memory budget, the disk tier, several videos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sam2rl.datasets import VideoDataset, VideoSequence
from sam2rl.envs import SAM2MemoryEnv
from sam2rl.rewards import CompositeReward
from sam2rl.schema.agent import EpisodeSettings
from sam2rl.tracker import (CheckpointError, FeatureBudget, FeatureCache, FeatureMemory, FeatureStore, ModelSpec,
                            Tracker, feature_folder, video_features)
from sam2rl.tracker.store import _Tier

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
FRAME_BYTES = 4 * (16 * 256 + 32 * 64 + 128 * 16)  # nano at 64 px, float32 (see test_tracker_core)


@pytest.fixture(scope="module")
def tracker(nano_random_checkpoint: Path) -> Tracker:
    return Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))


@pytest.fixture(scope="module")
def videos() -> list[VideoSequence]:
    return VideoDataset(SAMPLE).sequences  # two synthetic videos of 24 frames


@pytest.fixture(scope="module")
def eager(tracker: Tracker, videos: list[VideoSequence]) -> FeatureCache:
    video = videos[0]
    return FeatureCache.build(tracker.model, lambda t: video.frame(t, 64), video.num_frames, chunk=8)


def frames_mib(frames: float) -> float:
    return frames * FRAME_BYTES / 2**20


def assert_same(a, b) -> None:
    assert all(torch.equal(x, y) for x, y in zip(a.levels, b.levels)) and torch.equal(a.pos_top, b.pos_top)


@pytest.mark.parametrize("budget_frames", [1000, 3])  # everything fits / less than a chunk: encoded again and again
def test_values_are_the_eager_builds_bit_for_bit(tracker: Tracker, videos: list[VideoSequence], eager: FeatureCache,
                                                 budget_frames: int) -> None:
    memory = FeatureMemory(FeatureBudget(frames_mib(budget_frames), 0), tracker.device)
    store = video_features(tracker, videos[0], memory=memory)
    order = torch.randperm(store.num_frames, generator=torch.Generator().manual_seed(0))
    for index in (torch.arange(store.num_frames), order, torch.tensor([5, 5, 17, 0])):
        assert_same(store.gather(index), eager.gather(index))
    assert store.bytes_per_frame == eager.bytes_per_frame == FRAME_BYTES
    assert memory.used_bytes <= budget_frames * FRAME_BYTES


def test_a_frame_is_encoded_once_while_it_fits_and_again_after_eviction(tracker: Tracker,
                                                                        videos: list[VideoSequence]) -> None:
    store = video_features(tracker, videos[0], memory=FeatureMemory(FeatureBudget(frames_mib(8), frames_mib(8))))
    store.gather(torch.tensor([0, 9]))  # two chunks, 16 frames: the CPU's budget is device + host
    assert store.encoded_frames == 16
    store.gather(torch.arange(16))
    assert store.encoded_frames == 16  # held
    store.gather(torch.tensor([20]))  # chunk 16..23 pushes out the least recently used chunk, 0..7
    assert store.encoded_frames == 24 and store.memory.used_bytes == 16 * FRAME_BYTES
    store.gather(torch.tensor([8]))
    assert store.encoded_frames == 24
    store.gather(torch.tensor([3]))  # gone without a disk: encoded again
    assert store.encoded_frames == 32 and store.read_frames == 0


def test_host_frames_are_kept_out_of_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    copied = []
    monkeypatch.setattr("sam2rl.tracker.store.off_heap_copy", lambda x: copied.append(x.shape) or x.clone())
    memory = FeatureMemory(FeatureBudget(1, 1))
    levels = [torch.randn(32, 16, 16), torch.randn(64, 8, 8)]
    memory.put((0, 0), levels)
    assert copied == [x.shape for x in levels]  # each level of a host frame through off_heap_copy
    assert all(torch.equal(a, b) for a, b in zip(memory.get((0, 0)), levels))


def test_a_gather_keeps_its_frames_when_its_own_chunks_evict_them(tracker: Tracker, videos: list[VideoSequence],
                                                                  eager: FeatureCache) -> None:
    store = video_features(tracker, videos[0], memory=FeatureMemory(FeatureBudget(0, 0)))  # keeps nothing
    index = torch.tensor([23, 0, 8, 0])
    assert_same(store.gather(index), eager.gather(index))
    assert store.encoded_frames == 8 + 8 + 8 and store.memory.used_bytes == 0


def test_disk_tier_is_written_through_and_read_by_a_later_store(tracker: Tracker, videos: list[VideoSequence],
                                                                eager: FeatureCache, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    video = videos[0]
    small = FeatureBudget(frames_mib(8), 0)
    first = video_features(tracker, video, cache_dir=tmp_path, memory=FeatureMemory(small))
    first.gather(torch.arange(video.num_frames))
    folder = feature_folder(tracker, video, tmp_path)
    assert folder is not None and folder.parent == tmp_path and folder.name.startswith(f"{video.name}-")
    assert len(list(folder.glob("0*.pt"))) == video.num_frames and (folder / "pos.pt").is_file()
    assert not list(folder.glob(".*.tmp"))
    first.gather(torch.tensor([1]))  # evicted from memory: read back, not encoded
    assert first.encoded_frames == video.num_frames and first.read_frames == 1

    monkeypatch.setattr(FeatureCache, "build", lambda *a, **k: pytest.fail("frames encoded, not read from disk"))
    later = video_features(tracker, video, cache_dir=tmp_path, memory=FeatureMemory(small))
    order = torch.arange(video.num_frames).flip(0)
    assert_same(later.gather(order), eager.gather(order))
    assert later.encoded_frames == 0 and later.read_frames == video.num_frames
    monkeypatch.undo()

    bf16 = Tracker(tracker.model, replace(tracker.settings, autocast=True), tracker.spec, tracker.weights_digest)
    assert feature_folder(bf16, video, tmp_path) != folder  # features of a bfloat16 encoder: not the float32 files
    damaged = folder / "000003.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"feature cache {damaged}: cannot be read .*delete it to rebuild it"):
        video_features(tracker, video, cache_dir=tmp_path).gather(torch.tensor([3]))


def test_host_tier_takes_what_the_device_pushes_out() -> None:
    """The device and host tiers of a GPU tracker, both on the CPU here (the same code moves them)."""
    memory = FeatureMemory(FeatureBudget(0, 0))
    cpu = torch.device("cpu")
    memory.tiers = [_Tier(cpu, 2 * 4), _Tier(cpu, 2 * 4)]  # two frames of one float each
    frame = [torch.ones(1)]
    for t in range(5):
        memory.put((0, t), frame)
    assert list(memory.tiers[0].frames) == [(0, 3), (0, 4)] and list(memory.tiers[1].frames) == [(0, 1), (0, 2)]
    assert memory.get((0, 1)) is not None  # up to the device again, pushing its oldest down
    assert list(memory.tiers[0].frames) == [(0, 4), (0, 1)] and list(memory.tiers[1].frames) == [(0, 2), (0, 3)]
    assert memory.get((0, 0)) is None
    memory.forget(0)
    assert memory.used_bytes == 0


def test_stores_share_one_budget_and_forget_their_frames(tracker: Tracker, videos: list[VideoSequence]) -> None:
    memory = FeatureMemory(FeatureBudget(frames_mib(16), 0))
    a, b = (video_features(tracker, v, memory=memory) for v in videos)
    a.gather(torch.tensor([0]))
    b.gather(torch.tensor([0]))
    b.gather(torch.tensor([8]))  # the budget is both videos': a's chunk goes
    assert memory.used_bytes == 16 * FRAME_BYTES
    a.gather(torch.tensor([1]))
    assert a.encoded_frames == 16 and b.encoded_frames == 16
    del a  # its frames go with it
    assert memory.used_bytes == 8 * FRAME_BYTES


def test_environment_reads_each_videos_store_without_a_copy(tracker: Tracker, videos: list[VideoSequence]) -> None:
    memory = FeatureMemory(device=tracker.device)
    stores = [video_features(tracker, v, memory=memory) for v in videos]
    env = SAM2MemoryEnv(tracker, videos, 2, CompositeReward(["iou"]), EpisodeSettings(window=4), features=stores)
    assert env.features.videos == stores and env.features.offsets == [0, videos[0].num_frames]
    assert memory.used_bytes == 0  # nothing encoded, nothing copied, before a frame is read
    offset = env.features.offsets[1]
    index = torch.tensor([offset + 3, 2, offset + 3, 20, offset])
    joint = env.features.gather(index)
    per_video = [stores[1].gather(torch.tensor([3])), stores[0].gather(torch.tensor([2])),
                 stores[1].gather(torch.tensor([3])), stores[0].gather(torch.tensor([20])),
                 stores[1].gather(torch.tensor([0]))]
    for level, parts in zip(joint.levels, zip(*(p.levels for p in per_video))):
        assert torch.equal(level, torch.cat(parts))
    assert joint.pos_top.shape[1] == 5
    env.rollout(3, break_when_any_done=False)
    assert memory.used_bytes == sum(s.encoded_frames for s in stores) * FRAME_BYTES  # one copy of each frame


def test_a_store_is_on_its_memorys_device(tracker: Tracker, videos: list[VideoSequence]) -> None:
    with pytest.raises(ValueError, match="feature store on cpu: its memory is on meta"):
        video_features(tracker, videos[0], memory=FeatureMemory(device="meta"))
    with pytest.raises(ValueError, match="MiB must be >= 0"):
        FeatureBudget(-1, 0)
    assert isinstance(video_features(tracker, videos[0]), FeatureStore)
