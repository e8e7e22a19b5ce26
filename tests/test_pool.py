"""`sam2rl pool`: one table and headline over several runs' tracks."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from sam2rl.cli import main as sam2rl
from sam2rl.evaluation.evaluate import pool_results
from sam2rl.evaluation.headline import describe_headline, headline
from sam2rl.evaluation.report import results_table

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
MODEL = {"model": "nano", "image_size": 64, "config_sha256": "c", "weights_sha256": "w"}


def _flat(text: str) -> str:
    """Console output without the line breaks rich wraps it with."""
    return " ".join(text.split())


def _row(sequence: str, quality: float) -> dict:
    return {"sequence": sequence, "object_id": 1, "prompt_frame": 0, "quality": quality, "j_mean": quality,
            "f_mean": quality, "jf_mean": quality, "presence": 1.0, "fps": 10.0}


def _results(qualities: dict[str, list[tuple[str, float]]]) -> dict:
    """An `evaluate`-shaped result: per controller, (sequence, quality) of its tracks."""
    controllers = {name: {"bank": {"anchors": 1, "recent": 6}, "tracks": [_row(s, q) for s, q in rows]}
                   for name, rows in qualities.items()}
    return {"model": dict(MODEL), "skip_first": 7, "controllers": controllers}


def test_pool_means_every_track_not_every_run() -> None:
    one = _results({"fifo": [("a", 0.4)], "samurai": [("a", 0.5)], "agent (per video)": [("a", 0.6)]})
    two = _results({"fifo": [("b", 0.6), ("c", 0.8)], "samurai": [("b", 0.6), ("c", 0.8)],
                    "agent (per video)": [("b", 0.5), ("c", 1.0)]})
    pooled = pool_results([one, two], ["one", "two"])
    fifo, agent = (pooled["controllers"][name]["overall"] for name in ("fifo", "agent (per video)"))
    assert fifo["quality"] == pytest.approx(0.6)  # (0.4 + 0.6 + 0.8) / 3, not the runs' (0.4 + 0.7) / 2
    assert agent["quality"] == pytest.approx(0.7)
    assert agent["gain_over_fifo"] == pytest.approx(0.7 / 0.6 - 1)
    assert pooled["controllers"]["fifo"]["sequences"]["c"]["quality"] == pytest.approx(0.8)
    assert [d["source"] for d in pooled["data"]["pooled"]] == ["one", "two"] and pooled["data"]["tracks"] == 3
    summary = headline(pooled, "agent (per video)")
    samurai_gain = 1.9 / 1.8 - 1
    assert summary["best_heuristic"] == "samurai"
    assert summary["gain_ratio"] == pytest.approx((0.7 / 0.6 - 1) / samurai_gain)
    assert summary["agent_beats_fifo"] == 2 and summary["num_tracks"] == 3  # track b: 0.5 against FIFO's 0.6
    assert "beats FIFO on 2 of 3 tracks" in describe_headline(summary)


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["model"].update(weights_sha256="other"), "two: model"),
    (lambda r: r.update(skip_first=0), "two: skip_first 0 differs from one's 7"),
    (lambda r: r["controllers"].pop("samurai"), "two: controllers"),
    (lambda r: r["controllers"]["fifo"]["bank"].update(anchors=4), "two: fifo's bank"),
    (lambda r: r["controllers"]["fifo"]["tracks"][0].update(sequence="a"), "two: samurai scored other tracks than fifo"),
    # a set shares a track with another, yet they are not the same tracks (so not replicates either)
    (lambda r: [r["controllers"][name]["tracks"].append(_row("a", 0.5)) for name in r["controllers"]],
     "track a:1 is in both one and two, which do not score the same tracks"),
    (lambda r: r["controllers"]["samurai"].update(heuristic=False), "two: samurai is not a heuristic there, unlike in one"),
])
def test_pool_refuses_runs_that_do_not_match(change, message: str) -> None:
    one = _results({"fifo": [("a", 0.4)], "samurai": [("a", 0.5)]})
    two = _results({"fifo": [("b", 0.6)], "samurai": [("b", 0.6)]})
    change(two)
    with pytest.raises(ValueError, match=message):
        pool_results([one, two], ["one", "two"])


def test_headline_compares_with_the_rules_results_mark_as_heuristics() -> None:
    """A user's rule (not in the registry) that sets `Controller.heuristic` counts, in a run and pooled."""
    runs = [_results({"fifo": [(s, 0.5)], "samurai": [(s, 0.55)], "mine": [(s, 0.6)], "agent (per video)": [(s, 0.8)]})
            for s in ("a", "b")]
    for run in runs:
        for name, entry in run["controllers"].items():
            entry["heuristic"] = name in ("samurai", "mine")
    pooled = pool_results(runs, ["one", "two"])
    assert pooled["controllers"]["mine"]["heuristic"] and not pooled["controllers"]["fifo"]["heuristic"]
    assert headline(pooled, "agent (per video)")["best_heuristic"] == "mine"
    runs[0]["controllers"]["mine"]["heuristic"] = False
    assert headline(pool_results(runs[:1], ["one"]), "agent (per video)")["best_heuristic"] == "samurai"


