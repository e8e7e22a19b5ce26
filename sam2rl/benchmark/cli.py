"""`sam2rl bench`: transitions per second of the plain SAM 2 loop vs `SAM2MemoryEnv`, on the same
video and weights (speed does not depend on the weights, so they are random).

    sam2rl bench --model sam2.1_hiera_t --image-size 256 --batch 16 --frames 24 [--json OUT]
    sam2rl bench --batch 1 4 16 64 --frames 50 400 --plot sweep.png      # sweep over B and T
    sam2rl bench --parts --batch 1 8                                     # encoder / step timings, profile
    sam2rl bench --memory --frames 100 300 --image-size 512              # peak memory against video length
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from sam2rl.atomic import write_json
from sam2rl.benchmark.measure import BenchSetup, EnvRollout, NaiveLoop, interleaved, measure_parts, synthetic_video
from sam2rl.benchmark.memory import WARM_FRAMES, measure_in_subprocess
from sam2rl.evaluation.plots import save_figure
from sam2rl.memory_reuse import freed_memory_reused
from sam2rl.tracker import FeatureBudget

__all__ = ["compare", "main", "sweep_figure"]


def compare(setup: BenchSetup, batches: list[int], frames: list[int], steps: int = 20) -> list[dict]:
    """One record per (video length, B): naive and ours on the same video and weights. Every
    contender (the naive loop once per length, ours per length and B) is timed in turns with all
    the others, so figures for different B and T compare as fairly as naive against ours."""
    tracker = setup.tracker()
    with tempfile.TemporaryDirectory(prefix="sam2rl-bench-") as folder:
        videos = [synthetic_video(Path(folder) / f"frames-{length}", length, setup.image_size) for length in frames]
        naive = [NaiveLoop(setup, video) for video in videos]
        ours = [EnvRollout(setup, video, batch, steps, tracker) for video in videos for batch in batches]
        timed = interleaved(setup, [*naive, *ours])
    naive_figures, ours_figures = timed[:len(naive)], timed[len(naive):]
    records = []
    for i, env in enumerate(ours_figures):  # ours is listed video by video, B within each
        baseline = naive_figures[i // len(batches)]
        records.append({**setup.describe(), "freed_memory_reused": freed_memory_reused(), "naive": baseline, "ours": env,
                        "ratio": env["transitions_per_s"] / baseline["transitions_per_s"]})
    return records


def sweep_figure(records: list[dict]) -> Figure:
    """Transitions/s against B (one line per video length) and against video length (one line
    per B), with the plain SAM 2 loop dashed."""
    fig = Figure(figsize=(10, 4), dpi=100)
    by_batch, by_length = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    lengths = sorted({r["ours"]["frames"] for r in records})
    batches = sorted({r["ours"]["batch"] for r in records})
    for length in lengths:
        rows = sorted((r for r in records if r["ours"]["frames"] == length), key=lambda r: r["ours"]["batch"])
        line, = by_batch.plot([r["ours"]["batch"] for r in rows], [r["ours"]["transitions_per_s"] for r in rows],
                              marker="o", label=f"ours, T={length}")
        by_batch.axhline(rows[0]["naive"]["transitions_per_s"], ls="--", color=line.get_color(),
                         label=f"SAM2VideoPredictor, T={length}")
    for batch in batches:
        rows = sorted((r for r in records if r["ours"]["batch"] == batch), key=lambda r: r["ours"]["frames"])
        by_length.plot([r["ours"]["frames"] for r in rows], [r["ours"]["transitions_per_s"] for r in rows],
                       marker="o", label=f"ours, B={batch}")
    naive = sorted(records, key=lambda r: r["ours"]["frames"])
    by_length.plot([r["ours"]["frames"] for r in naive], [r["naive"]["transitions_per_s"] for r in naive], "k--",
                   label="SAM2VideoPredictor")
    for ax, label in ((by_batch, "parallel episodes B"), (by_length, "video length T (frames)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("transitions / s")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    first = records[0]
    fig.suptitle(f"{first['model']} {first['image_size']} px, random weights, {first['device']}"
                 f"{' bf16' if first['bf16'] else ''}, {first['threads']} threads")
    fig.tight_layout()
    return fig


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def _compare_table(records: list[dict], title: str) -> Table:
    table = Table(title=title)
    # on CPU the resident set of the whole process: the contenders take turns and freed memory is kept
    peak = "process RSS peak MiB" if records[0]["device"] == "cpu" else "CUDA peak MiB"
    for column in ("size", "T", "B", "naive t/s", "ours t/s", "ratio", "cache build s", "cache KiB/frame",
                   f"naive {peak}", f"ours {peak}", "GFLOP/transition", "TFLOP/s"):
        table.add_column(column, justify="right")
    for r in records:
        n, o = r["naive"], r["ours"]
        table.add_row(str(r["image_size"]), str(o["frames"]), str(o["batch"]), f"{n['transitions_per_s']:.1f}",
                      f"{o['transitions_per_s']:.1f}", f"{r['ratio']:.1f}x", f"{o['cache_build_s']:.1f}",
                      f"{o['cache_bytes_per_frame'] / 1024:.0f}", _mib(n["peak_memory_bytes"]),
                      _mib(o["peak_memory_bytes"]), f"{o['flops_per_transition'] / 1e9:.2f}",
                      f"{o['achieved_tflops']:.3f}")
    return table


def _parts_table(results: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("size", "encoder ms/frame", "feature KiB/frame", "B", "step ms", "ms/transition"):
        table.add_column(column, justify="right")
    for r in results:
        for s in r["step"]:
            table.add_row(str(r["image_size"]), f"{r['encoder_ms_per_frame']:.1f}",
                          f"{r['feature_bytes_per_frame'] / 1024:.0f}", str(s["batch"]), f"{s['ms_per_step']:.1f}",
                          f"{s['ms_per_transition']:.1f}")
    return table


def _ops_table(results: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("size", "B", "operator", "input shapes", "share", "ms/step"):
        table.add_column(column, justify="left" if column in ("operator", "input shapes") else "right")
    for r in results:
        for s in r["step"]:
            for op in s["top_ops"]:
                table.add_row(str(r["image_size"]), str(s["batch"]), op["op"],
                              " ".join("x".join(map(str, shape)) for shape in op["input_shapes"][:3]),
                              f"{op['share']:.0%}", f"{op['ms_per_step']:.1f}")
    return table


def _memory_table(records: list[dict], title: str) -> Table:
    table = Table(title=title)
    cuda = records[0]["device"].startswith("cuda")
    columns = ["size", "T", "encoded", "KiB/frame", "budget MiB", f"held, {WARM_FRAMES} frames", "held peak",
               "held bound", f"RSS, {WARM_FRAMES} frames", "RSS peak", "RSS bound"]
    if cuda:
        columns += [f"CUDA, {WARM_FRAMES} frames", "CUDA peak", "CUDA bound"]
    for column in [*columns, "s/frame", "mean IoU"]:
        table.add_column(column, justify="right")
    for r in records:
        measures = ["held", "rss", *(["cuda"] if cuda else [])]
        row = [str(r["image_size"]), str(r["frames"]), str(r["frames_encoded"]),
               f"{r['feature_bytes_per_frame'] / 1024:.0f}", f"{r['device_mib']:g}+{r['host_mib']:g}"]
        for measure in measures:
            peak, bound = r[f"{measure}_peak_bytes"], r[f"{measure}_bound_bytes"]
            if peak is None:  # no mallinfo2 (not glibc)
                row += ["n/a"] * 3
                continue
            verdict = "within" if peak <= bound else f"OVER by {(peak - bound) / 2**20:.0f}"
            row += [_mib(r[f"{measure}_warm_bytes"]), _mib(peak), f"{_mib(bound)} ({verdict})"]
        table.add_row(*row, f"{r['seconds'] / r['frames']:.2f}", f"{r['mean_iou']:.2f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2rl bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sam2.1_hiera_t", help="short name (e.g. sam2.1_hiera_l, nano)")
    parser.add_argument("--image-size", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, nargs="+", default=[16], help="parallel episodes B")
    parser.add_argument("--frames", type=int, nargs="+", default=[24], help="video length T")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed environment steps per window (median of 3 windows, taken in turns with the naive loop's episodes)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile our tracker's per-frame modules as sam2's SAM2VideoPredictorVOS does "
                             "(max-autotune, CUDA graphs on GPU); compiling falls in the warm-up, the naive loop stays plain")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="write all figures as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG of transitions/s against B and T (first size)")
    parser.add_argument("--parts", action="store_true",
                        help="time the image encoder and one tracking step instead, and profile the step")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per timing with --parts")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory of tracking one synthetic video of each --frames length (fresh process each) "
                             "with its features on demand under --device-mib / --host-mib, against a bound that does "
                             "not depend on the length")
    parser.add_argument("--device-mib", type=float, default=32.0, help="feature budget on the device with --memory")
    parser.add_argument("--host-mib", type=float, default=32.0,
                        help="feature budget on the host with --memory (on a CPU: one memory with --device-mib)")
    args = parser.parse_args(argv)
    if min(args.batch) < 1 or min(args.frames) < 2:
        parser.error(f"--batch must be >= 1 and --frames >= 2, got {args.batch} and {args.frames}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 150))
    setups = [BenchSetup(args.model, size, args.device, args.dtype == "bf16", compile=args.compile)
              for size in args.image_size]
    where = (f"{args.model}, random weights, {args.device} {args.dtype}{', ours compiled' if args.compile else ''}, "
             f"{torch.get_num_threads()} threads")
    returned = ", freed memory returned to the system"
    if not args.memory:  # --memory measures in a child process: its allocator is the one to name
        where += "" if freed_memory_reused() else returned
    if args.memory:
        budget = FeatureBudget(args.device_mib, args.host_mib)
        results = [measure_in_subprocess(args.model, size, length, args.device, budget, args.dtype == "bf16", args.threads)
                   for size in args.image_size for length in args.frames]
        where += "" if results[0]["freed_memory_reused"] else returned  # the child's allocator
        console.print(_memory_table(results, f"sam2rl bench --memory — {where}"))
        console.print(f"held: what the allocations hold after a frame (glibc mallinfo2 and the features kept off the heap; "
                      f"'within' also checks CUDA's "
                      f"allocator peak on a GPU); RSS: the resident set, free heap memory included. Bounds: the figure "
                      f"after {WARM_FRAMES} frames (imports, model, working memory, first features) plus the feature "
                      f"budget, for RSS also the free memory glibc may keep at its heap's top "
                      f"({_mib(results[0]['rss_kept_free_bytes'])} MiB); figures in MiB. Model {_mib(results[0]['model_bytes'])} MiB; a caller's TrackRun would "
                      f"keep {results[0]['caller_bytes_per_frame'] / 1024:.0f} KiB more per frame and track (plus masks "
                      "at video resolution), not held here")
    elif args.parts:
        results = [{**s.describe(), **measure_parts(s, args.batch, args.repeats)} for s in setups]
        console.print(_parts_table(results, f"sam2rl bench --parts — {where}"))
        console.print(_ops_table(results, "where a tracking step's time goes (self time of the costliest operators)"))
    else:
        results = [r for s in setups for r in compare(s, args.batch, args.frames, args.steps)]
        console.print(_compare_table(results, f"sam2rl bench — SAM2VideoPredictor (naive) vs SAM2MemoryEnv (ours), {where}"))
        if args.plot is not None:
            first = [r for r in results if r["image_size"] == args.image_size[0]]
            console.print(f"plot: {save_figure(sweep_figure(first), args.plot)}")
    if args.json is not None:
        console.print(f"json: {write_json(args.json, results)}")
    return 0
