"""``sam2rl synth``: write a synthetic DAVIS-layout tracking dataset."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sam2rl.errors import report_error
from sam2rl.synth.generator import DIFFICULTIES
from sam2rl.synth.writer import video_seed, write_dataset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sam2rl synth",
        description="Generate synthetic videos (look-alike distractors, full occlusions, sudden jumps, "
        "appearance change, clutter) in DAVIS layout. Same arguments -> same bytes.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (DAVIS layout)")
    p.add_argument("--num", type=int, default=10, help="number of videos (default 10)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed >= 0; video i uses seed*100003+i")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="medium")
    p.add_argument("--frames", type=int, default=48, help="frames per video (default 48)")
    p.add_argument("--size", type=int, default=128, help="frame width = height in pixels (default 128)")
    p.add_argument("--preview", type=Path, default=None, help="also save a contact sheet PNG of the first video")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    bad = [f"{flag} {value} (need >= {least})" for flag, value, least in
           (("--num", args.num, 1), ("--seed", args.seed, 0), ("--frames", args.frames, 1), ("--size", args.size, 16))
           if value < least]
    if bad:
        return report_error(", ".join(bad))
    t0 = time.perf_counter()
    try:
        names = write_dataset(args.out, args.num, args.seed, args.difficulty, args.frames, args.size)
    except FileExistsError as error:
        return report_error(error)
    elapsed = time.perf_counter() - t0

    meta = json.loads((args.out / "synth.json").read_text())
    totals: dict[str, int] = {}
    for v in meta["videos"]:
        for k, n in v["events"]["counts"].items():
            totals[k] = totals.get(k, 0) + n
    frames_total = args.num * args.frames
    table = Table(title=f"sam2rl synth: {len(names)} {args.difficulty} videos -> {args.out}")
    table.add_column("event")
    table.add_column("frames", justify="right")
    table.add_column("share", justify="right")
    for k, n in totals.items():
        table.add_row(k.replace("_", " "), str(n), f"{n / frames_total:.1%}")
    console.print(table)
    console.print(
        f"{args.frames} frames of {args.size}x{args.size} px per video, seed {args.seed}, "
        f"{elapsed:.2f} s; names listed in {args.out / 'ImageSets' / 'all.txt'}"
    )
    if args.preview is not None:
        from sam2rl.synth.generator import generate_video
        from sam2rl.synth.preview import contact_sheet

        frames, masks, events = generate_video(video_seed(args.seed, 0), args.difficulty, args.frames, args.size)
        args.preview.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(frames, masks, events).save(args.preview)
        console.print(f"preview of {names[0]}: {args.preview}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
