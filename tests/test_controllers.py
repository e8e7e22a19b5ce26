"""Published memory rules (SAMURAI, DAM4SAM, SAM2Long), the random floor and the ground-truth oracle."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sam2rl.controllers import (
    CONTROLLERS, Controller, Dam4SamController, OracleController, RandomController, Sam2LongController, SamuraiController,
    ScheduleSearch, make_controller, track_video, track_video_sam2long,
)
from sam2rl.controllers.geometry import box_iou_inclusive, box_iou_samurai, largest_component, mask_to_box
from sam2rl.controllers.kalman import BoxKalmanFilter, xyxy_to_xyah
from sam2rl.controllers.pathways import _best_rows, select_pathways
from sam2rl.datasets import VideoDataset
from sam2rl.tracker import (
    Memories, MemoryBank, ModelSpec, Prediction, Tracker, TrackerSettings, ground_truth_masks, resize_prompt_mask, video_features,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread here: with the CPU shared (e.g. a training job on both cores), two
    OpenMP threads spin on each other and the tiny tracker runs ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SIZE = 32  # model input size of the hand-built predictions
FRAMES = 6  # of the DAVIS clip tracked for real
SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"


# -- hand-built tensorclasses ----------------------------------------------------------------------

def box_mask(*boxes: tuple[int, int, int, int]) -> torch.Tensor:
    """[SIZE, SIZE] bool with the given inclusive (x0, y0, x1, y1) boxes set."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


