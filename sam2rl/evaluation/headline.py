"""SAM2RL's headline: an agent's relative gain over FIFO against the best published heuristic's."""

from __future__ import annotations

from sam2rl.evaluation.statistics import Bootstrap, gain_ratio, spread, track_qualities

__all__ = ["describe_headline", "headline"]


def _settings(results: dict) -> Bootstrap:
    """The bootstrap `results` were summarised with (the defaults for results written before it was)."""
    given = results.get("bootstrap") or {}
    defaults = Bootstrap()
    return Bootstrap(resamples=given.get("resamples", defaults.resamples), seed=given.get("seed", defaults.seed),
                     level=given.get("level", defaults.level))


def headline(results: dict, agent: str) -> dict:
    """The comparison for `agent` in `evaluate`'s `results`: its gain over FIFO, the best heuristic's
    (by point estimate, among the controllers whose entry says `heuristic`: SAMURAI, DAM4SAM, SAM2Long,
    a user's rule that sets `Controller.heuristic`), their ratio, and on how many tracks the agent beats
    FIFO; with the paired bootstrap's intervals of both gains, of the ratio and of the gains'
    difference (`sam2rl.evaluation.statistics.gain_ratio`: a ratio over a gain <= 0 is None), and,
    for pooled runs with several training seeds, the spread of the agent's gain and of the ratio over
    the seeds."""
    controllers = results["controllers"]
    if agent not in controllers or "fifo" not in controllers:
        raise ValueError(f"headline: needs 'fifo' and {agent!r} among the controllers, got {list(controllers)}")
    heuristics = [name for name, entry in controllers.items() if entry["heuristic"]]
    gains = {name: controllers[name]["overall"]["gain_over_fifo"] for name in controllers}
    best = max(heuristics, key=lambda name: gains[name]) if heuristics else None
    fifo = {(r["sequence"], r["object_id"]): r["quality"] for r in controllers["fifo"]["tracks"]}
    tracks = [{"track": f"{r['sequence']}:{r['object_id']}", "fifo": fifo[(r["sequence"], r["object_id"])],
               "agent": r["quality"], "gain": r["quality"] - fifo[(r["sequence"], r["object_id"])]}
              for r in controllers[agent]["tracks"]]
    best_gain = gains[best] if best is not None else None
    settings = _settings(results)
    _, qualities, excluded = track_qualities(results)

    def interval(name: str | None) -> list | None:
        overall = controllers[name]["overall"] if name is not None else {}
        low, high = overall.get("gain_ci_low"), overall.get("gain_ci_high")
        return None if low is None else [low, high]

    agent_overall = controllers[agent]["overall"]
    summary = {"agent": agent, "agent_gain": gains[agent], "agent_gain_ci": interval(agent),
               "best_heuristic": best, "best_heuristic_gain": best_gain, "best_heuristic_gain_ci": interval(best),
               # a ratio over a heuristic that loses to FIFO (gain <= 0) means nothing
               "gain_ratio": gains[agent] / best_gain if best_gain is not None and best_gain > 0 else None,
               "gain_ratio_ci": None, "gain_ratio_ci_note": None, "gain_difference": None,
               "gain_difference_ci": None,
               "quality": {name: controllers[name]["overall"]["quality"] for name in controllers},
               "gain_over_fifo": gains, "tracks": tracks, "agent_beats_fifo": sum(t["gain"] > 0 for t in tracks),
               "agent_wins": {key: agent_overall.get(key) for key in ("wins", "ties", "losses")},
               "num_tracks": len(tracks),
               "bootstrap": {**settings.to_dict(), "tracks": len(qualities["fifo"]), "excluded_tracks": excluded}}
    if best is not None:
        ratio = gain_ratio(qualities[agent], qualities[best], qualities["fifo"], settings)
        summary.update(gain_difference=ratio["gain_diff"],
                       gain_difference_ci=[ratio["gain_diff_ci_low"], ratio["gain_diff_ci_high"]],
                       gain_ratio_ci=None if ratio["ratio_ci_low"] is None else [ratio["ratio_ci_low"],
                                                                                 ratio["ratio_ci_high"]],
                       gain_ratio_ci_note=ratio["ratio_ci_note"],
                       gain_ratio_undefined_resamples=ratio["undefined_fraction"])
    if results.get("replicates"):
        summary["seeds"] = _over_seeds(results["replicates"], agent, best)
    return summary


