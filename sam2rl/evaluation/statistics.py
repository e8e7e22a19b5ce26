"""How sure the gains are: a paired bootstrap over tracks, and per-track win counts against FIFO.

Every controller tracked the same tracks, so the comparison is paired: one resample draws tracks with
replacement (as many as there are) and every controller is scored on that same draw. For each
controller the interval is the percentile interval of its resampled gain over FIFO,
``mean(q_controller) / mean(q_fifo) - 1``, and of the plain difference ``mean(q_controller) -
mean(q_fifo)``. The headline ratio (an agent's gain over the best heuristic's) gets an interval from
the same resamples (`gain_ratio`). The resamples are seeded (`SEED`), so a figure is reproduced exactly.

The functions below take per-track arrays (pure numpy); `track_qualities` reads them out of
`evaluate`'s results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LEVEL", "RESAMPLES", "SEED", "SEED_KEYS", "STATISTICS_KEYS", "TIE", "Bootstrap", "bootstrap_indices",
           "gain_ratio", "paired_gains", "percentile_interval", "spread", "track_qualities", "win_counts"]

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95
TIE = 1e-9
"""Per-track qualities closer than this count as a tie (an agent that makes FIFO's choices scores FIFO's
quality exactly; seed means of equal figures may differ in the last bits)."""

STATISTICS_KEYS = ("gain_ci_low", "gain_ci_high", "quality_diff", "quality_diff_ci_low", "quality_diff_ci_high",
                   "wins", "ties", "losses")
"""What `evaluate` adds to each controller's `overall` (None where no FIFO was run)."""

SEED_KEYS = ("seeds", "quality_seed_std", "quality_seed_min", "quality_seed_max", "gain_seed_mean", "gain_seed_std",
             "gain_seed_min", "gain_seed_max")
"""What `pool_results` adds to each controller's `overall` when the runs hold several training seeds of the
same tracks: how many, and the spread over them of the mean quality and of the gain over FIFO (std with
n - 1, min, max; `gain_seed_mean` is the mean of the per-seed gains)."""

_CHUNK = 1000  # resamples scored at once: bounds memory at _CHUNK x tracks floats


@dataclass(frozen=True)
class Bootstrap:
    """The settings of a paired bootstrap: resamples, the generator's seed, the interval's level."""
    resamples: int = RESAMPLES
    seed: int = SEED
    level: float = LEVEL

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"bootstrap: resamples must be >= 1, got {self.resamples}")
        if not 0 < self.level < 1:
            raise ValueError(f"bootstrap: level must be in (0, 1), got {self.level}")

    def describe(self, tracks: int) -> str:
        """One line for table captions."""
        return (f"{self.level:.0%} CI: paired bootstrap over {tracks} tracks ({self.resamples} resamples, "
                f"seed {self.seed}, percentile)")

    def to_dict(self) -> dict:
        return {**asdict(self), "method": "paired percentile bootstrap, tracks resampled with replacement"}


def bootstrap_indices(num_tracks: int, settings: Bootstrap = Bootstrap()) -> np.ndarray:
    """`[resamples, num_tracks]` track indices drawn with replacement, the same for every controller."""
    rng = np.random.default_rng(settings.seed)
    return rng.integers(0, max(num_tracks, 1), size=(settings.resamples, num_tracks), dtype=np.int32)