def prediction(masks: list[list[torch.Tensor]], ious: list[list[float]], object_score: list[float] | None = None) -> Prediction:
    """B tracks x M candidates of [SIZE, SIZE] bool masks -> a Prediction (logits +-10)."""
    high = torch.stack([torch.stack(row) for row in masks]).float() * 20 - 10
    batch, num = high.shape[:2]
    low = torch.nn.functional.interpolate(high, size=(SIZE // 4, SIZE // 4), mode="bilinear", align_corners=False)
    iou = torch.tensor(ious)
    score = torch.full((batch,), 5.0) if object_score is None else torch.tensor(object_score)
    return Prediction(low_res_masks=low, high_res_masks=high, ious=iou, obj_ptrs=torch.zeros(batch, num, 4),
                      object_score=score, sam_choice=iou.argmax(dim=1), batch_size=[batch])


def memory(frames: list[int], iou: list[float] | None = None, score: list[float] | None = None,
           area: list[float] | None = None) -> Memories:
    batch = len(frames)
    return Memories(features=torch.ones(batch, 2, 1, 1), obj_ptr=torch.zeros(batch, 4), frame=torch.tensor(frames),
                    object_score=torch.tensor(score or [5.0] * batch), iou=torch.tensor(iou or [0.9] * batch),
                    area=torch.tensor(area or [0.1] * batch), valid=torch.ones(batch, dtype=torch.bool),
                    batch_size=[batch])


def prompted_bank(batch: int = 1, recent: int = 3, anchors: int = 1, prompt_frame: int = 0) -> MemoryBank:
    bank = MemoryBank.empty(batch, num_recent=recent, max_anchors=anchors, num_pointers=4, feature_shape=(2, 1, 1),
                            ptr_dim=4, dtype=torch.float32, device="cpu")
    return bank.apply(memory([prompt_frame] * batch), torch.full((batch,), bank.anchor_action))


def chosen_memory(pred: Prediction, choice: torch.Tensor, frame: int) -> Memories:
    rows = torch.arange(choice.shape[0])
    area = (pred.high_res_masks[rows, choice] > 0).flatten(1).float().mean(1)
    return memory([frame] * choice.shape[0], pred.ious[rows, choice].tolist(), pred.object_score.tolist(), area.tolist())


def run_frame(controller, pred: Prediction, bank: MemoryBank, frame: int) -> tuple[torch.Tensor, torch.Tensor, MemoryBank]:
    """choose -> remember -> act -> apply, as `Tracker.step` does."""
    choice = controller.choose(pred, bank)
    candidate = chosen_memory(pred, choice, frame)
    action = controller.act(pred, candidate, bank)
    assert bool(bank.action_mask(allow_anchor=True).gather(1, action[:, None]).all()), f"illegal action {action}"
    return choice, action, bank.apply(candidate, action)


# -- geometry and the Kalman filter ----------------------------------------------------------------

def test_mask_to_box_and_box_ious() -> None:
    masks = torch.stack([box_mask((2, 3, 5, 9)), box_mask(), box_mask((0, 0, 0, 0), (31, 31, 31, 31))])
    assert mask_to_box(masks).tolist() == [[2, 3, 5, 9], [0, 0, 0, 0], [0, 0, 31, 31]]
    a, b = torch.tensor([0.0, 0, 10, 10]), torch.tensor([5.0, 0, 15, 10])
    assert box_iou_samurai(a, b).item() == pytest.approx(50 / 150)
    assert box_iou_samurai(a, torch.zeros(4)).item() == 0  # an empty mask's box scores 0
    assert box_iou_inclusive(a, b).item() == pytest.approx(66 / 176)


def test_largest_component_is_8_connected_and_first_on_ties() -> None:
    diagonal = box_mask((0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2))  # one 8-connected component of 3
    blobs = box_mask((20, 20, 21, 21), (5, 5, 5, 6))  # 4 pixels vs 2
    ties = box_mask((10, 2, 10, 3), (2, 10, 3, 10))  # two of 2: the first in raster order wins
    out = largest_component(torch.stack([diagonal, blobs, ties, box_mask()]))
    assert torch.equal(out[0], diagonal)
    assert torch.equal(out[1], box_mask((20, 20, 21, 21)))
    assert torch.equal(out[2], box_mask((10, 2, 10, 3)))
    assert not out[3].any()


def reference_kalman_step(mean, cov, measurement):
    """SAMURAI's kalman_filter.py predict + update in numpy (one track)."""
    motion = np.eye(8)
    motion[:4, 4:] = np.eye(4)
    update = np.eye(4, 8)
    h = mean[3]
    q = np.diag(np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]))
    mean, cov = motion @ mean, motion @ cov @ motion.T + q
    h = mean[3]
    proj_cov = update @ cov @ update.T + np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
    gain = np.linalg.solve(proj_cov, (cov @ update.T).T).T
    mean = mean + (measurement - update @ mean) @ gain.T
    return mean, cov - gain @ proj_cov @ gain.T


def test_batched_kalman_filter_matches_samurai_equations() -> None:
    kf = BoxKalmanFilter()
    boxes = torch.tensor([[10.0, 12, 20, 30], [3, 4, 9, 6]])
    mean, cov = kf.initiate(xyxy_to_xyah(boxes).double())
    ref = [(mean[i].numpy().copy(), cov[i].numpy().copy()) for i in range(2)]
    assert cov[0].diagonal()[0].item() == pytest.approx((2 / 20 * 18) ** 2)
    for step in range(1, 4):
        measurement = xyxy_to_xyah(boxes + step * torch.tensor([2.0, 1, 2, 1])).double()
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, measurement)
        ref = [reference_kalman_step(m, c, measurement[i].numpy()) for i, (m, c) in enumerate(ref)]
    for i in range(2):
        assert np.allclose(mean[i].numpy(), ref[i][0]) and np.allclose(cov[i].numpy(), ref[i][1])
    assert mean[0, 4].item() > 1.0  # it learned the x velocity


# -- SAMURAI -----------------------------------------------------------------------------------------

