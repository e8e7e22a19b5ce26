"""`sam2rl pool`: one headline over several runs' tracks (e.g. the per-video agents of several fresh
video sets), since five tracks give a noisy ratio; runs of the same tracks (one per training seed)
pool into their mean and spread over seeds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from sam2rl.atomic import write_json
from sam2rl.errors import report_error
from sam2rl.evaluation.evaluate import pool_results
from sam2rl.evaluation.headline import describe_headline, headline
from sam2rl.evaluation.report import results_table, write_csv
from sam2rl.evaluation.statistics import RESAMPLES, SEED, Bootstrap

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam2rl pool", description="Pool the scores of several runs (each a `results.json` written by "
        "`sam2rl run`/`lightning run` or `sam2rl eval --json`) and print one table and headline over all their tracks. "
        "Runs of different tracks are different sets; runs of the same tracks are replicates (e.g. one per training "
        "seed: give every set its runs in the same seed order), whose per-track figures are averaged, with their "
        "spread over seeds reported. Gains come with a paired bootstrap confidence interval over tracks.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding results.json, or results files")
    parser.add_argument("--agent", help="the controller to compare with the heuristics (default: the only 'agent ...' one)")
    parser.add_argument("--out", type=Path, help="write results.json, scores.csv and summary.json of the pool here")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help=f"paired bootstrap resamples of the tracks (default: {RESAMPLES})")
    parser.add_argument("--bootstrap-seed", type=int, default=SEED,
                        help=f"seed of the bootstrap's draws (default: {SEED}; the output states it)")
    return parser


def _load(path: Path) -> dict:
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text())
    except OSError as error:
        raise ValueError(f"{file}: cannot read it ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}: not JSON ({error})") from error
    if not isinstance(results, dict) or not isinstance(results.get("controllers"), dict):
        raise ValueError(f"{file}: no 'controllers' scores (not a results.json of sam2rl run or eval)")
    missing = [key for key in ("model", "skip_first") if key not in results]
    if missing:
        raise ValueError(f"{file}: no {', '.join(missing)} (not a results.json of sam2rl run or eval)")
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=max(Console().width, 150))  # intervals and the spread over seeds: up to 12 columns
    try:
        bootstrap = Bootstrap(resamples=args.resamples, seed=args.bootstrap_seed)
        pooled = pool_results([_load(path) for path in args.runs], [str(path) for path in args.runs], bootstrap)
        agents = [name for name in pooled["controllers"] if name.startswith("agent")]
        agent = args.agent or (agents[0] if len(agents) == 1 else None)
        if agent is None:
            raise ValueError(f"--agent: say which controller is the agent (candidates: {agents or 'none'})")
        summary = headline(pooled, agent)
    except ValueError as error:
        return report_error(error)
    data = pooled["data"]
    layout = f"{data['sets']} set(s) x {data['replicates']} seed(s), " if data["replicates"] > 1 else ""
    console.print(results_table(pooled, f"sam2rl pool ({len(args.runs)} runs, {layout}{summary['num_tracks']} tracks)"))
    console.print(describe_headline(summary))
    if args.out is not None:
        write_json(args.out / "results.json", pooled)
        write_csv(args.out / "scores.csv", pooled)
        write_json(args.out / "summary.json", summary)
        console.print(f"pooled results in {args.out}")
    return 0
