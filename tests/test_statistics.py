"""The paired bootstrap over tracks, win counts and the headline ratio's interval (`sam2rl.evaluation.statistics`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sam2rl.evaluation.statistics import (Bootstrap, bootstrap_indices, gain_ratio, paired_gains, percentile_interval,
                                          spread, track_qualities, win_counts)

FAST = Bootstrap(resamples=2000)


def _tracks(n: int, seed: int = 0, lift: float = 0.03) -> dict[str, np.ndarray]:
    """FIFO's qualities on `n` tracks and an agent's, `lift` better on average with per-track noise."""
    rng = np.random.default_rng(seed)
    fifo = rng.uniform(0.4, 0.8, n)
    return {"fifo": fifo, "agent": fifo + lift + rng.normal(0, 0.05, n)}


def test_interval_holds_the_point_estimate_and_shrinks_with_more_tracks() -> None:
    few, many = (paired_gains(_tracks(n), "fifo", FAST)["agent"] for n in (8, 400))
    for stats in (few, many):
        assert stats["gain_ci_low"] < stats["gain"] < stats["gain_ci_high"]
        assert stats["quality_diff_ci_low"] < stats["quality_diff"] < stats["quality_diff_ci_high"]
    width = {name: s["gain_ci_high"] - s["gain_ci_low"] for name, s in (("few", few), ("many", many))}
    assert width["many"] < width["few"] / 3  # about 1/sqrt(50) of it
    assert many["gain_ci_low"] > 0  # 400 tracks: a 3-point lift is resolved; 8 tracks need not


def test_a_constant_per_track_gain_has_a_zero_width_interval() -> None:
    fifo = np.array([0.2, 0.5, 0.9, 0.4])
    stats = paired_gains({"fifo": fifo, "agent": fifo * 1.25}, "fifo", FAST)
    assert stats["agent"]["gain"] == pytest.approx(0.25)
    assert stats["agent"]["gain_ci_low"] == pytest.approx(0.25) and stats["agent"]["gain_ci_high"] == pytest.approx(0.25)
    assert stats["fifo"]["gain"] == 0 and (stats["fifo"]["wins"], stats["fifo"]["ties"]) == (0, 4)


def test_resamples_are_paired_and_seeded() -> None:
    qualities = _tracks(12)
    assert paired_gains(qualities, "fifo", FAST) == paired_gains(qualities, "fifo", FAST)
    other = paired_gains(qualities, "fifo", Bootstrap(resamples=2000, seed=1))["agent"]
    assert other["gain_ci_low"] != paired_gains(qualities, "fifo", FAST)["agent"]["gain_ci_low"]
    indices = bootstrap_indices(12, FAST)
    assert indices.shape == (2000, 12) and indices.min() >= 0 and indices.max() <= 11
    # paired: an agent equal to FIFO on every track has no spread at all, whatever the draws
    same = paired_gains({"fifo": qualities["fifo"], "copy": qualities["fifo"].copy()}, "fifo", FAST)["copy"]
    assert (same["gain_ci_low"], same["gain_ci_high"], same["ties"]) == (0.0, 0.0, 12)


def test_win_counts() -> None:
    assert win_counts([0.5, 0.6, 0.7, 0.3], [0.5, 0.5, 0.8, 0.2]) == {"wins": 2, "ties": 1, "losses": 1}
    assert win_counts([0.5 + 1e-12], [0.5]) == {"wins": 0, "ties": 1, "losses": 0}  # the same score, in float
    stats = paired_gains({"fifo": [0.5, 0.5, 0.8], "agent": [0.5, 0.6, 0.7]}, "fifo", FAST)["agent"]
    assert (stats["wins"], stats["ties"], stats["losses"]) == (1, 1, 1)


def test_ratio_with_a_heuristic_that_does_not_beat_fifo_is_reported_not_divided() -> None:
    fifo = np.array([0.5, 0.6, 0.7, 0.4])
    ratio = gain_ratio(fifo * 1.1, fifo.copy(), fifo, FAST)  # the heuristic's gain is exactly 0
    assert ratio["ratio"] is None and ratio["ratio_ci_low"] is None and ratio["ratio_ci_high"] is None
    assert "<= 0" in ratio["ratio_ci_note"] and ratio["undefined_fraction"] == 1.0
    assert ratio["gain_diff"] == pytest.approx(0.1) and ratio["gain_diff_ci_low"] == pytest.approx(0.1)
    worse = gain_ratio(fifo * 1.1, fifo * 0.9, fifo, FAST)
    assert worse["ratio"] is None and worse["gain_diff"] == pytest.approx(0.2)


def test_ratio_interval_is_unbounded_when_the_heuristic_often_loses_to_fifo() -> None:
    rng = np.random.default_rng(3)
    fifo = rng.uniform(0.4, 0.8, 6)
    heuristic = fifo + np.array([0.1, -0.09, 0.05, -0.05, 0.02, -0.02])  # barely above FIFO on the mean
    ratio = gain_ratio(fifo * 1.1, heuristic, fifo, FAST)
    assert ratio["ratio"] is not None and ratio["ratio"] > 0
    assert ratio["undefined_fraction"] > 0.025
    assert ratio["ratio_ci_low"] is None and ratio["ratio_ci_note"].startswith("unbounded")
    assert ratio["gain_diff_ci_low"] < ratio["gain_diff"] < ratio["gain_diff_ci_high"]


def test_ratio_interval_when_the_heuristic_reliably_beats_fifo() -> None:
    qualities = _tracks(60, lift=0.06)
    heuristic = qualities["fifo"] + 0.02 + np.random.default_rng(1).normal(0, 0.005, 60)
    ratio = gain_ratio(qualities["agent"], heuristic, qualities["fifo"], FAST)
    assert ratio["undefined_fraction"] == 0 and ratio["ratio_ci_note"] is None
    assert ratio["ratio_ci_low"] < ratio["ratio"] < ratio["ratio_ci_high"]
    assert ratio["ratio"] == pytest.approx((qualities["agent"].mean() / qualities["fifo"].mean() - 1)
                                           / (heuristic.mean() / qualities["fifo"].mean() - 1))


def test_spread_and_percentile_edges() -> None:
    assert spread([0.3, 0.7]) == pytest.approx({"mean": 0.5, "std": math.sqrt(0.08), "min": 0.3, "max": 0.7})
    assert spread([0.4])["std"] == 0.0
    assert all(math.isnan(v) for v in percentile_interval(np.array([math.nan])))
    assert percentile_interval(np.array([1.0, math.nan, 3.0]), 0.5) == (1.5, 2.5)


def test_track_qualities_pairs_tracks_and_leaves_out_unscored_ones() -> None:
    def rows(*items: tuple[str, float]) -> list[dict]:
        return [{"sequence": s, "object_id": 1, "quality": q} for s, q in items]

    results = {"controllers": {"fifo": {"tracks": rows(("b", 0.5), ("a", 0.4), ("c", math.nan))},
                               "agent": {"tracks": rows(("a", 0.6), ("c", math.nan), ("b", 0.7))}}}
    tracks, values, excluded = track_qualities(results)
    assert tracks == [("a", 1), ("b", 1)] and excluded == 1  # sorted, so pooling order does not change the draws
    assert values["fifo"].tolist() == [0.4, 0.5] and values["agent"].tolist() == [0.6, 0.7]


def test_bootstrap_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="resamples must be >= 1"):
        Bootstrap(resamples=0)
    with pytest.raises(ValueError, match="level must be in"):
        Bootstrap(level=1.5)
