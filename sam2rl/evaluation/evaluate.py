"""Score controllers on a dataset: per-track metrics, per-sequence and overall summaries, masks on disk."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sam2rl.controllers import CONTROLLERS, Controller, track_video
from sam2rl.datasets import Track, VideoDataset, VideoSequence
from sam2rl.datasets.palette import davis_palette
from sam2rl.evaluation.protocols import NON_OVERLAP, non_overlapping_runs, protocol_of, score_run, summary_keys
from sam2rl.evaluation.report import safe_name
from sam2rl.evaluation.statistics import STATISTICS_KEYS, Bootstrap, paired_gains, spread, track_qualities
from sam2rl.tracker import FeatureMemory, Features, Tracker, TrackRun, video_features

__all__ = ["RunsCallback", "evaluate", "pool_results", "write_masks"]

RunsCallback = Callable[[VideoSequence, str, list[TrackRun]], None]
"""`on_runs(video, controller_name, runs)`: the `TrackRun`s (masks included) of one sequence and
controller, handed over before they are dropped (overlay videos, custom dumps)."""


def _mean(rows: Sequence[dict], key: str) -> float:
    """Mean over the tracks that have a score: one with no frame to score (its object first seen on the
    last frame, or no annotated frame after the prompt) is NaN and left out, not made everyone's NaN."""
    values = np.array([row[key] for row in rows], dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _means(rows: Sequence[dict], protocol: str) -> dict[str, float]:
    """`_mean` of each figure `protocol` reports; its DAVIS 2017 J&F is the mean of the J and F means,
    as the toolkit's global J&F."""
    means = {key: _mean(rows, key) for key in summary_keys(protocol)}
    if protocol == "davis2017":
        means["jf_mean"] = (means["j_mean"] + means["f_mean"]) / 2
    return means


def write_masks(out: Path, video: VideoSequence, runs: list[TrackRun]) -> None:
    """DAVIS-layout palette PNGs at the video's resolution, one per frame named after the source frame
    (`<frame stem>.png`, so strided or offset sets such as YouTube-VOS submit as they are); where objects
    overlap the higher id wins."""
    folder = out / video.name
    folder.mkdir(parents=True, exist_ok=True)
    palette = None
    if video.mask_paths:
        with Image.open(video.mask_paths[0]) as source:
            palette = source.getpalette()
    for t in range(video.num_frames):
        ids = np.zeros((video.height, video.width), dtype=np.uint8)
        for run in sorted(runs, key=lambda r: r.track.object_id):
            if run.track.prompt_frame <= t:
                ids[run.masks[t - run.track.prompt_frame].numpy()] = run.track.object_id
        image = Image.fromarray(ids, mode="P")
        image.putpalette(palette or davis_palette())
        image.save(folder / f"{video.frame_names[t]}.png")


def evaluate(tracker: Tracker, dataset: VideoDataset, controllers: Sequence[Controller], skip_first: int = 7,
             dump_masks: Path | None = None, cache_dir: Path | None = None, tracks: Sequence[Track] | None = None,
             on_track: Callable[[str, str], None] | None = None, on_runs: RunsCallback | None = None,
             features: Mapping[str, Features] | None = None, protocol: str = "sam2rl",
             non_overlap: bool | None = None, feature_memory: FeatureMemory | None = None) -> dict:
    """Track every object of every sequence with each controller and score it under `protocol`.

    Each controller tracks with banks of its own `max_anchors` anchor slots. `tracks` limits
    the evaluation to those tracks (default: every object of every sequence).
    Returns a JSON-ready dict: the model identity, then per controller its bank layout (`bank`:
    anchor and recent slots, the columns of `bank_frames`), whether it is a published heuristic
    (`heuristic`, what `headline` compares an agent with), the per-track scores,
    per-sequence means and overall means (over tracks), frames per second, and
    `overall.gain_over_fifo`, the relative improvement of tracking quality over FIFO (None
    when FIFO is not among the controllers).
    Masks are written under `dump_masks/<controller>/` when given; `on_track(sequence,
    controller)` reports progress and `on_runs(video, controller, runs)` receives the runs of
    each sequence and controller (only one sequence's runs are held at a time). `features`: image
    features already computed for some sequences (by name), so repeated evaluations with the same
    tracker weights do not run the image encoder again. The other sequences' features are encoded on
    demand into `feature_memory` (default: a `FeatureBudget()` for the whole run), and kept on disk
    under `cache_dir` when given.
    `protocol` (see `sam2rl.evaluation.protocols`): "sam2rl", SAM2RL's tracking quality and DAVIS-style
    means, or "davis2017", the DAVIS 2017 toolkit's J/F mean, recall and decay as published SAM 2 numbers
    are scored. `non_overlap` (default: on for davis2017 only) makes each sequence's masks share no pixel
    as sam2's `vos_inference.py` does, before they are scored, written and handed to `on_runs`.
    """
    summary_keys(protocol)  # a known protocol, before anything runs
    non_overlap = NON_OVERLAP[protocol] if non_overlap is None else non_overlap
    names = [controller.name for controller in controllers]
    if len(set(names)) != len(names):
        raise ValueError(f"controller names must be unique, got {', '.join(names)}")
    results: dict = {"model": tracker.identity, "skip_first": skip_first, "protocol": protocol,
                     "non_overlap": non_overlap, "controllers": {}}
    trackers = {controller.name: tracker.with_anchors(controller.max_anchors) for controller in controllers}
    for controller in controllers:
        results["controllers"][controller.name] = {
            "bank": {"anchors": controller.max_anchors, "recent": tracker.num_recent},
            "heuristic": controller.heuristic, "tracks": []}
    wanted = None if tracks is None else {(t.sequence, t.object_id) for t in tracks}
    memory = feature_memory if feature_memory is not None else FeatureMemory(device=tracker.device)
    for video in dataset.sequences:
        chosen = [t for t in video.tracks() if wanted is None or (t.sequence, t.object_id) in wanted]
        if not chosen:
            continue
        cached = None if features is None else features.get(video.name)
        cache = cached if cached is not None else video_features(tracker, video, cache_dir=cache_dir, memory=memory)
        for controller in controllers:
            own = trackers[controller.name]
            controller.bind_video(own, video, tracks=chosen, features=cache)
            runs = track_video(own, video, controller, tracks=chosen, features=cache)
            if non_overlap:
                runs = non_overlapping_runs(runs)
            entry = results["controllers"][controller.name]
            rows = []
            for run in runs:
                scores = score_run(video, run, protocol, skip_first)
                rows.append({"sequence": video.name, "object_id": run.track.object_id,
                             "prompt_frame": run.track.prompt_frame, "fps": 1.0 / max(run.seconds / max(len(run.frames) - 1, 1), 1e-9),
                             **scores, "bank_frames": run.bank_frames.tolist(), "actions": run.actions.tolist()})
            entry["tracks"] += rows
            if dump_masks is not None:
                write_masks(Path(dump_masks) / safe_name(controller.name), video, runs)
            if on_runs is not None:
                on_runs(video, controller.name, runs)
            if on_track is not None:
                on_track(video.name, controller.name)
    return _summarize(results)


def _summarize(results: dict, bootstrap: Bootstrap = Bootstrap()) -> dict:
    """Each controller's means per sequence and `overall` over its tracks, its relative gain over FIFO,
    and how sure that gain is (`_add_statistics`)."""
    protocol = protocol_of(results)
    for entry in results["controllers"].values():
        sequences: dict[str, list[dict]] = {}
        for row in entry["tracks"]:
            sequences.setdefault(row["sequence"], []).append(row)
        entry["sequences"] = {name: _means(rows, protocol) for name, rows in sequences.items()}
        entry["overall"] = {**_means(entry["tracks"], protocol), "fps": _mean(entry["tracks"], "fps")}
    fifo = results["controllers"].get("fifo")
    for entry in results["controllers"].values():
        gain = None
        if fifo is not None:
            base = fifo["overall"]["quality"]
            gain = (entry["overall"]["quality"] - base) / base if base else float("nan")
        entry["overall"]["gain_over_fifo"] = gain
    _add_statistics(results, bootstrap)
    return results


def _add_statistics(results: dict, bootstrap: Bootstrap) -> None:
    """Per controller, against FIFO on the tracks every controller scored: the paired bootstrap's
    interval of the gain in mean quality and of the difference of the means, and per-track wins, ties
    and losses (`sam2rl.evaluation.statistics`); the bootstrap's settings and track count in
    `results["bootstrap"]`."""
    tracks, qualities, excluded = track_qualities(results)
    stats = paired_gains(qualities, "fifo", bootstrap) if "fifo" in qualities else {}
    for name, entry in results["controllers"].items():
        mine = stats.get(name, {})
        entry["overall"].update({key: mine.get(key) for key in STATISTICS_KEYS})
    results["bootstrap"] = {**bootstrap.to_dict(), "baseline": "fifo" if stats else None, "tracks": len(tracks),
                            "excluded_tracks": excluded}


def _heuristic(name: str, entry: dict) -> bool:
    # results written before entries recorded it: the registered rule of that name decides
    return entry["heuristic"] if "heuristic" in entry else getattr(CONTROLLERS.get(name), "heuristic", False)


def _track_keys(rows: Sequence[dict]) -> list[tuple[str, int]]:
    return [(row["sequence"], row["object_id"]) for row in rows]


def _run_tracks(run: dict, source: str) -> list[tuple[str, int]]:
    """The tracks one run scored, in its order; every controller of the run must have scored the same ones."""
    names = list(run["controllers"])
    order = _track_keys(run["controllers"][names[0]]["tracks"]) if names else []
    if len(set(order)) != len(order):
        raise ValueError(f"pool: {source}: {names[0]} scored a track twice")
    for name in names[1:]:
        if sorted(_track_keys(run["controllers"][name]["tracks"])) != sorted(order):
            raise ValueError(f"pool: {source}: {name} scored other tracks than {names[0]} there")
    return order


def _sets_of_runs(tracks: Sequence[list[tuple[str, int]]], runs: Sequence[dict], sources: Sequence[str]) -> list[list[int]]:
    """The runs grouped into sets of the same tracks (one run per training seed), in the order given:
    runs of different sets share no track, and every set has as many runs."""
    groups: list[list[int]] = []
    keys: list[frozenset] = []
    for index, order in enumerate(tracks):
        key = frozenset(order)
        for group, other in zip(groups, keys):
            if key == other:
                group.append(index)
                break
            if key & other:
                sequence, object_id = min(key & other)
                raise ValueError(f"pool: track {sequence}:{object_id} is in both {sources[group[0]]} and {sources[index]}, "
                                 "which do not score the same tracks (the runs of one set, e.g. one per training "
                                 "seed, score the same tracks; different sets share none)")
        else:
            groups.append([index])
            keys.append(key)
    if len({len(group) for group in groups}) > 1:
        counts = ", ".join(f"{sources[group[0]]}: {len(group)}" for group in groups)
        raise ValueError(f"pool: the sets have different numbers of runs ({counts}); give each set one run per "
                         "training seed, in the same order")
    for group in groups:
        seeds: dict[int, str] = {}
        for index in group:
            seed = (runs[index].get("data") or {}).get("seed")
            if seed is not None and seed in seeds:
                raise ValueError(f"pool: {seeds[seed]} and {sources[index]} score the same tracks with the same "
                                 f"training seed {seed} (the same run twice?)")
            if seed is not None:
                seeds[seed] = sources[index]
    return groups


def _seed_mean_row(rows: Sequence[dict], keys: Sequence[str]) -> dict:
    """One track's row over its runs (training seeds): each figure's mean (NaN left out), the per-seed
    qualities in `quality_seeds`; curves and bank timelines differ per seed and are dropped."""
    if len(rows) == 1:
        return rows[0]
    first = rows[0]
    merged = {"sequence": first["sequence"], "object_id": first["object_id"], "prompt_frame": first["prompt_frame"]}
    merged.update({key: _mean(rows, key) for key in (*keys, "fps")})
    merged["quality_seeds"] = [row["quality"] for row in rows]
    return merged


def pool_results(runs: Sequence[dict], sources: Sequence[str], bootstrap: Bootstrap = Bootstrap()) -> dict:
    """One result from several `evaluate` results: different sets of tracks (e.g. one per fresh video
    set) and/or several runs of the same tracks (e.g. one per training seed).

    Runs that score the same tracks are replicates: each track's row is the mean over them
    (`_seed_mean_row`), and each controller's `overall` says how its mean quality and gain over FIFO
    spread over the replicates (`SEED_KEYS`; the k-th replicate of the pool is the k-th run given of
    each set, `replicates` lists them). Runs of different sets share no track. Every mean is then over
    all tracks, and the bootstrap (`_add_statistics`) resamples tracks with their seed means, so a
    headline rests on more tracks than one run scored. Model, `skip_first`, protocol, non-overlap,
    controllers and bank layouts must agree. `sources` names the runs in errors and in `data`."""
    if len(runs) != len(sources) or not runs:
        raise ValueError(f"pool: give one source name per result, got {len(runs)} results and {len(sources)} names")
    settings = [{"model": run.get("model"), "skip_first": run.get("skip_first"), "protocol": protocol_of(run),
                 "non_overlap": run.get("non_overlap", False)} for run in runs]
    first, origin = runs[0], sources[0]
    for run, setting, source in zip(runs[1:], settings[1:], sources[1:]):
        for key, value in setting.items():
            if value != settings[0][key]:
                raise ValueError(f"pool: {source}: {key} {value} differs from {origin}'s {settings[0][key]}")
        if list(run["controllers"]) != list(first["controllers"]):
            raise ValueError(f"pool: {source}: controllers {list(run['controllers'])} differ from "
                             f"{origin}'s {list(first['controllers'])}")
    for name, reference in first["controllers"].items():
        heuristic = _heuristic(name, reference)
        for run, source in zip(runs, sources):
            entry = run["controllers"][name]
            if entry["bank"] != reference["bank"]:
                raise ValueError(f"pool: {source}: {name}'s bank {entry['bank']} differs from {origin}'s")
            if _heuristic(name, entry) != heuristic:
                raise ValueError(f"pool: {source}: {name} is {'not ' if heuristic else ''}a heuristic there, "
                                 f"unlike in {origin}")
    tracks = [_run_tracks(run, source) for run, source in zip(runs, sources)]
    groups = _sets_of_runs(tracks, runs, sources)
    replicates = len(groups[0])
    keys = summary_keys(settings[0]["protocol"])
    where = {index: (number, k) for number, group in enumerate(groups) for k, index in enumerate(group)}
    pooled: dict = {**settings[0], "controllers": {},
                    "data": {"pooled": [{"source": source, "set": where[i][0], "replicate": where[i][1],
                                         **run.get("data", {})} for i, (run, source) in enumerate(zip(runs, sources))]}}
    for name, reference in first["controllers"].items():
        rows: list[dict] = []
        for group in groups:
            by_track = [{(row["sequence"], row["object_id"]): row for row in runs[index]["controllers"][name]["tracks"]}
                        for index in group]
            rows += [_seed_mean_row([mine[track] for mine in by_track], keys) for track in tracks[group[0]]]
        pooled["controllers"][name] = {"bank": reference["bank"], "heuristic": _heuristic(name, reference),
                                       "tracks": rows}
    pooled["data"].update(tracks=sum(len(tracks[group[0]]) for group in groups), sets=len(groups),
                          replicates=replicates)
    _summarize(pooled, bootstrap)
    if replicates > 1:
        _add_seed_spread(pooled, runs, sources, groups)
    return pooled


def _add_seed_spread(pooled: dict, runs: Sequence[dict], sources: Sequence[str], groups: list[list[int]]) -> None:
    """`replicates`: per replicate (the k-th run of each set) every controller's mean quality over all
    tracks and its gain over FIFO; `SEED_KEYS` in each controller's `overall`."""
    replicates = []
    for k in range(len(groups[0])):
        chosen = [group[k] for group in groups]
        quality = {name: _mean([row for index in chosen for row in runs[index]["controllers"][name]["tracks"]], "quality")
                   for name in pooled["controllers"]}
        base = quality.get("fifo")
        gains = {name: None if base is None else (q - base) / base if base else float("nan")
                 for name, q in quality.items()}
        replicates.append({"sources": [sources[index] for index in chosen],
                           "seeds": [(runs[index].get("data") or {}).get("seed") for index in chosen],
                           "quality": quality, "gain_over_fifo": gains})
    pooled["replicates"] = replicates
    for name, entry in pooled["controllers"].items():
        quality = spread([replicate["quality"][name] for replicate in replicates])
        gains = [replicate["gain_over_fifo"][name] for replicate in replicates]
        gain = spread(gains) if None not in gains else dict.fromkeys(("mean", "std", "min", "max"))
        entry["overall"].update(seeds=len(replicates), quality_seed_std=quality["std"],
                                quality_seed_min=quality["min"], quality_seed_max=quality["max"],
                                gain_seed_mean=gain["mean"], gain_seed_std=gain["std"], gain_seed_min=gain["min"],
                                gain_seed_max=gain["max"])
