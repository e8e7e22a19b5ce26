"""`sam2rl eval`: track a dataset with memory controllers, print and save the scores."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

import sam2rl.agents  # noqa: F401  (registers the agent:PATH controllers)
from sam2rl.controllers import make_controller
from sam2rl.datasets import VideoDataset
from sam2rl.errors import InputError, report_error
from sam2rl.evaluation.evaluate import evaluate
from sam2rl.evaluation.protocols import PROTOCOLS
from sam2rl.atomic import write_json
from sam2rl.evaluation.report import overall_csv_path, results_table, write_csv
from sam2rl.tracker import FeatureBudget, FeatureMemory, ModelSpec, Tracker, TrackerSettings

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam2rl eval", description=__doc__,
        epilog="The headline is each controller's relative improvement of tracking quality over FIFO "
               "(column 'vs FIFO', overall.gain_over_fifo in the JSON, gain_over_fifo in the overall CSV); "
               "include fifo in --controllers to get it.")
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset root: JPEGImages/, Annotations/ (DAVIS, MOSE, YouTube-VOS train/ or valid/)")
    parser.add_argument("--split", help="text file listing the sequences to use (default: all)")
    parser.add_argument("--frames-root", type=Path, help="frames from here instead of --data (e.g. YouTube-VOS "
                        "valid_all_frames): a folder with JPEGImages/, or the folder of the video folders")
    parser.add_argument("--annotations-root", type=Path, help="annotations from here instead of --data: a folder "
                        "with Annotations/, or the folder of the video folders")
    parser.add_argument("--model", default="nano", help="SAM 2 short name (sam2.1_hiera_t, ..., nano)")
    parser.add_argument("--config", help="path to a sam2-style model YAML (instead of --model)")
    parser.add_argument("--checkpoint", help="official-format checkpoint ({'model': state_dict})")
    parser.add_argument("--random-weights", action="store_true", help="no checkpoint: random weights (plumbing only)")
    parser.add_argument("--image-size", type=int, help="model input size, a multiple of 32 (default: the config's)")
    parser.add_argument("--controllers", default="fifo",
                        help="comma-separated controller names: fifo, samurai, dam4sam, sam2long (SAM2Long, one "
                             "pathway), sam2long:P (SAM2Long's memory-tree search with P pathways, e.g. sam2long:3), "
                             "oracle, search (ground-truth search over memory schedules), random, agent:PATH (a "
                             "trained agent) or a dotted path to a Controller class (default: fifo)")
    parser.add_argument("--skip-first", type=int, default=7, help="frames skipped by the tracking-quality mean")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="sam2rl",
                        help="sam2rl: tracking quality and J, F, J&F over each track's frames (default); davis2017: "
                             "as published SAM 2 numbers, the DAVIS 2017 toolkit's J and F mean, recall and decay "
                             "on frames 1..N-2 of non-overlapping masks (add --dtype bf16 on a GPU for sam2's "
                             "vos_inference.py precision)")
    parser.add_argument("--non-overlap", action=argparse.BooleanOptionalAction, default=None,
                        help="make each sequence's masks share no pixel as sam2's vos_inference.py does, before "
                             "scoring and writing them (default: on for --protocol davis2017 only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: bfloat16 autocast (CUDA, or a CPU with bfloat16 units)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the per-frame modules as sam2's SAM2VideoPredictorVOS (meant for GPU, no gain on CPU; "
                             "the first frames of each shape compile)")
    parser.add_argument("--cache-dir", type=Path, help="keep image features on disk between runs")
    budget = FeatureBudget()
    parser.add_argument("--device-mib", type=float, default=budget.device_mib,
                        help="MiB of image features kept on the tracker's device, least recently used out first "
                             f"(default: {budget.device_mib:g}); on a CPU it adds to --host-mib")
    parser.add_argument("--host-mib", type=float, default=budget.host_mib,
                        help="MiB of image features kept in host memory beyond the device's (default: "
                             f"{budget.host_mib:g}); frames beyond both are read from --cache-dir or encoded again")
    parser.add_argument("--dump-masks", type=Path, help="write predicted masks here (DAVIS layout, per controller)")
    parser.add_argument("--json", type=Path, help="write all scores here (per-frame curves, bank timelines, means)")
    parser.add_argument("--csv", type=Path,
                        help="write one row per track here, and the per-controller means with the gain over FIFO "
                             "next to it with an -overall suffix (scores.csv -> scores-overall.csv)")
    parser.add_argument("--plots", type=Path,
                        help="write PNG figures here: per track the IoU curves and the memory-bank timeline of "
                             "every controller, and the gain over FIFO as a bar chart")
    parser.add_argument("--video", type=Path,
                        help="write an overlay GIF per track and controller here (<controller>/<sequence>_obj<id>.gif, "
                             "at most 320 px wide)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=max(Console().width, 150))  # the davis2017 table has 14 columns
    spec = ModelSpec(args.config or args.model, checkpoint=args.checkpoint, image_size=args.image_size,
                     random_weights=args.random_weights)
    try:
        names = [name.strip() for name in args.controllers.split(",") if name.strip()]
        if not names:
            raise ValueError("--controllers is empty")
        rules = {name: make_controller(name) for name in names if not name.startswith("agent:")}
        dataset = VideoDataset(args.data, split=args.split, frames_root=args.frames_root,
                               annotations_root=args.annotations_root)
        total = sum(len(video.tracks()) for video in dataset.sequences)
        settings = TrackerSettings(autocast=args.dtype == "bf16", compile=args.compile)
        tracker = Tracker.from_spec(spec, args.device, settings)  # evaluate() sizes banks per controller
        memory = FeatureMemory(FeatureBudget(args.device_mib, args.host_mib), tracker.device)
        # agents are checked against the tracker they will drive
        controllers = [rules[name] if name in rules else make_controller(name, tracker=tracker) for name in names]
        labels = [controller.name for controller in controllers]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:  # results are keyed by controller name
            raise ValueError(f"controller(s) given twice: {', '.join(twice)}")
    except (ValueError, InputError) as error:
        return report_error(error)
    gifs = None
    if args.video is not None:
        from sam2rl.evaluation.videos import GifWriter  # Pillow only, but keep the plain run lean

        gifs = GifWriter(args.video)
    with Progress(console=console, transient=True) as progress:  # a ControllerError ends the command with status 2
        task = progress.add_task("tracking", total=len(dataset) * len(controllers))
        results = evaluate(tracker, dataset, controllers, skip_first=args.skip_first, dump_masks=args.dump_masks,
                           cache_dir=args.cache_dir, on_track=lambda seq, ctl: progress.advance(task), on_runs=gifs,
                           protocol=args.protocol, non_overlap=args.non_overlap, feature_memory=memory)
    results["data"] = {"root": str(args.data), "split": args.split, "sequences": len(dataset), "tracks": total}
    console.print(results_table(results, "sam2rl eval"))
    if args.json is not None:
        write_json(args.json, results)
        console.print(f"scores: {args.json}")
    if args.csv is not None:
        write_csv(args.csv, results)
        console.print(f"tables: {args.csv}, {overall_csv_path(args.csv)}")
    if args.plots is not None:
        from sam2rl.evaluation.plots import write_plots  # matplotlib: imported only when asked for

        console.print(f"plots: {args.plots} ({len(write_plots(results, args.plots))} PNG)")
    if args.dump_masks is not None:
        console.print(f"masks: {args.dump_masks}")
    if gifs is not None:
        console.print(f"videos: {args.video} ({len(gifs.written)} GIF)")
    return 0