def test_pooling_two_eval_runs_gives_the_run_over_both(nano_random_checkpoint: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def run(name: str, *split: str) -> Path:
        args = ["eval", "--data", str(SAMPLE), "--model", "nano", "--checkpoint", str(nano_random_checkpoint),
                "--image-size", "64", "--controllers", "fifo,samurai,dam4sam", "--json", str(tmp_path / f"{name}.json")]
        if split:
            (tmp_path / f"{name}.txt").write_text("\n".join(split) + "\n")
            args += ["--split", str(tmp_path / f"{name}.txt")]
        assert sam2rl(args) == 0
        return tmp_path / f"{name}.json"

    both = json.loads(run("both").read_text())
    parts = [run("first", "synth-medium-1000-000"), run("second", "synth-medium-1000-001")]
    out = tmp_path / "pool"
    capsys.readouterr()
    assert sam2rl(["pool", *map(str, parts), "--agent", "dam4sam", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    pooled = json.loads((out / "results.json").read_text())
    for name, entry in both["controllers"].items():
        for key in ("quality", "jf_mean", "presence", "gain_over_fifo"):
            assert pooled["controllers"][name]["overall"][key] == pytest.approx(entry["overall"][key], abs=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(headline(both, "dam4sam")))
    assert summary["num_tracks"] == 5 and _flat(describe_headline(summary)) in _flat(printed)
    assert (out / "scores.csv").is_file() and (out / "scores-overall.csv").is_file()


def test_pool_errors_name_the_file_or_ask_for_the_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert sam2rl(["pool", str(bad)]) == 2
    assert f"{bad}: not JSON" in _flat(capsys.readouterr().err)
    assert sam2rl(["pool", str(tmp_path / "missing")]) == 2
    assert "missing: cannot read it" in _flat(capsys.readouterr().err)
    bad.write_text('{"controllers": {}}')
    assert sam2rl(["pool", str(bad)]) == 2
    assert f"{bad}: no model, skip_first" in _flat(capsys.readouterr().err)
    runs = []
    for i, sequence in enumerate(("a", "b")):
        results = _results({"fifo": [(sequence, 0.5)], "agent:x.pt": [(sequence, 0.6)], "agent:y.pt": [(sequence, 0.7)]})
        runs.append(tmp_path / f"run{i}")
        runs[-1].mkdir()
        (runs[-1] / "results.json").write_text(json.dumps(copy.deepcopy(results)))
    assert sam2rl(["pool", *map(str, runs)]) == 2
    assert "--agent: say which controller is the agent" in _flat(capsys.readouterr().err)
    assert sam2rl(["pool", *map(str, runs), "--agent", "agent:y.pt"]) == 0
    assert ("agent:y.pt: +40.0% over FIFO [+40.0%, +40.0%] vs no heuristic among the controllers; beats FIFO on 2 "
            "of 2 tracks (0 tied, 0 lost)") in _flat(capsys.readouterr().out)


def _seeded(qualities: dict[str, list[tuple[str, float]]], seed: int) -> dict:
    results = _results(qualities)
    results["data"] = {"seed": seed}
    return results


def test_runs_of_the_same_tracks_pool_into_their_mean_and_spread_over_seeds() -> None:
    fifo = [("a", 0.5), ("b", 0.5)]
    set_a = [_seeded({"fifo": fifo, "samurai": [("a", 0.55), ("b", 0.5)], "agent (per video)": agent}, seed)
             for seed, agent in ((0, [("a", 0.6), ("b", 0.7)]), (1, [("a", 0.8), ("b", 0.9)]))]
    set_b = [_seeded({"fifo": [("c", 0.5)], "samurai": [("c", 0.5)], "agent (per video)": [("c", 0.5)]}, seed)
             for seed in (0, 1)]
    # sets and seeds in any order: each set's runs are its seeds, in the order given
    pooled = pool_results([set_a[0], set_b[0], set_a[1], set_b[1]], ["a0", "b0", "a1", "b1"])
    assert (pooled["data"]["sets"], pooled["data"]["replicates"], pooled["data"]["tracks"]) == (2, 2, 3)
    assert [(d["source"], d["set"], d["replicate"]) for d in pooled["data"]["pooled"]] == [
        ("a0", 0, 0), ("b0", 1, 0), ("a1", 0, 1), ("b1", 1, 1)]
    agent = pooled["controllers"]["agent (per video)"]
    assert [row["quality"] for row in agent["tracks"]] == pytest.approx([0.7, 0.8, 0.5])  # per-track seed means
    assert agent["tracks"][0]["quality_seeds"] == [0.6, 0.8]
    overall = agent["overall"]
    assert overall["quality"] == pytest.approx(2.0 / 3) and overall["gain_over_fifo"] == pytest.approx(1 / 3)
    per_seed = [(0.6 + 0.7 + 0.5) / 3 / 0.5 - 1, (0.8 + 0.9 + 0.5) / 3 / 0.5 - 1]  # replicate k: run k of each set
    assert [r["gain_over_fifo"]["agent (per video)"] for r in pooled["replicates"]] == pytest.approx(per_seed)
    assert pooled["replicates"][1]["sources"] == ["a1", "b1"] and pooled["replicates"][1]["seeds"] == [1, 1]
    assert overall["seeds"] == 2
    assert overall["gain_seed_mean"] == pytest.approx(sum(per_seed) / 2)
    assert overall["gain_seed_std"] == pytest.approx(abs(per_seed[1] - per_seed[0]) / math.sqrt(2))
    assert (overall["gain_seed_min"], overall["gain_seed_max"]) == pytest.approx(tuple(per_seed))
    assert overall["quality_seed_std"] == pytest.approx((0.2 / 3) * math.sqrt(2))
    assert (overall["wins"], overall["ties"], overall["losses"]) == (2, 1, 0)  # on the seed means
    assert pooled["controllers"]["fifo"]["overall"]["gain_seed_std"] == 0
    summary = headline(pooled, "agent (per video)")
    assert summary["seeds"]["agent_gain"] == pytest.approx(per_seed)
    samurai = (0.55 + 0.5 + 0.5) / 3 / 0.5 - 1
    assert summary["seeds"]["gain_ratio"] == pytest.approx([g / samurai for g in per_seed])
    assert summary["agent_gain_ci"][0] <= summary["agent_gain"] <= summary["agent_gain_ci"][1]
    text = _flat(describe_headline(summary))
    assert "over 2 training seeds: agent gain +33.3% ± 18.9% (min +20.0%, max +46.7%)" in text
    console = Console(width=200, record=True)
    console.print(results_table(pooled, "pool"))
    table = console.export_text()
    for header in ("95% CI", "W/T/L", "seed sd", "seed range", "means over 2 training seeds", "seed 0"):
        assert header in table
    assert "2/1/0" in table and "+20.0%..+46.7%" in table


def test_pool_refuses_the_same_seed_twice() -> None:
    runs = [_seeded({"fifo": [("a", 0.5)], "agent (per video)": [("a", 0.6)]}, 0) for _ in range(2)]
    with pytest.raises(ValueError, match="a0 and a1 score the same tracks with the same training seed 0"):
        pool_results(runs, ["a0", "a1"])
    runs[1]["data"]["seed"] = 1
    assert pool_results(runs, ["a0", "a1"])["data"]["replicates"] == 2


def test_pool_refuses_sets_with_different_numbers_of_seeds() -> None:
    runs = [_seeded({"fifo": [(s, 0.5)], "agent (per video)": [(s, 0.6)]}, seed) for s, seed in (("a", 0), ("a", 1), ("b", 0))]
    with pytest.raises(ValueError, match=r"different numbers of runs \(a0: 2, b0: 1\)"):
        pool_results(runs, ["a0", "a1", "b0"])


def test_pool_command_reports_seeds_and_the_bootstrap_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for seed, agent in ((0, 0.6), (1, 0.7), (2, 0.8)):
        path = tmp_path / f"seed{seed}.json"
        path.write_text(json.dumps(_seeded({"fifo": [("a", 0.5), ("b", 0.4)], "samurai": [("a", 0.55), ("b", 0.4)],
                                            "agent (per video)": [("a", agent), ("b", 0.5)]}, seed)))
        paths.append(str(path))
    out = tmp_path / "pool"
    assert sam2rl(["pool", *paths, "--resamples", "500", "--bootstrap-seed", "7", "--out", str(out)]) == 0
    printed = _flat(capsys.readouterr().out)
    assert "3 runs, 1 set(s) x 3 seed(s), 2 tracks" in printed and "500 resamples, seed 7" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["bootstrap"]["resamples"], summary["bootstrap"]["seed"]) == (500, 7)
    assert summary["seeds"]["n"] == 3 and summary["agent_wins"] == {"wins": 2, "ties": 0, "losses": 0}
    with (out / "scores-overall.csv").open() as handle:
        header = handle.readline().strip().split(",")
    assert {"gain_ci_low", "gain_ci_high", "wins", "ties", "losses", "gain_seed_std", "gain_seed_min"} <= set(header)
    assert sam2rl(["pool", *paths, "--resamples", "0"]) == 2
    assert "resamples must be >= 1" in _flat(capsys.readouterr().err)