def test_samurai_memory_gate_discards_bad_frames_and_keeps_good_ones() -> None:
    blob = [box_mask((4, 4, 9, 9))] * 3
    controller = SamuraiController(keep_last_frame=False)
    controller.reset(3)
    bank = prompted_bank(3)
    pred = prediction([blob, blob, blob], [[0.9, 0.2, 0.1], [0.4, 0.3, 0.2], [0.9, 0.1, 0.1]], [5.0, 5.0, -1.0])
    _, action, _ = run_frame(controller, pred, bank, 1)
    assert action.tolist() == [1, 0, 0]  # kept; predicted IoU 0.4 <= 0.5; object score -1 <= 0


def test_samurai_keeps_the_previous_frame_like_the_original() -> None:
    """The original always attends to frame t-1: a failing frame sits in memory for one frame only."""
    blob = [box_mask((4, 4, 9, 9))] * 3
    controller = SamuraiController()
    controller.reset(1)
    bank = prompted_bank(1, recent=3)
    for frame, iou in enumerate([0.9, 0.9, 0.3, 0.3, 0.9, 0.9], start=1):
        _, action, bank = run_frame(controller, prediction([blob], [[iou, 0.1, 0.1]]), bank, frame)
        kept = sorted(f for f, v in zip(bank.recent.frame[0].tolist(), bank.recent.valid[0].tolist()) if v)
        if frame == 3:
            assert kept == [1, 2, 3]
        if frame == 4:  # frame 3 (failed) was replaced by frame 4, not added to the good ones
            assert action.item() == 3 and kept == [1, 2, 4]
        if frame == 5:
            assert kept == [1, 2, 5]
    assert kept == [2, 5, 6]  # frame 5 passed, so frame 6 evicts the oldest (FIFO)


def moving_box(frame: int) -> tuple[int, int, int, int]:
    """Target box moving right one pixel per frame at constant velocity."""
    return (2 + frame, 10, 7 + frame, 15)


def test_samurai_motion_choice_only_after_the_warm_up() -> None:
    threshold = 15

    def frame_prediction(frame: int, distractor: bool) -> Prediction:
        target = box_mask(moving_box(frame))
        far = box_mask((2, 24, 7, 29))
        if distractor:  # SAM 2's favourite (IoU 0.85) is far away; the motion-consistent one is second
            return prediction([[far, target, box_mask((0, 0, 3, 3))]], [[0.85, 0.8, 0.1]])
        return prediction([[target, far, box_mask((0, 0, 3, 3))]], [[0.9, 0.5, 0.1]])

    def run(distractor_frame: int) -> tuple[int, SamuraiController]:
        controller = SamuraiController(stable_frames_threshold=threshold)
        controller.reset(1)
        bank = prompted_bank(1, recent=6)
        for frame in range(1, distractor_frame + 1):
            choice, _, bank = run_frame(controller, frame_prediction(frame, frame == distractor_frame), bank, frame)
        return int(choice), controller

    early, controller = run(5)
    assert early == 0 and controller.stable_frames.item() == 5 and controller.kf_score.isnan().all()
    late, controller = run(threshold + 1)  # frames 1..15 make it stable; frame 16 uses motion
    assert late == 1
    assert controller.kf_score.item() > 0.5  # the chosen box overlaps the KF prediction
    assert controller.stable_frames.item() == threshold


# -- DAM4SAM -----------------------------------------------------------------------------------------

TARGET = (4, 4, 9, 9)


def dam_prediction(alternative: torch.Tensor | None = None, iou: float = 0.9, target=TARGET) -> Prediction:
    chosen = box_mask(target)
    other = chosen.clone() if alternative is None else alternative
    return prediction([[chosen, other, box_mask(target)]], [[iou, 0.5, 0.4]])


def dam_run(controller: Dam4SamController, bank: MemoryBank, frames: range, **kwargs) -> tuple[list[int], MemoryBank]:
    actions = []
    for frame in frames:
        _, action, bank = run_frame(controller, dam_prediction(**kwargs), bank, frame)
        actions.append(int(action))
    return actions, bank


