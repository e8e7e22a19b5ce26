"""Evaluation results as a console table and CSV files (written atomically), and file names for controllers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from rich.table import Table

from sam2rl.atomic import write_text
from sam2rl.evaluation.protocols import protocol_of, summary_keys
from sam2rl.evaluation.statistics import SEED_KEYS, STATISTICS_KEYS

__all__ = [
    "OVERALL_COLUMNS", "TRACK_COLUMNS", "overall_columns", "overall_csv_path", "results_table", "safe_name",
    "track_columns", "write_csv",
]


def track_columns(protocol: str = "sam2rl") -> tuple[str, ...]:
    """The per-track CSV's columns: the track, then the figures `protocol` reports, then speed."""
    return ("controller", "sequence", "object_id", "prompt_frame", *summary_keys(protocol), "fps")


def overall_columns(protocol: str = "sam2rl", seeds: bool = False) -> tuple[str, ...]:
    """The overall CSV's columns: per controller the figures `protocol` reports, speed, the gain over FIFO
    with its bootstrap interval and the per-track wins (`STATISTICS_KEYS`), and for pooled runs of
    several training seeds (`seeds`) the spread over them (`SEED_KEYS`)."""
    return ("controller", *summary_keys(protocol), "fps", "gain_over_fifo", *STATISTICS_KEYS,
            *(SEED_KEYS if seeds else ()))


TRACK_COLUMNS = track_columns()
OVERALL_COLUMNS = overall_columns()

# table headers of the figures; the DAVIS 2017 toolkit's names where it has them
_HEADERS = {"quality": "quality", "j_mean": "J", "j_recall": "J-Recall", "j_decay": "J-Decay", "f_mean": "F",
            "f_recall": "F-Recall", "f_decay": "F-Decay", "jf_mean": "J&F", "presence": "presence"}


def _protocol_note(results: dict) -> str:
    """The table title's account of how it was scored; nothing for the default (sam2rl, masks as tracked)."""
    masks = "non-overlapping masks" if results.get("non_overlap", False) else "masks as tracked"
    if protocol_of(results) == "davis2017":
        return f" — DAVIS 2017 protocol (its toolkit's J/F on frames 1..N-2, {masks})"
    return f" — sam2rl protocol, {masks}" if results.get("non_overlap", False) else ""


def safe_name(name: str) -> str:
    """A controller name as a file or folder name (`sam2long:3` -> `sam2long_3`, `agent:a/b.pt` -> `agent_a_b.pt`)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "_"


def overall_csv_path(path: Path) -> Path:
    """`scores.csv` -> `scores-overall.csv` (the per-controller summary next to the per-track rows)."""
    path = Path(path)
    return path.with_name(f"{path.stem}-overall{path.suffix}")


def _csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return buffer.getvalue()


def write_csv(path: Path, results: dict) -> tuple[Path, Path]:
    """Per-track rows (`track_columns`) at `path`, per-controller means and the gain over FIFO
    (`overall_columns`) at `overall_csv_path(path)`, with the figures of the results' protocol;
    floats at full precision, NaN as `nan`, a missing gain (no FIFO run) as an empty cell."""
    protocol = protocol_of(results)
    tracks, overall = [], []
    for name, entry in results["controllers"].items():
        tracks += [{"controller": name, **row} for row in entry["tracks"]]
        overall.append({"controller": name, **entry["overall"]})
    write_text(Path(path), _csv(track_columns(protocol), tracks))
    columns = overall_columns(protocol, seeds=bool(results.get("replicates")))
    return Path(path), write_text(overall_csv_path(path), _csv(columns, overall))


def _percent(value: float | None) -> str:
    return "" if value is None else "n/a" if value != value else f"{value:+.1%}"


def results_table(results: dict, title: str) -> Table:
    """One row per controller: overall scores, the relative gain in tracking quality over FIFO with its
    paired bootstrap interval and the per-track wins/ties/losses against FIFO (the caption states the
    bootstrap's settings), and for pooled runs of several training seeds the gain's spread over them; the
    title names a protocol other than the default, and whether its masks were made non-overlapping."""
    model = results["model"]
    random = " (RANDOM WEIGHTS: plumbing only)" if model["weights_sha256"].startswith("random") else ""
    boot = results.get("bootstrap") or {}
    seeds = len(results.get("replicates") or [])
    caption = []
    if boot.get("baseline"):
        tracks = f"{boot['tracks']} track{'' if boot['tracks'] == 1 else 's'}"
        caption.append(f"{boot['level']:.0%} CI: paired bootstrap over {tracks} ({boot['resamples']} "
                       f"resamples, seed {boot['seed']}); W/T/L: tracks above/level with/below FIFO")
    if seeds:
        caption.append(f"each track's figures are means over {seeds} training seeds; seed sd and seed range: "
                       "the gain over FIFO of each seed's run")
    table = Table(title=f"{title} — {model['model']} @ {model['image_size']} px{random}{_protocol_note(results)}",
                  caption="\n".join(caption) or None)
    keys = summary_keys(protocol_of(results))
    headers = ["controller", *(_HEADERS[key] for key in keys), "fps", "vs FIFO", f"{boot.get('level', 0.95):.0%} CI",
               "W/T/L"]
    if seeds:
        headers += ["seed sd", "seed range"]
    for column in headers:  # figures and names unbroken: a wrapped interval reads as two numbers
        table.add_column(column, justify="left" if column == "controller" else "right", no_wrap=True)
    for name, entry in results["controllers"].items():
        o = entry["overall"]
        baseline = name == boot.get("baseline")  # FIFO against itself: nothing to say
        low, high = o.get("gain_ci_low"), o.get("gain_ci_high")
        interval = "" if baseline or low is None else f"[{_percent(low)}, {_percent(high)}]"
        wins = "" if baseline or o.get("wins") is None else f"{o['wins']}/{o['ties']}/{o['losses']}"
        row = [name, *(f"{o[key]:.3f}" for key in keys), f"{o['fps']:.1f}", _percent(o.get("gain_over_fifo")),
               interval, wins]
        if seeds:
            row += ["" if baseline or o.get("gain_seed_std") is None else f"{o['gain_seed_std']:.1%}",
                    "" if baseline or o.get("gain_seed_min") is None
                    else f"{_percent(o['gain_seed_min'])}..{_percent(o['gain_seed_max'])}"]
        table.add_row(*row)
    return table
