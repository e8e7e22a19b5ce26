"""Figures from an `evaluate()` results dict (or its JSON): IoU curves, memory timelines, gain over FIFO.

Every function takes the results dict only, so runs saved as JSON can be plotted again later
(`json.load` then `write_plots`). Figures are built with `matplotlib.figure.Figure` and rendered
by the Agg canvas: no pyplot, no global backend switch, safe in headless jobs and threads.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sam2rl.atomic import write_bytes
from sam2rl.evaluation.report import safe_name

__all__ = ["comparison_figure", "gain_figure", "iou_figure", "memory_figure", "save_figure", "track_keys", "write_plots"]

DPI = 100
_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]
ANCHOR_COLOUR = "#d62728"
RECENT_COLOUR = "#1f77b4"


def _colour(results: dict, name: str) -> str:
    """The same colour for a controller in every figure (by its position in the results)."""
    return _COLOURS[list(results["controllers"]).index(name) % len(_COLOURS)]


def track_keys(results: dict) -> list[tuple[str, int]]:
    """(sequence, object_id) of every track, in the order the controllers first list them."""
    keys: dict[tuple[str, int], None] = {}
    for entry in results["controllers"].values():
        for row in entry["tracks"]:
            keys.setdefault((row["sequence"], row["object_id"]), None)
    return list(keys)


def _rows(results: dict, sequence: str, object_id: int, names: list[str] | None = None) -> dict[str, dict]:
    """Per controller (all, or `names` in that order), its row for one track; controllers without
    that track are left out."""
    out = {}
    for name in names or list(results["controllers"]):
        if name not in results["controllers"]:
            raise KeyError(f"no controller {name!r} in the results (have: {', '.join(results['controllers'])})")
        for row in results["controllers"][name]["tracks"]:
            if row["sequence"] == sequence and row["object_id"] == object_id:
                out[name] = row
                break
    if not out:
        raise KeyError(f"no track for object {object_id} of sequence {sequence!r} in the results")
    return out


def _draw_iou(ax, results: dict, rows: dict[str, dict]) -> None:
    skip = int(results.get("skip_first", 0))
    start = next(iter(rows.values()))["prompt_frame"]
    length = max(len(row["iou"]) for row in rows.values())
    if 0 < skip < length:  # score_track scores every frame of tracks this short
        ax.axvspan(start - 0.5, start + skip - 0.5, color="0.88", lw=0, label=f"not scored (first {skip})")
    for name, row in rows.items():
        frames = row["prompt_frame"] + np.arange(len(row["iou"]))
        ax.plot(frames, np.asarray(row["iou"], dtype=float), color=_colour(results, name), lw=1.4,
                label=f"{name} ({row['quality']:.3f})")
    ax.set_xlim(start - 0.5, start + length - 0.5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("IoU")
    ax.grid(alpha=0.3)


def _draw_memory(ax, results: dict, name: str, row: dict) -> None:
    anchors = int(results["controllers"][name].get("bank", {}).get("anchors", 1))
    bank = np.asarray(row["bank_frames"], dtype=float).reshape(len(row["bank_frames"]), -1)
    steps = row["prompt_frame"] + np.arange(bank.shape[0])
    size = float(np.clip(900.0 / max(bank.shape[0], 1), 1.0, 14.0))
    ax.plot(steps, steps, color="0.75", lw=0.8, zorder=1)
    for cols, colour, marker, label in ((slice(0, anchors), ANCHOR_COLOUR, "s", "anchor"),
                                        (slice(anchors, None), RECENT_COLOUR, "o", "recent")):
        held = bank[:, cols]
        x = np.broadcast_to(steps[:, None], held.shape)
        keep = held >= 0
        ax.scatter(x[keep], held[keep], s=size, c=colour, marker=marker, lw=0, zorder=2, label=label)
    ax.set_ylabel("frame held", fontsize=8)
    ax.set_title(f"{name}: memory bank after each frame", fontsize=9, loc="left")
    ax.set_ylim(steps[0] - 1, steps[-1] + 1)
    ax.grid(alpha=0.3)


def iou_figure(results: dict, sequence: str, object_id: int) -> Figure:
    """IoU per frame of every controller on one track; the first `skip_first` frames (not in
    the tracking-quality mean) are shaded."""
    fig = Figure(figsize=(7.6, 3.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_iou(ax, results, _rows(results, sequence, object_id))
    ax.set_xlabel("frame")
    ax.set_title(f"{sequence}, object {object_id}: IoU per frame", fontsize=10)
    fig.legend(fontsize=7, loc="outside right upper", title="quality", title_fontsize=7)
    return fig


def memory_figure(results: dict, sequence: str, object_id: int) -> Figure:
    """One row per controller: after each frame (x), the frames whose memories are in the bank (y),
    anchors in red, recent memories in blue; the grey diagonal is the current frame."""
    rows = _rows(results, sequence, object_id)
    fig = Figure(figsize=(6.4, 0.7 + 1.7 * len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, row) in zip(axes, rows.items()):
        _draw_memory(ax, results, name, row)
    axes[-1].set_xlabel("current frame")
    axes[0].legend(fontsize=7, loc="upper left", markerscale=1.5, framealpha=0.8)
    fig.suptitle(f"{sequence}, object {object_id}: memory bank after each frame", fontsize=10)
    return fig


def comparison_figure(results: dict, sequence: str, object_id: int, names: list[str]) -> Figure:
    """A few controllers on one track (e.g. FIFO vs an agent): IoU per frame on top, then each
    one's memory timeline on the same frame axis, so an IoU gap lines up with the bank that made it."""
    rows = _rows(results, sequence, object_id, names)
    fig = Figure(figsize=(7.0, 2.6 + 1.7 * len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1 + len(rows), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [1.4] + [1.0] * len(rows)})[:, 0]
    _draw_iou(axes[0], results, rows)
    axes[0].legend(fontsize=7, loc="lower left", framealpha=0.8)
    axes[0].set_title("IoU per frame (tracking quality)", fontsize=9, loc="left")
    for ax, (name, row) in zip(axes[1:], rows.items()):
        _draw_memory(ax, results, name, row)
    axes[1].legend(fontsize=7, loc="upper left", markerscale=1.5, framealpha=0.8)
    axes[-1].set_xlabel("frame")
    fig.suptitle(f"{sequence}, object {object_id}: {' vs '.join(rows)}", fontsize=10)
    return fig