def test_dam4sam_adds_an_anchor_when_a_distractor_appears() -> None:
    controller = Dam4SamController()
    controller.reset(1)
    bank = prompted_bank(1, recent=6, anchors=controller.max_anchors)
    _, bank = dam_run(controller, bank, range(1, 4))  # plain frames build the area history
    distractor = box_mask(TARGET, (22, 22, 27, 27))  # an alternative: the target plus a far blob
    actions, bank = dam_run(controller, bank, range(4, 5), alternative=distractor)
    assert actions == [bank.anchor_action]
    assert bank.anchors.frame[0, :2].tolist() == [0, 4]


@pytest.mark.parametrize("case", ["overlapping", "low_iou", "too_soon", "anchors_full", "first_frame"])
def test_dam4sam_does_not_add_an_anchor(case: str) -> None:
    controller = Dam4SamController()
    controller.reset(1)
    bank = prompted_bank(1, recent=6, anchors=1 if case == "anchors_full" else 4)
    distractor = box_mask(TARGET, (22, 22, 27, 27))
    if case == "first_frame":  # no area history yet
        actions, _ = dam_run(controller, bank, range(1, 2), alternative=distractor)
        assert actions[0] != bank.anchor_action
        return
    _, bank = dam_run(controller, bank, range(1, 4))
    if case == "too_soon":
        actions, bank = dam_run(controller, bank, range(4, 5), alternative=distractor)
        assert actions == [bank.anchor_action]
        actions, bank = dam_run(controller, bank, range(5, 10), alternative=distractor)  # within 5 frames
        assert bank.anchor_action not in actions
        actions, bank = dam_run(controller, bank, range(10, 11), alternative=distractor)
        assert actions == [bank.anchor_action]  # 6 frames later it may add again
        return
    kwargs = {"alternative": distractor}
    if case == "overlapping":  # the alternative only grows the target a little: box IoU > 0.7
        kwargs = {"alternative": box_mask((4, 4, 10, 9))}
    if case == "low_iou":
        kwargs["iou"] = 0.8
    actions, _ = dam_run(controller, bank, range(4, 5), **kwargs)
    assert actions[0] != bank.anchor_action and actions[0] != 0


def test_dam4sam_recent_memory_keeps_every_fifth_frame_and_the_last() -> None:
    controller = Dam4SamController()
    controller.reset(1)
    bank = prompted_bank(1, recent=6, anchors=4, prompt_frame=10)
    _, bank = dam_run(controller, bank, range(11, 27))
    kept = sorted(f for f, v in zip(bank.recent.frame[0].tolist(), bank.recent.valid[0].tolist()) if v)
    assert kept == [20, 25, 26]  # RAM of 3: frames 5k after the prompt, and the newest
    empty = prediction([[box_mask(), box_mask(), box_mask()]], [[0.9, 0.5, 0.1]])
    _, action, _ = run_frame(controller, empty, bank, 27)
    assert action.item() == 0  # no update while the target is not visible


# -- SAM2Long ----------------------------------------------------------------------------------------

def test_sam2long_discards_frames_below_the_iou_threshold() -> None:
    blob = [box_mask((4, 4, 9, 9))] * 3
    plain = Sam2LongController(keep_last_frame=False)
    bank = prompted_bank(3)
    pred = prediction([blob] * 3, [[0.05, 0.01, 0.0], [0.2, 0.1, 0.0], [0.9, 0.1, 0.0]], [5.0, 5.0, -3.0])
    _, action, _ = run_frame(plain, pred, bank, 1)
    assert action.tolist() == [0, 1, 0]
    original = Sam2LongController()  # the failing frame stays as "the previous frame" only
    _, action, bank = run_frame(original, pred, bank, 1)
    assert action.tolist() == [1, 1, 1]
    pred = prediction([blob] * 3, [[0.9, 0.1, 0.0]] * 3)
    _, action, _ = run_frame(original, pred, bank, 2)
    assert action.tolist() == [1, 2, 1]  # tracks 0 and 2 overwrite their failed frame