def _over_seeds(replicates: list[dict], agent: str, best: str | None) -> dict:
    """The agent's gain and its ratio to `best`'s, per replicate (training seed) and their spread."""
    agent_gains = [replicate["gain_over_fifo"][agent] for replicate in replicates]
    ratios = []
    for replicate, gain in zip(replicates, agent_gains):
        heuristic = replicate["gain_over_fifo"][best] if best is not None else None
        ratios.append(gain / heuristic if heuristic is not None and gain is not None and heuristic > 0 else None)
    return {"n": len(replicates), "seeds": [replicate.get("seeds") for replicate in replicates],
            "agent_gain": agent_gains, "agent_gain_spread": spread(agent_gains), "gain_ratio": ratios,
            # the ratio's spread only where every seed has one
            "gain_ratio_spread": spread(ratios) if None not in ratios else None}


def _ci(interval: list | None, fmt: str, unit: str = "") -> str:
    return "" if interval is None else f" [{format(interval[0], fmt)}{unit}, {format(interval[1], fmt)}{unit}]"


def describe_headline(summary: dict) -> str:
    """`headline`'s result, as the commands print it: the gains with their intervals (in brackets), the
    ratio, the per-track wins, and over several training seeds their spread."""
    best, ratio = summary["best_heuristic"], summary["gain_ratio"]
    level = f"{summary.get('bootstrap', {}).get('level', 0.95):.0%}"
    against = "no heuristic among the controllers" if best is None else (
        f"best heuristic {best} {summary['best_heuristic_gain']:+.1%}{_ci(summary.get('best_heuristic_gain_ci'), '+.1%')}"
        + (" (no heuristic beats FIFO)" if ratio is None else
           f" ({ratio:.1f}x{_ci(summary.get('gain_ratio_ci'), '.1f', 'x')})"))
    wins = summary.get("agent_wins") or {}
    record = (f" ({wins['ties']} tied, {wins['losses']} lost)" if wins.get("ties") is not None else "")
    line = (f"{summary['agent']}: {summary['agent_gain']:+.1%} over FIFO{_ci(summary.get('agent_gain_ci'), '+.1%')} "
            f"vs {against}; beats FIFO on {summary['agent_beats_fifo']} of {summary['num_tracks']} tracks{record}")
    notes = []
    if summary.get("gain_ratio_ci_note") and ratio is not None:
        notes.append(f"ratio {level} CI {summary['gain_ratio_ci_note']}")
    if summary.get("gain_difference_ci") is not None:
        notes.append(f"gain difference {summary['gain_difference']:+.1%}{_ci(summary['gain_difference_ci'], '+.1%')}")
    seeds = summary.get("seeds")
    if seeds:
        gain = seeds["agent_gain_spread"]
        text = (f"over {seeds['n']} training seeds: agent gain {gain['mean']:+.1%} ± {gain['std']:.1%} "
                f"(min {gain['min']:+.1%}, max {gain['max']:+.1%})")
        if seeds.get("gain_ratio_spread"):
            r = seeds["gain_ratio_spread"]
            text += f", ratio {r['mean']:.1f}x ± {r['std']:.1f}x (min {r['min']:.1f}x, max {r['max']:.1f}x)"
        notes.append(text)
    boot = summary.get("bootstrap")
    if boot:
        notes.append(f"in brackets: {level} paired bootstrap CI over {boot['tracks']} track{'' if boot['tracks'] == 1 else 's'} "
                     f"({boot['resamples']} resamples, seed {boot['seed']})")
    return line + "".join(f"\n  {note}" for note in notes)