def gain_figure(results: dict) -> Figure | None:
    """The headline: relative improvement of tracking quality over FIFO, one bar per other
    controller. None without a FIFO run or without other controllers."""
    gains = {name: entry["overall"].get("gain_over_fifo") for name, entry in results["controllers"].items()
             if name != "fifo"}
    if "fifo" not in results["controllers"] or not gains or all(g is None for g in gains.values()):
        return None
    fig = Figure(figsize=(1.6 + 0.9 * len(gains), 3.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = list(gains)
    values = [0.0 if g is None or math.isnan(g) else 100.0 * g for g in gains.values()]
    colours = ["#2ca02c" if v >= 0 else "#d62728" for v in values]
    bars = ax.bar(range(len(names)), values, color=colours, width=0.6)
    for bar, gain in zip(bars, gains.values()):
        text = "n/a" if gain is None or math.isnan(gain) else f"{gain:+.1%}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom" if bar.get_height() >= 0 else "top", fontsize=8,
                    xytext=(0, 2 if bar.get_height() >= 0 else -2), textcoords="offset points")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 3 else 0, fontsize=8)
    ax.set_ylabel("tracking quality vs FIFO (%)")
    low, high = min(values + [0.0]), max(values + [0.0])
    pad = 0.15 * (high - low) or 1.0
    ax.set_ylim(low - pad, high + pad)
    model = results.get("model", {})
    ax.set_title(f"gain over FIFO — {model.get('model', '?')} @ {model.get('image_size', '?')} px", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """PNG at the figure's dpi, written atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    return write_bytes(path, buffer.getvalue())


def write_plots(results: dict, out: Path, compare: list[str] | None = None) -> list[Path]:
    """All figures under `out`: `<sequence>_obj<id>_iou.png` and `<sequence>_obj<id>_memory.png`
    per track, `<sequence>_obj<id>_compare.png` with the `compare` controllers only (if given),
    and `gain_over_fifo.png` (when FIFO and another controller ran)."""
    out = Path(out)
    written = []
    for sequence, object_id in track_keys(results):
        stem = f"{safe_name(sequence)}_obj{object_id}"
        written.append(save_figure(iou_figure(results, sequence, object_id), out / f"{stem}_iou.png"))
        written.append(save_figure(memory_figure(results, sequence, object_id), out / f"{stem}_memory.png"))
        if compare:
            figure = comparison_figure(results, sequence, object_id, compare)
            written.append(save_figure(figure, out / f"{stem}_compare.png"))
    gain = gain_figure(results)
    if gain is not None:
        written.append(save_figure(gain, out / "gain_over_fifo.png"))
    return written
