"""SAM2RL's headline: an agent's relative gain over FIFO against the best published heuristic's."""

from __future__ import annotations

__all__ = ["describe_headline", "headline"]


def headline(results: dict, agent: str) -> dict:
    """The comparison for `agent` in `evaluate`'s `results`: its gain over FIFO, the best heuristic's
    (among the controllers whose entry says `heuristic`: SAMURAI, DAM4SAM, SAM2Long, a user's rule
    that sets `Controller.heuristic`), their ratio, and on how many tracks the agent beats FIFO."""
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
    return {"agent": agent, "agent_gain": gains[agent], "best_heuristic": best, "best_heuristic_gain": best_gain,
            # a ratio over a heuristic that loses to FIFO (gain <= 0) means nothing
            "gain_ratio": gains[agent] / best_gain if best_gain is not None and best_gain > 0 else None,
            "quality": {name: controllers[name]["overall"]["quality"] for name in controllers},
            "gain_over_fifo": gains, "tracks": tracks, "agent_beats_fifo": sum(t["gain"] > 0 for t in tracks),
            "num_tracks": len(tracks)}


def describe_headline(summary: dict) -> str:
    """`headline`'s result in one line, as the commands print it."""
    best, ratio = summary["best_heuristic"], summary["gain_ratio"]
    against = "no heuristic among the controllers" if best is None else (
        f"best heuristic {best} {summary['best_heuristic_gain']:+.1%}"
        + (" (no heuristic beats FIFO)" if ratio is None else f" ({ratio:.1f}x)"))
    return (f"{summary['agent']}: {summary['agent_gain']:+.1%} over FIFO vs {against}; "
            f"beats FIFO on {summary['agent_beats_fifo']} of {summary['num_tracks']} tracks")