def _resampled_means(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    if indices.shape[1] == 0:
        return np.full(indices.shape[0], math.nan)
    return np.concatenate([values[indices[start:start + _CHUNK]].mean(axis=1)
                           for start in range(0, indices.shape[0], _CHUNK)])


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` interval of `samples` (linear interpolation, numpy's default), NaN and
    infinities left out; (nan, nan) when nothing is left."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return math.nan, math.nan
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _gain(mean: np.ndarray | float, base: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(base) != 0, np.asarray(mean) / np.asarray(base) - 1, math.nan)


def win_counts(values: Sequence[float], baseline: Sequence[float], tie: float = TIE) -> dict[str, int]:
    """Tracks where `values` is above / within `tie` of / below `baseline` (paired, track by track)."""
    diff = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    return {"wins": int((diff > tie).sum()), "ties": int((np.abs(diff) <= tie).sum()),
            "losses": int((diff < -tie).sum())}


def paired_gains(qualities: Mapping[str, Sequence[float]], baseline: str = "fifo",
                 settings: Bootstrap = Bootstrap()) -> dict[str, dict]:
    """Per controller (each an array over the same tracks, in the same order), against `baseline`:
    `gain` (relative gain in mean quality), `gain_ci_low`/`gain_ci_high`, `quality_diff` (difference of
    the means) and its `quality_diff_ci_low`/`_high`, and the per-track `wins`/`ties`/`losses`."""
    if baseline not in qualities:
        raise ValueError(f"paired bootstrap: no {baseline!r} among {list(qualities)}")
    arrays = {name: np.asarray(values, dtype=float) for name, values in qualities.items()}
    base = arrays[baseline]
    if any(values.shape != base.shape for values in arrays.values()):
        raise ValueError("paired bootstrap: every controller needs a value for the same tracks")
    indices = bootstrap_indices(base.size, settings)
    base_means = _resampled_means(base, indices)
    out = {}
    for name, values in arrays.items():
        means = _resampled_means(values, indices)
        point_base, point = (float(base.mean()), float(values.mean())) if base.size else (math.nan, math.nan)
        gain_low, gain_high = percentile_interval(_gain(means, base_means), settings.level)
        diff_low, diff_high = percentile_interval(means - base_means, settings.level)
        out[name] = {"gain": float(_gain(point, point_base)), "gain_ci_low": gain_low, "gain_ci_high": gain_high,
                     "quality_diff": point - point_base, "quality_diff_ci_low": diff_low,
                     "quality_diff_ci_high": diff_high, **win_counts(values, base)}
    return out


def gain_ratio(agent: Sequence[float], heuristic: Sequence[float], baseline: Sequence[float],
               settings: Bootstrap = Bootstrap()) -> dict:
    """The headline ratio, agent gain / heuristic gain (both over `baseline`, per-track arrays over the
    same tracks), with the difference of the gains, each with a percentile interval over the same
    resamples as `paired_gains` (same seed, so the same draws).

    A ratio over a gain <= 0 means nothing: the point `ratio` is None when the heuristic's gain is <= 0.
    A resample where the heuristic's gain is <= 0 has no ratio either; `undefined_fraction` says how
    many of them do. As the heuristic's gain nears 0 the ratio grows without bound, so when more than
    the interval's tail ((1 - level) / 2) of resamples have no ratio, the interval is unbounded and
    reported as None with `ratio_ci_note` saying why; otherwise it is the percentile interval of the
    resamples that have one. `gain_diff` (agent gain - heuristic gain) and its interval are defined on
    every resample: read that one when the ratio's is None."""
    agent, heuristic, base = (np.asarray(values, dtype=float) for values in (agent, heuristic, baseline))
    if not agent.shape == heuristic.shape == base.shape:
        raise ValueError("gain ratio: the agent, the heuristic and the baseline need values for the same tracks")
    indices = bootstrap_indices(base.size, settings)
    base_means = _resampled_means(base, indices)
    agent_gains = _gain(_resampled_means(agent, indices), base_means)
    heuristic_gains = _gain(_resampled_means(heuristic, indices), base_means)
    point_base = float(base.mean()) if base.size else math.nan
    point_agent = float(_gain(float(agent.mean()) if agent.size else math.nan, point_base))
    point_heuristic = float(_gain(float(heuristic.mean()) if heuristic.size else math.nan, point_base))
    defined = heuristic_gains > 0
    undefined = float(1 - defined.mean()) if defined.size else 1.0
    ratio = point_agent / point_heuristic if point_heuristic > 0 else None
    low = high = None
    note = None
    if ratio is None:
        note = "no ratio: the heuristic's gain over FIFO is <= 0"
    elif undefined > (1 - settings.level) / 2:
        note = (f"unbounded: the heuristic's gain is <= 0 in {undefined:.1%} of resamples "
                "(see the CI of the gain difference)")
    else:
        low, high = percentile_interval(agent_gains[defined] / heuristic_gains[defined], settings.level)
    diff_low, diff_high = percentile_interval(agent_gains - heuristic_gains, settings.level)
    return {"ratio": ratio, "ratio_ci_low": low, "ratio_ci_high": high, "ratio_ci_note": note,
            "undefined_fraction": undefined, "gain_diff": point_agent - point_heuristic,
            "gain_diff_ci_low": diff_low, "gain_diff_ci_high": diff_high}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation (n - 1; 0 for one value), min and max of `values` (e.g. over training seeds)."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    if not array.size:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}


def track_qualities(results: dict, key: str = "quality") -> tuple[list[tuple[str, int]], dict[str, np.ndarray], int]:
    """The tracks every controller of `evaluate`'s `results` scored, sorted by (sequence, object id) so
    the draws do not depend on the order runs were pooled in, and per controller its `key` on them;
    tracks with no score (NaN) for some controller are left out, and counted (third value)."""
    controllers = results["controllers"]
    per = {name: {(row["sequence"], row["object_id"]): row[key] for row in entry["tracks"]}
           for name, entry in controllers.items()}
    common = sorted(set.intersection(*(set(rows) for rows in per.values()))) if per else []
    every = set().union(*(set(rows) for rows in per.values())) if per else set()
    kept = [track for track in common if not any(math.isnan(float(rows[track])) for rows in per.values())]
    values = {name: np.array([rows[track] for track in kept], dtype=float) for name, rows in per.items()}
    return kept, values, len(every) - len(kept)
