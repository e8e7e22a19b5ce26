"""Evaluation results as a console table and CSV files (written atomically), and file names for controllers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from rich.table import Table

from sam2rl.atomic import write_text

__all__ = [
    "OVERALL_COLUMNS", "TRACK_COLUMNS", "overall_csv_path", "results_table", "safe_name", "write_csv",
]

TRACK_COLUMNS = ("controller", "sequence", "object_id", "prompt_frame", "quality", "j_mean", "f_mean", "jf_mean",
                 "presence", "fps")
OVERALL_COLUMNS = ("controller", "quality", "j_mean", "f_mean", "jf_mean", "presence", "fps", "gain_over_fifo")


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
    """Per-track rows (`TRACK_COLUMNS`) at `path`, per-controller means and the gain over FIFO
    (`OVERALL_COLUMNS`) at `overall_csv_path(path)`; floats at full precision, NaN as `nan`,
    a missing gain (no FIFO run) as an empty cell."""
    tracks, overall = [], []
    for name, entry in results["controllers"].items():
        tracks += [{"controller": name, **row} for row in entry["tracks"]]
        overall.append({"controller": name, **entry["overall"]})
    write_text(Path(path), _csv(TRACK_COLUMNS, tracks))
    return Path(path), write_text(overall_csv_path(path), _csv(OVERALL_COLUMNS, overall))


def results_table(results: dict, title: str) -> Table:
    """One row per controller: overall scores and the relative gain in tracking quality over FIFO."""
    model = results["model"]
    random = " (RANDOM WEIGHTS: plumbing only)" if model["weights_sha256"].startswith("random") else ""
    table = Table(title=f"{title} — {model['model']} @ {model['image_size']} px{random}")
    for column in ("controller", "quality", "J", "F", "J&F", "presence", "fps", "vs FIFO"):
        table.add_column(column, justify="left" if column == "controller" else "right")
    for name, entry in results["controllers"].items():
        o = entry["overall"]
        gain = o.get("gain_over_fifo")
        table.add_row(name, f"{o['quality']:.3f}", f"{o['j_mean']:.3f}", f"{o['f_mean']:.3f}", f"{o['jf_mean']:.3f}",
                      f"{o['presence']:.3f}", f"{o['fps']:.1f}", "" if gain is None else "n/a" if gain != gain else f"{gain:+.1%}")
    return table