def test_sam2long_branch_selection() -> None:
    scores = [[-0.1, -0.5, -2.0], [-0.2, -0.3, -3.0]]
    ious = [[0.9, 0.6, 0.13], [0.9, 0.7, 0.05]]
    confident = select_pathways(scores, ious, [5.0, -4.0], 3, uncertainty=2.0)
    assert [(p, j) for p, j, _ in confident] == [(0, 0), (1, 0), (1, 1)]
    uncertain = select_pathways(scores, ious, [1.0, 1.5], 3, uncertainty=2.0)  # distinct rounded IoUs
    assert [(p, j) for p, j, _ in uncertain] == [(0, 0), (1, 1), (0, 1)]
    same = select_pathways([[0.0, -1.0, -2.0]] * 3, [[0.9, 0.9, 0.9]] * 3, [1.0] * 3, 3, uncertainty=2.0)
    assert [(p, j) for p, j, _ in same] == [(0, 0), (1, 0), (2, 0)]  # then one branch per other pathway


# -- random --------------------------------------------------------------------------------------------

def test_random_respects_the_action_mask_and_its_seed() -> None:
    bank = prompted_bank(64, recent=3, anchors=2)
    candidate = memory([1] * 64)
    first = RandomController(seed=3).act(None, candidate, bank)
    assert torch.equal(first, RandomController(seed=3).act(None, candidate, bank))
    assert not torch.equal(first, RandomController(seed=4).act(None, candidate, bank))
    assert set(first.tolist()) == {0, 1, 2, 3}  # anchors not allowed by default
    no_discard = RandomController(seed=0, allow_discard=False, allow_anchor=True).act(None, candidate, bank)
    assert set(no_discard.tolist()) == {1, 2, 3, 4}
    full = bank.apply(candidate, torch.full((64,), bank.anchor_action))  # both anchor slots taken now
    assert bank.anchor_action not in RandomController(seed=0, allow_anchor=True).act(None, candidate, full).tolist()


# -- names -------------------------------------------------------------------------------------------

def test_controllers_by_name() -> None:
    for name, cls in [("samurai", SamuraiController), ("dam4sam", Dam4SamController), ("sam2long", Sam2LongController),
                      ("random", RandomController), ("oracle", OracleController)]:
        assert isinstance(make_controller(name), cls) and CONTROLLERS[name] is cls
    assert make_controller("samurai", kf_score_weight=0.25).kf_score_weight == 0.25
    assert Dam4SamController.max_anchors == 4
    with pytest.raises(ValueError, match="oracle: margin must be >= 0"):
        make_controller("oracle", margin=-0.1)
    with pytest.raises(ValueError, match=r"controller 'oracle': unknown options \['marginn'\]; it accepts \['tracker', 'features', 'gt_masks', 'lookahead'"):
        make_controller("oracle", marginn=0.1)
    assert make_controller("sam2long:2", iou_threshold=0.3).iou_threshold == 0.3  # options reach the search
    with pytest.raises(ValueError, match=r"controller 'sam2long:2': unknown options \['bogus'\]; it accepts \['iou_threshold', 'uncertainty'\]"):
        make_controller("sam2long:2", bogus=1)
    with pytest.raises(RuntimeError, match="oracle: no ground truth.*bind_video"):
        make_controller("oracle").reset(1)
    with pytest.raises(ValueError, match="unknown controller 'x'") as error:
        make_controller("x")
    assert f"available: {', '.join(sorted(CONTROLLERS))} " in str(error.value)
    assert {"dam4sam", "fifo", "oracle", "random", "sam2long", "samurai"} <= set(CONTROLLERS)
    # the headline's heuristics: the published rules, not SAM 2's own, the random floor or ground-truth references
    assert {name for name, cls in CONTROLLERS.items() if cls.heuristic} == {"dam4sam", "sam2long", "samurai"}


# -- on a real (tiny, random) tracker ----------------------------------------------------------------

