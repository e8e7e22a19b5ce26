"""Warm start by imitation: demonstrations are the teacher's own run, and cloning reproduces the teacher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2rl.agents import AgentController, make_actor_critic
from sam2rl.agents.imitation import DemonstrationRecorder, imitate, record_demonstrations
from sam2rl.controllers import Controller, OracleController, make_controller
from sam2rl.datasets import VideoDataset
from sam2rl.envs.observation import GLOBAL_FEATURES
from sam2rl.controllers import PathwaySearch, track_video
from sam2rl.schema.agent import EncoderSettings, ImitationSettings
from sam2rl.tracker import Memories, MemoryBank, ModelSpec, Prediction, Tracker, video_features
from sam2rl.tracker.bank import ActionLayout

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
TRACK = ("synth-medium-1000-000", 1)


class DiscardEverything(Controller):
    """A teacher that departs from FIFO on every frame and whose rule a policy can learn."""

    name = "discard-everything"

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        return torch.zeros(candidate.batch_size[0], dtype=torch.long, device=candidate.frame.device)


@pytest.fixture(scope="module")
def setting():
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64, random_weights=True))
    dataset = VideoDataset(SAMPLE)
    tracks = [t for t in dataset.tracks() if (t.sequence, t.object_id) == TRACK]
    features = {TRACK[0]: video_features(tracker, dataset[TRACK[0]])}
    return tracker, dataset, tracks, features


def small_actor(demos, tracker: Tracker) -> torch.nn.Module:
    """A small policy for the demonstrations' observation layout, starting at FIFO's rule."""
    torch.manual_seed(0)
    actor, _ = make_actor_critic(demos["tokens"].shape[-1], len(GLOBAL_FEATURES), 1, tracker.num_recent,
                                 EncoderSettings(width=32, layers=1, heads=2, fifo_prior=3.0))
    return actor


def test_demonstrations_are_the_teachers_own_run(setting) -> None:
    tracker, dataset, tracks, features = setting
    video = dataset[TRACK[0]]
    demos = record_demonstrations(tracker, dataset, tracks, features, OracleController())
    (alone,) = track_video(tracker, video, OracleController.for_video(tracker, video, tracks, features[TRACK[0]]),
                           tracks, features[TRACK[0]])
    assert demos.batch_size[0] == video.num_frames - 1  # one decision per frame after the prompt
    assert torch.equal(demos["action"], alone.actions)  # recording does not change what the teacher does
    assert demos["global"].shape[-1] == len(GLOBAL_FEATURES)
    assert bool(demos["action_mask"].gather(1, demos["action"][:, None]).all())


def test_cloning_reproduces_the_teacher(setting) -> None:
    tracker, dataset, tracks, features = setting
    video = dataset[TRACK[0]]
    demos = record_demonstrations(tracker, dataset, tracks, features, DiscardEverything())
    actor = small_actor(demos, tracker)
    report = imitate(actor, demos, ImitationSettings(steps=60, lr=3e-3, minibatch_size=8))
    assert report["teacher_departs_from_fifo"] == 1.0
    assert report["agreement_before"]["all"] == 0.0  # the prior starts at FIFO
    assert report["agreement_after"]["all"] == 1.0
    assert report["loss"][-1] < 0.1 * report["loss"][0]
    assert actor.training
    (cloned,) = track_video(tracker, video, AgentController(actor), tracks, features[TRACK[0]])
    assert bool((cloned.actions == 0).all())  # the clone drives the tracker as the teacher did
    assert actor.training  # scoring a policy hands it back in the mode it came in
    actor.eval()
    track_video(tracker, video, AgentController(actor), tracks, features[TRACK[0]])
    assert not actor.training

    actor = small_actor(demos, tracker)
    report = imitate(actor, demos, ImitationSettings(steps=200, lr=3e-3, minibatch_size=8, label_smoothing=0.3))
    assert report["agreement_after"]["all"] == 1.0  # still the teacher's action greedily...
    with torch.no_grad():
        teacher_p = actor.get_dist(demos).probs[:, 0]
    legal = demos["action_mask"].sum(-1).float()
    target = 0.7 + 0.3 / legal  # ...but other actions keep the probability smoothing gives them
    assert torch.allclose(teacher_p, target, atol=0.1), (teacher_p, target)


def test_dagger_labels_the_states_the_student_visits(setting) -> None:
    tracker, dataset, tracks, features = setting
    own = record_demonstrations(tracker, dataset, tracks, features, DiscardEverything())
    visited = record_demonstrations(tracker, dataset, tracks, features, DiscardEverything(), student=make_controller("fifo"))
    assert bool((own["action"] == 0).all()) and bool((visited["action"] == 0).all())  # the teacher's labels
    bank_fill = GLOBAL_FEATURES.index("bank_fill")
    assert own["global"][:, bank_fill].max() == 0  # discarding everything never fills the bank...
    assert visited["global"][-1, bank_fill] == 1  # ...FIFO, which drove the tracker, did


def test_teachers_that_cannot_be_imitated_are_refused(setting) -> None:
    tracker, dataset, tracks, features = setting
    with pytest.raises(ValueError, match="'sam2long:3' searches whole videos"):
        DemonstrationRecorder(PathwaySearch(3))
    with pytest.raises(ValueError, match=r"teacher 'discard-everything' took actions \[0.*env.allow_discard"):
        record_demonstrations(tracker, dataset, tracks, features, DiscardEverything(), ActionLayout(allow_discard=False))
