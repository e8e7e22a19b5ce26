"""Evaluation results as a console table and CSV files (written atomically), and file names for controllers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from rich.table import Table

from sam2rl.atomic import write_text
from sam2rl.evaluation.protocols import protocol_of, summary_keys

__all__ = [
    "OVERALL_COLUMNS", "TRACK_COLUMNS", "overall_columns", "overall_csv_path", "results_table", "safe_name",
    "track_columns", "write_csv",
]


def track_columns(protocol: str = "sam2rl") -> tuple[str, ...]:
    """The per-track CSV's columns: the track, then the figures `protocol` reports, then speed."""
    return ("controller", "sequence", "object_id", "prompt_frame", *summary_keys(protocol), "fps")


def overall_columns(protocol: str = "sam2rl") -> tuple[str, ...]:
    """The overall CSV's columns: per controller the figures `protocol` reports, speed, the gain over FIFO."""
    return ("controller", *summary_keys(protocol), "fps", "gain_over_fifo")


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
    return Path(path), write_text(overall_csv_path(path), _csv(overall_columns(protocol), overall))


def results_table(results: dict, title: str) -> Table:
    """One row per controller: overall scores and the relative gain in tracking quality over FIFO; the
    title names a protocol other than the default, and whether its masks were made non-overlapping."""
    model = results["model"]
    random = " (RANDOM WEIGHTS: plumbing only)" if model["weights_sha256"].startswith("random") else ""
    table = Table(title=f"{title} — {model['model']} @ {model['image_size']} px{random}{_protocol_note(results)}")
    keys = summary_keys(protocol_of(results))
    for column in ("controller", *(_HEADERS[key] for key in keys), "fps", "vs FIFO"):
        table.add_column(column, justify="left" if column == "controller" else "right")
    for name, entry in results["controllers"].items():
        o = entry["overall"]
        gain = o.get("gain_over_fifo")
        table.add_row(name, *(f"{o[key]:.3f}" for key in keys), f"{o['fps']:.1f}",
                      "" if gain is None else "n/a" if gain != gain else f"{gain:+.1%}")
    return table