@pytest.fixture(scope="module")
def nano(nano_random_checkpoint: Path) -> Tracker:
    return Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64))


def mean_iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    inter, union = (predicted & truth).flatten(1).sum(1), (predicted | truth).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union, dtype=torch.float))


@torch.inference_mode()
def test_oracle_never_scores_below_fifo_and_acts_legally(nano: Tracker) -> None:
    torch.manual_seed(0)
    cache = nano.encode_frames(torch.randn(8, 3, 64, 64))
    truth = torch.zeros(2, 8, 64, 64, dtype=torch.bool)
    truth[0, :, 16:40, 16:40] = True
    truth[1, :, 30:60, 4:30] = True
    oracle = OracleController(nano, cache, truth, lookahead=3)
    with pytest.raises(ValueError, match="oracle: ground truth for 2 tracks, but a batch of 3 started"):
        oracle.reset(3)
    oracle.reset(2)
    zeros = torch.zeros(2, dtype=torch.long)
    total = torch.full((2,), 8)
    _, bank = nano.start(cache.gather(zeros), truth[:, 0, None].float(), zeros)
    rows = torch.arange(2)
    for t in range(1, 5):  # frames 5..7 are the last decision's look-ahead
        fifo_action = bank.fifo_action()
        step = nano.step(cache.gather(zeros + t), bank, zeros + t, total, act=oracle.act)
        legal = bank.action_mask(allow_anchor=True)
        assert bool(legal.gather(1, step.action[:, None]).all())
        scores = oracle.last_scores
        assert scores.isfinite().sum(dim=1).tolist() == [7, 7]  # discard and 6 slots; the prompt fills the anchor
        assert bool((scores[rows, step.action] >= scores[rows, fifo_action]).all())
        assert bool((scores[rows, step.action] >= scores.max(dim=1).values - 1e-9).all())
        if t == 1:  # with a margin no win clears (scores are mean IoUs), the oracle is FIFO
            strict = OracleController(nano, cache, truth, lookahead=3, margin=1.0)
            strict.reset(2)
            assert torch.equal(strict.act(step.prediction, step.candidate, bank), fifo_action)
        if t == 1:  # the objective: FIFO's score is SAM 2 itself tracked 3 frames on
            ious = []
            follow = bank.apply(step.candidate, fifo_action).push_pointer(step.candidate.obj_ptr, step.candidate.frame)
            for k in (2, 3, 4):
                ahead = nano.step(cache.gather(zeros + k), follow, zeros + k, total)
                follow = ahead.bank
                ious.append(mean_iou(ahead.prediction.high_res_masks[rows, ahead.choice] > 0, truth[:, k]))
            assert torch.allclose(torch.stack(ious).mean(0).double(), scores[rows, fifo_action], atol=1e-6)
        bank = step.bank


class NewestOnly(Controller):
    """A stateless policy that keeps only the newest frame in recent memory (a continuation to improve on)."""

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        return torch.ones(candidate.batch_size[0], dtype=torch.long, device=candidate.frame.device)


