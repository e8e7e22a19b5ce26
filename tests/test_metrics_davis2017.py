"""The DAVIS 2017 toolkit's per-object statistics (mean, recall, decay; first and last frame dropped)
against a numpy transcription of the toolkit (tests/davis_toolkit.py) and hand-computed cases."""

from __future__ import annotations

import math
import warnings

import davis_toolkit as toolkit
import numpy as np
import pytest
import torch

from sam2rl.metrics import Davis2017Scores, boundary_f, davis2017_scores, db_statistics, iou

FIGURES = ("j_mean", "j_recall", "j_decay", "f_mean", "f_recall", "f_decay")


def _blobs(rng: np.random.Generator, frames: int, h: int, w: int, absent: set[int] = frozenset()) -> np.ndarray:
    """A moving, changing union of two random ellipses per frame; empty on the frames in `absent`."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((frames, h, w), dtype=bool)
    centre = rng.uniform([0.3 * h, 0.3 * w], [0.7 * h, 0.7 * w], size=(2, 2))
    for t in range(frames):
        centre += rng.normal(0, 0.04 * min(h, w), size=centre.shape)
        for (cy, cx), (ry, rx) in zip(centre, rng.uniform(0.08, 0.25, size=(2, 2)) * (h, w)):
            out[t] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        if t in absent:
            out[t] = False
    return out


def _ours(pred: np.ndarray, gt: np.ndarray, annotated: np.ndarray | None = None) -> Davis2017Scores:
    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    return davis2017_scores(iou(p, g, dtype=torch.float64), boundary_f(p, g, dtype=torch.float64), annotated)


def _sequences() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2017)
    cases = []
    for frames, (h, w) in ((3, (48, 64)), (10, (48, 64)), (24, (120, 200)), (13, (240, 427))):
        gt = _blobs(rng, frames, h, w)
        noisy = gt ^ (rng.random(gt.shape) < 0.02)  # boundary-ish errors everywhere
        cases.append((f"noisy blobs {frames}x{h}x{w}", noisy, gt))
        cases.append((f"other blobs {frames}x{h}x{w}", _blobs(rng, frames, h, w), gt))
    gt = _blobs(rng, 16, 60, 80, absent={3, 4, 5, 12})  # the object leaves the scene and comes back
    pred = _blobs(rng, 16, 60, 80, absent={4, 5, 6, 13})  # the tracker notices late, and loses it once
    cases.append(("object absent in some frames", pred, gt))
    empty = np.zeros((9, 40, 50), dtype=bool)
    cases.append(("prediction empty throughout", empty, _blobs(rng, 9, 40, 50, absent={2})))
    cases.append(("both empty throughout", empty, empty))
    return cases


@pytest.mark.parametrize(("name", "pred", "gt"), _sequences(), ids=[case[0] for case in _sequences()])
def test_davis2017_scores_equal_the_toolkit(name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    expected = toolkit.evaluate_sequence(gt[None], pred[None])[0]
    got = _ours(pred, gt).to_dict()
    for key in FIGURES:  # float64 throughout: the same operations as the toolkit's numpy, to the bit
        assert got[key] == expected[key] or (math.isnan(got[key]) and math.isnan(expected[key])), (name, key)
    assert got["jf_mean"] == (expected["j_mean"] + expected["f_mean"]) / 2
    # the toolkit drops the first and the last frame: spoiling them changes nothing
    spoilt = pred.copy()
    spoilt[[0, -1]] = ~gt[[0, -1]]
    assert _ours(spoilt, gt) == _ours(pred, gt)


def test_a_middle_frame_counts() -> None:
    gt = _blobs(np.random.default_rng(0), 6, 32, 32)
    spoilt = gt.copy()
    spoilt[2] = False  # lost on one of the four scored frames: J = F = 0 there
    scores = _ours(spoilt, gt)
    assert (scores.j_mean, scores.j_recall, scores.f_mean, scores.f_recall) == (3 / 4, 3 / 4, 3 / 4, 3 / 4)
    # scores 1, 0, 1, 1; bounds round(linspace(1, 4, 5)) - 1 = 0, 1, 2, 2, 3: first bin (1, 0), last (1, 1)
    assert scores.j_decay == scores.f_decay == -0.5


def test_db_statistics_hand_computed() -> None:
    values = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])  # 0.5 itself is no hit
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.45) and recall == 0.4
    # bounds round(linspace(1, 10, 5)) - 1 = 0, 2, 5, 7, 9, each bin with its right bound:
    # first v[0:3], last v[7:10] (np.array_split's last quarter would be v[8:10], giving -0.75)
    assert decay == pytest.approx(0.1 - 0.8)
    assert db_statistics(values) == toolkit.db_statistics(values)
    assert db_statistics(torch.tensor(values)) == db_statistics(values)


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 7, 8, 11, 48, 102, 255])
def test_db_statistics_equal_the_toolkit(frames: int) -> None:
    values = np.random.default_rng(frames).random(frames)
    values[::5] = 0.5  # exactly on the recall threshold
    assert db_statistics(values) == pytest.approx(toolkit.db_statistics(values), abs=0, rel=0)


@pytest.mark.parametrize("frames", [256, 300])
def test_db_statistics_past_255_frames_keeps_exact_bins(frames: int) -> None:
    values = np.linspace(1.0, 0.0, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's uint8 overflow warning
        # its uint8 bin bounds wrap (at 256 frames only with NumPy >= 2, whose uint8 + 1 wraps too)
        assert math.isnan(toolkit.db_statistics(values)[2]) or frames == 256
    bounds = (np.round(np.linspace(1, frames, 5) + 1e-10) - 1).astype(int)
    expected = values[: bounds[1] + 1].mean() - values[bounds[3] :].mean()
    assert db_statistics(values)[2] == pytest.approx(expected) and expected > 0.7


def test_db_statistics_of_nothing_is_nan() -> None:
    assert all(math.isnan(v) for v in db_statistics(np.zeros(0)))
    two = _blobs(np.random.default_rng(1), 2, 16, 16)  # frames 1..N-2 of a 2-frame video: none
    assert all(math.isnan(v) for v in _ours(two, two).to_dict().values())


def test_frames_without_ground_truth_are_left_out() -> None:
    rng = np.random.default_rng(5)
    gt = _blobs(rng, 12, 40, 40)
    pred = _blobs(rng, 12, 40, 40)
    annotated = np.ones(12, dtype=bool)
    annotated[[3, 4, 9]] = False
    j = iou(torch.from_numpy(pred), torch.from_numpy(gt), dtype=torch.float64)
    keep = annotated.copy()
    keep[[0, -1]] = False
    got = _ours(pred, gt, annotated)
    assert (got.j_mean, got.j_recall, got.j_decay) == toolkit.db_statistics(j.numpy()[keep])
    assert got != _ours(pred, gt)
