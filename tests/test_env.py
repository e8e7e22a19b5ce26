"""SAM2MemoryEnv: specs, rollouts on real and synthetic footage, FIFO equivalence, seeding, resets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from sam2rl.agents.controller import ObservingController
from sam2rl.datasets import Track, VideoDataset
from sam2rl.envs import SAM2MemoryEnv
from sam2rl.rewards import CompositeReward
from sam2rl.schema.agent import EpisodeSettings
from sam2rl.tracker import ModelSpec, Tracker, TrackerSettings

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"


@pytest.fixture(scope="module")
def tracker(nano_random_checkpoint: Path) -> Tracker:
    return Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))


@pytest.fixture(scope="module")
def davis(blackswan_clip: Path) -> VideoDataset:
    return VideoDataset(blackswan_clip)


def make_env(tracker: Tracker, videos, batch: int = 4, seed: int = 0, track_reference: bool = False,
             **episode) -> SAM2MemoryEnv:
    return SAM2MemoryEnv(tracker, videos, batch, CompositeReward(["iou"]), EpisodeSettings(**episode), seed=seed,
                         track_reference=track_reference)


@pytest.mark.parametrize("episode", [{"window": 6}, {"window": None}, {"window": 5, "allow_discard": False}])
def test_specs(tracker: Tracker, davis: VideoDataset, episode: dict) -> None:
    check_env_specs(make_env(tracker, davis.sequences, **episode))


def test_specs_with_anchors(nano_random_checkpoint: Path, davis: VideoDataset) -> None:
    tracker = Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64),
                                settings=TrackerSettings(max_anchors=3))
    env = make_env(tracker, davis.sequences, window=6, allow_anchor=True)
    check_env_specs(env)
    assert env.observation_spec["tokens"].shape == (4, 3 + 6 + 1, 32 + 10)
    assert env.action_spec.n == 8


def test_random_rollout_on_real_footage(tracker: Tracker, davis: VideoDataset) -> None:
    env = make_env(tracker, davis.sequences, window=8)
    rollout = env.rollout(20, break_when_any_done=False)
    assert rollout.batch_size == (4, 20)
    assert rollout["next", "done"].any()  # windows of 8 frames end and restart within 20 steps
    assert rollout["action_mask"].gather(-1, rollout["action"][..., None]).all()
    assert torch.isfinite(rollout["next", "reward"]).all()
    assert ((rollout["next", "info", "iou"] >= 0) & (rollout["next", "info", "iou"] <= 1)).all()


def test_random_rollout_on_synthetic_multi_object_videos(tracker: Tracker) -> None:
    data = VideoDataset(SAMPLE)
    env = make_env(tracker, data.sequences, window=None)
    assert len(env.tracks) > len(data)  # target and distractors: one track per object
    rollout = env.rollout(30, break_when_any_done=False)
    assert rollout.batch_size == (4, 30) and rollout["next", "terminated"].any()


@torch.inference_mode()
def test_fifo_policy_reproduces_tracker_fifo(tracker: Tracker, davis: VideoDataset) -> None:
    env = make_env(tracker, davis.sequences, batch=2, window=None)
    env.reset()
    video = davis.sequences[0]
    features = env.features
    frame = torch.zeros(1, dtype=torch.long)
    total = torch.full((1,), video.num_frames)
    _, bank = tracker.start(features.gather(frame), env.tracks[0].gt[:1, None].float(), frame)
    step = tracker.step(features.gather(frame + 1), bank, frame + 1, total)
    for t in range(2, video.num_frames):
        assert torch.allclose(env._prediction.low_res_masks[0], step.prediction.low_res_masks[0], atol=1e-5), f"frame {t - 1}"
        env.step(TensorDict({"action": env.fifo_action()}, batch_size=[2]))
        bank = step.bank
        step = tracker.step(features.gather(frame + t), bank, frame + t, total)
    assert int(env._frame[0]) == video.num_frames - 1


def test_same_seed_same_rollout(tracker: Tracker, davis: VideoDataset) -> None:
    def run(seed: int) -> TensorDict:
        env = make_env(tracker, davis.sequences, window=6, seed=seed)
        env.set_seed(seed)
        torch.manual_seed(seed)
        return env.rollout(8, break_when_any_done=False)

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a["action"], b["action"]) and torch.equal(a["next", "reward"], b["next", "reward"])
    assert not torch.equal(a["action"], c["action"])


def test_partial_reset_restarts_only_marked_episodes(tracker: Tracker, davis: VideoDataset) -> None:
    env = make_env(tracker, davis.sequences, window=10)
    env.reset()
    for _ in range(3):
        env.step(TensorDict({"action": env.fifo_action()}, batch_size=[4]))
    frames_before = env._frame.clone()
    start = env._start.clone()
    env.reset(TensorDict({"_reset": torch.tensor([[True], [False], [False], [True]])}, batch_size=[4]))
    assert torch.equal(env._frame[1:3], frames_before[1:3])
    assert torch.equal(env._frame[[0, 3]], env._start[[0, 3]] + 1) and torch.equal(env._start[1:3], start[1:3])


def test_illegal_action_is_named(tracker: Tracker, davis: VideoDataset) -> None:
    env = make_env(tracker, davis.sequences, window=6, allow_discard=False)
    env.reset()
    with pytest.raises(ValueError, match=r"illegal actions \[0, 0, 0, 0\]"):
        env.step(TensorDict({"action": torch.zeros(4, dtype=torch.long)}, batch_size=[4]))


def test_refuses_tracks_without_a_decision(tracker: Tracker) -> None:
    data = VideoDataset(SAMPLE)
    video = data.sequences[0]
    late = Track(video.name, 1, video.num_frames - 2)  # prompt, then one frame: nothing to decide before it
    with pytest.raises(ValueError, match=rf"{video.name}:1 \(prompt frame {video.num_frames - 2} of {video.num_frames}\)"
                                         r": an episode needs at least 3 frames"):
        SAM2MemoryEnv(tracker, data.sequences, 2, CompositeReward(["iou"]), tracks=[late])
    with pytest.raises(ValueError, match="tracks of elsewhere: not among the videos given"):
        SAM2MemoryEnv(tracker, data.sequences, 2, CompositeReward(["iou"]), tracks=[Track("elsewhere", 1, 0)])


def test_windowed_episodes_observe_what_an_agent_sees_on_the_whole_video(tracker: Tracker, davis: VideoDataset) -> None:
    """Ages and progress are relative to the track, not to the window: a policy trained on windows
    is fed the same features when it drives a whole video (`ObservingController`)."""
    env = make_env(tracker, davis.sequences, window=6, seed=3)
    td = env.reset()
    for _ in range(3):
        td = env.step(td.set("action", env.fifo_action()))["next"]
    assert (env._start > 0).any()  # some windows start after the prompt frame
    seen = ObservingController()
    track = davis.sequences[0].tracks()[0]
    seen.begin_episode(torch.full((4,), track.prompt_frame), torch.full((4,), davis.sequences[0].num_frames))
    expected = seen.observation(env._prediction, env._candidate, env._bank)
    torch.testing.assert_close(td["tokens"], expected["tokens"])
    torch.testing.assert_close(td["global"], expected["global"])


def test_each_reward_term_is_reported_unweighted(tracker: Tracker, davis: VideoDataset) -> None:
    reward = CompositeReward([{"name": "iou", "weight": 2.0}, {"name": "presence", "weight": 0.5}])
    env = SAM2MemoryEnv(tracker, davis.sequences, 2, reward, EpisodeSettings(window=6))
    rollout = env.rollout(3)
    terms = rollout["next", "info", "reward_terms"]
    assert set(terms.keys()) == {"iou", "presence"}
    torch.testing.assert_close(rollout["next", "reward"], 2.0 * terms["iou"] + 0.5 * terms["presence"])
    torch.testing.assert_close(terms["iou"], rollout["next", "info", "iou"])


def test_fifo_episodes_score_their_own_reference_run(tracker: Tracker, davis: VideoDataset) -> None:
    """Under FIFO actions each episode is the reference run from its own start, so the reference
    IoU looked up per step equals the episode's IoU, also across resets of windowed episodes."""
    env = make_env(tracker, davis.sequences, window=6, seed=2, track_reference=True)
    td = env.reset()
    for _ in range(12):  # two windows of 4 steps each and more: resets in between
        td = env.step(td.set("action", env.fifo_action()))
        info = td["next", "info"]
        torch.testing.assert_close(info["fifo_iou"], info["iou"])
        td = env.step_mdp(td)
        if bool(td["done"].any()):
            td = env.reset(td.set("_reset", td["done"].clone()))
    assert len(env._references) > 1  # several (track, start) runs were cached