@torch.inference_mode()
def test_oracle_with_a_continuation_is_one_step_of_policy_iteration(nano: Tracker) -> None:
    torch.manual_seed(1)
    frames = 8
    cache = nano.encode_frames(torch.randn(frames, 3, 64, 64))
    truth = torch.zeros(2, frames, 64, 64, dtype=torch.bool)
    truth[0, :, 8:40, 20:50] = True
    truth[1, :, 30:60, 4:30] = True
    zeros, total, rows = torch.zeros(2, dtype=torch.long), torch.full((2,), frames), torch.arange(2)

    def run(controller: Controller) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame IoU of frames 1.. and, for an oracle, its scores at the first decision."""
        controller.reset(2)
        controller.begin_episode(zeros, total)
        _, bank = nano.start(cache.gather(zeros), truth[:, 0, None].float(), zeros)
        ious, first = [], None
        for t in range(1, frames):
            step = nano.step(cache.gather(zeros + t), bank, zeros + t, total, controller.choose, controller.act)
            ious.append(mean_iou(step.prediction.high_res_masks[rows, step.choice] > 0, truth[:, t]).double())
            first = getattr(controller, "last_scores", None) if t == 1 else first
            bank = step.bank
        return torch.stack(ious), first

    base, _ = run(NewestOnly())
    improved, scores = run(OracleController(nano, cache, truth, lookahead=None, continuation=NewestOnly()))
    # the continuation's own action is scored by its own run to the end of the video...
    assert torch.allclose(scores[:, 1], base[1:].mean(0), atol=1e-6)
    # ...so taking the best action at every frame never ends up below it (policy improvement)
    assert bool((improved[1:].sum(0) >= base[1:].sum(0) - 1e-6).all()), (improved.sum(0), base.sum(0))
    assert bool((improved[1:].sum(0) > base[1:].sum(0) + 1e-4).any())  # and here it does better (random weights:
    # memory matters little)
    fifo_to_the_end, _ = run(OracleController(nano, cache, truth, lookahead=None))
    follow_fifo, _ = run(OracleController(nano, cache, truth, lookahead=None, continuation=make_controller("fifo")))
    assert torch.equal(fifo_to_the_end, follow_fifo)  # SAM 2's own rule is the default continuation


@pytest.fixture(scope="module")
def clip(blackswan_clip: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("clip6")
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        (out / kind / "blackswan").mkdir(parents=True)
        for t in range(FRAMES):
            shutil.copy(blackswan_clip / kind / "blackswan" / f"{t:05d}.{ext}", out / kind / "blackswan")
    return VideoDataset(out)["blackswan"]


@pytest.fixture(scope="module")
def clip_features(nano: Tracker, clip):
    return video_features(nano, clip)


@pytest.mark.parametrize("name", ["samurai", "dam4sam", "sam2long", "random", "oracle"])
def test_controllers_track_a_video(name: str, nano: Tracker, nano_random_checkpoint: Path, clip, clip_features) -> None:
    tracker = nano
    if name == "dam4sam":
        settings = TrackerSettings(max_anchors=Dam4SamController.max_anchors)
        tracker = Tracker.from_spec(ModelSpec("nano", checkpoint=str(nano_random_checkpoint), image_size=64),
                                    settings=settings)
    features = clip_features  # the same model weights, whatever the bank settings
    controller = (OracleController.for_video(tracker, clip, features=features) if name == "oracle"
                  else make_controller(name))
    runs = track_video(tracker, clip, controller, features=features)
    assert len(runs) == len(clip.tracks())
    for run in runs:
        assert run.masks.shape == (FRAMES, clip.height, clip.width) and run.actions.shape == (FRAMES - 1,)
        assert bool(((run.actions >= 0) & (run.actions <= tracker.num_recent + 1)).all())
        assert run.bank_frames.shape == (FRAMES, tracker.settings.max_anchors + tracker.num_recent)


def test_sam2long_pathways_track_a_video(nano: Tracker, clip, clip_features) -> None:
    features = clip_features
    runs = track_video_sam2long(nano, clip, num_pathways=3, features=features)
    single = track_video_sam2long(nano, clip, num_pathways=1, features=features)
    reference = track_video(nano, clip, make_controller("sam2long"), features=features)
    assert len(runs) == len(clip.tracks())
    for run, one, ref in zip(runs, single, reference):
        assert run.masks.shape == (FRAMES, clip.height, clip.width) and run.actions.shape == (FRAMES - 1,)
        assert run.bank_frames.shape == ref.bank_frames.shape and run.predicted_iou.shape == (FRAMES,)
        # one pathway is the P = 1 controller through track_video
        assert torch.equal(one.masks, ref.masks) and torch.equal(one.actions, ref.actions)
        assert torch.equal(one.bank_frames, ref.bank_frames)


def test_sam2long_traces_the_best_pathway_back_through_its_parents() -> None:
    history = [{}] * 4  # four tracked frames; only their number matters here
    parents = [torch.tensor([[0, 0, 0]] * 2), torch.tensor([[0, 2, 1]] * 2), torch.tensor([[2, 0, 1]] * 2)]
    # track 0 ends in slot 0 <- slot 2 <- slot 1 <- the single first pathway (row 0)
    assert _best_rows(0, len(history), parents, 3) == [0, 1, 2, 0]
    assert _best_rows(1, len(history), parents, 3) == [1, 4, 5, 3]  # track 1's slots are rows 3..5


@torch.inference_mode()
def test_sam2long_search_departs_from_one_pathway_on_trained_weights() -> None:
    """With random weights the three pathways never change the result; with our trained tracker
    they do on this sample video, so the search's bookkeeping is exercised."""
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=128))  # sam2rl/weights/nano.pt
    video = VideoDataset(SAMPLE)["synth-medium-1000-001"]
    features = video_features(tracker, video)
    three = track_video_sam2long(tracker, video, num_pathways=3, features=features)
    one = track_video_sam2long(tracker, video, num_pathways=1, features=features)
    assert any(not torch.equal(a.masks, b.masks) for a, b in zip(three, one))


@torch.inference_mode()
def test_schedule_search_beats_its_starting_points_and_plays_its_schedule_back(nano: Tracker, clip, clip_features) -> None:
    tracks = clip.tracks()
    truth, annotated = ground_truth_masks(clip, tracks, nano.image_size)
    prompts = resize_prompt_mask(clip.prompt_masks(tracks), nano.image_size)
    batch = len(tracks)
    zeros, total, rows = torch.zeros(batch, dtype=torch.long), torch.full((batch,), FRAMES), torch.arange(batch)

    def tracked(controller: Controller) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean IoU over the frames after the prompt at model resolution [B], actions [B, FRAMES - 1])."""
        controller.reset(batch)
        controller.begin_episode(zeros, total)
        _, bank = nano.start(clip_features.gather(zeros), prompts, zeros)
        ious, actions = [], []
        for t in range(1, FRAMES):
            step = nano.step(clip_features.gather(zeros + t), bank, zeros + t, total, controller.choose, controller.act)
            ious.append(mean_iou(step.prediction.high_res_masks[rows, step.choice] > 0, truth[:, t]).double())
            actions.append(step.action)
            bank = step.bank
        return torch.stack(ious).mean(0), torch.stack(actions, dim=1)

    search = ScheduleSearch(population=6, generations=3).bind_video(nano, clip, features=clip_features)
    (best,) = search.best_scores
    fifo, _ = tracked(make_controller("fifo"))
    oracle, _ = tracked(OracleController.for_video(nano, clip, features=clip_features, allow_anchor=False))
    assert bool((best >= torch.maximum(fifo, oracle) - 1e-6).all())  # both start the pool; the best is kept
    replayed, actions = tracked(search)
    assert torch.allclose(replayed, best, atol=1e-4)  # playing the schedule back tracks as the search did
    (run,) = track_video(nano, clip, search, features=clip_features)
    assert torch.equal(run.actions, actions[0])
    assert bool(((actions >= 0) & (actions <= nano.num_recent)).all())  # discard or write a slot, never an anchor
    longer = ScheduleSearch(population=6, generations=6).bind_video(nano, clip, features=clip_features)
    assert bool((longer.best_scores[0] >= best).all())  # the same first generations, then more: elitism
    (curve,) = longer.progress
    assert curve.shape == (7, batch) and torch.equal(curve[:4], search.progress[0])
    assert bool((curve.diff(dim=0) >= 0).all()) and torch.equal(curve[-1], longer.best_scores[0])
    with pytest.raises(ValueError, match="search: population, generations"):
        ScheduleSearch(generations=0)