@pytest.mark.parametrize("window", [6, None])
def test_episodes_end_on_the_last_frame_of_their_window_or_video(tracker: Tracker, davis: VideoDataset,
                                                                 window: int | None) -> None:
    """`done` exactly on the episode's last frame; `terminated` only at the end of the video (GAE
    bootstraps from `truncated` windows), after `end - start - 2` decisions."""
    env = make_env(tracker, davis.sequences, window=window, seed=1)
    last = davis.sequences[0].num_frames - 1
    td = env.reset()
    steps = torch.zeros(4, dtype=torch.long)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(30):
        start, end = env._start.clone(), env._end.clone()
        td = env.step(td.set("action", env.fifo_action()))
        steps += 1
        frame, nxt = td["next", "info", "frame"][:, 0], td["next"]
        done = nxt["done"][:, 0]
        assert torch.equal(done, frame == end - 1)
        assert torch.equal(nxt["terminated"][:, 0], done & (frame == last))
        assert torch.equal(nxt["truncated"][:, 0], done & (frame != last))
        assert torch.equal(steps[done], (end - start - 2)[done])
        ends["terminated"] += int(nxt["terminated"].sum())
        ends["truncated"] += int(nxt["truncated"].sum())
        steps[done] = 0
        td = env.step_mdp(td)
        if bool(done.any()):
            td = env.reset(td.set("_reset", td["done"].clone()))
    assert ends["truncated" if window else "terminated"] > 0 and (window or ends["truncated"] == 0)


def test_an_object_seen_only_at_the_end_has_no_episode(tracker: Tracker, late_object_sample: Path) -> None:
    data = VideoDataset(late_object_sample)
    late = next(t for t in data.tracks() if t.object_id == 7)
    assert late.prompt_frame == 22
    env = SAM2MemoryEnv(tracker, data.sequences, 2, CompositeReward(["iou"]))  # every track: the late one left out
    assert late not in [item.track for item in env.tracks] and len(env.tracks) == len(data.tracks()) - 1
    with pytest.raises(ValueError, match="synth-medium-1000-000:7 \\(prompt frame 22 of 24\\)"):
        SAM2MemoryEnv(tracker, data.sequences, 2, CompositeReward(["iou"]), tracks=[late])  # asked for by name
