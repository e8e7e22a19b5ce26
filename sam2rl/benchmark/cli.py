"""`sam2rl bench`: time the tracker's parts on random frames (speed does not depend on weights)."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import tempfile

import torch
from rich.console import Console
from rich.table import Table

from tensordict import TensorDict

from sam2rl.datasets import VideoDataset
from sam2rl.envs import SAM2MemoryEnv
from sam2rl.rewards import CompositeReward
from sam2rl.synth import write_dataset
from sam2rl.tracker import ModelSpec, Tracker, TrackerSettings

__all__ = ["main", "measure", "measure_env"]


def _timed(fn, repeats: int, sync: bool) -> float:
    """Median seconds of `fn` over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.inference_mode()
def measure(model: str, image_size: int, batches: list[int], device: str = "cpu", bf16: bool = False,
            repeats: int = 5) -> dict:
    """ms per frame of the image encoder (one frame per call, as SAM2VideoPredictor runs it) and
    ms per call of one batched tracking step (memory attention + heads + memory encoder) with
    full banks (prompt anchor + 6 recent memories + 15 pointers), for each batch size."""
    settings = TrackerSettings(autocast=bf16 and device.startswith("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = Tracker.from_spec(ModelSpec(model, image_size=image_size, random_weights=True), device, settings)
    sync = device.startswith("cuda")
    frames = torch.randn(24, 3, image_size, image_size, device=device)
    encoder_s = _timed(lambda: tracker.encode_frames(frames[:1], chunk=1), repeats, sync)
    cache = tracker.encode_frames(frames)
    result = {"model": model, "image_size": image_size, "device": device, "bf16": settings.autocast,
              "threads": torch.get_num_threads(), "encoder_ms_per_frame": 1e3 * encoder_s,
              "feature_bytes_per_frame": cache.bytes_per_frame, "step": []}
    for batch in batches:
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        total = zeros + frames.shape[0]
        prompt = torch.zeros(batch, 1, image_size, image_size, device=device)
        prompt[..., image_size // 4: image_size // 2, image_size // 4: image_size // 2] = 1
        _, bank = tracker.start(cache.gather(zeros), prompt, zeros)
        for t in range(1, 17):  # fill the bank and the pointer history
            bank = tracker.step(cache.gather(zeros + t), bank, zeros + t, total).bank
        frame = zeros + 17
        features = cache.gather(frame)
        step_s = _timed(lambda: tracker.step(features, bank, frame, total), repeats, sync)
        result["step"].append({"batch": batch, "ms_per_step": 1e3 * step_s, "ms_per_transition": 1e3 * step_s / batch})
    return result


@torch.inference_mode()
def measure_env(model: str, image_size: int, batches: list[int], frames: int, device: str = "cpu",
                bf16: bool = False, steps: int = 20) -> dict:
    """Environment transitions per second with the FIFO policy, B episodes on one synthetic video
    of `frames` frames; the feature-cache build (image encoder, once per video) is timed apart."""
    settings = TrackerSettings(autocast=bf16 and device.startswith("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = Tracker.from_spec(ModelSpec(model, image_size=image_size, random_weights=True), device, settings)
    with tempfile.TemporaryDirectory() as folder:
        write_dataset(folder, 1, seed=0, num_frames=frames, size=image_size)
        video = VideoDataset(folder).sequences[0]
        track = [t for t in video.tracks() if t.object_id == 1]
        began = time.perf_counter()
        features = tracker.video_features(video)
        cache_s = time.perf_counter() - began
        result = {"model": model, "image_size": image_size, "frames": frames, "device": device,
                  "threads": torch.get_num_threads(), "cache_build_s": cache_s, "env": []}
        for batch in batches:
            env = SAM2MemoryEnv(tracker, [video], batch, CompositeReward(["iou"]), tracks=track, features=[features])
            env.reset()
            for _ in range(3):  # warm-up
                env.step(TensorDict({"action": env.fifo_action()}, batch_size=[batch]))
            began = time.perf_counter()
            done = 0
            for _ in range(steps):
                out = env.step(TensorDict({"action": env.fifo_action()}, batch_size=[batch]))
                done += batch
                finished = out["next", "done"]
                if bool(finished.any()):
                    env.reset(TensorDict({"_reset": finished}, batch_size=[batch]))
            seconds = time.perf_counter() - began
            result["env"].append({"batch": batch, "transitions_per_s": done / seconds})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2rl bench", description=__doc__)
    parser.add_argument("--model", default="sam2.1_hiera_t")
    parser.add_argument("--image-size", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--env", action="store_true", help="measure environment transitions/s instead")
    parser.add_argument("--frames", type=int, default=24, help="video length for --env")
    args = parser.parse_args(argv)
    if args.env:
        results = [measure_env(args.model, size, args.batch, args.frames, args.device, args.dtype == "bf16")
                   for size in args.image_size]
        table = Table(title=f"sam2rl bench --env — {args.model}, random weights, {args.device}, {torch.get_num_threads()} threads")
        for column in ("size", "frames", "cache build s", "B", "transitions/s"):
            table.add_column(column, justify="right")
        for r in results:
            for e in r["env"]:
                table.add_row(str(r["image_size"]), str(r["frames"]), f"{r['cache_build_s']:.1f}", str(e["batch"]),
                              f"{e['transitions_per_s']:.1f}")
        Console().print(table)
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1))
        return 0
    results = [measure(args.model, size, args.batch, args.device, args.dtype == "bf16", args.repeats)
               for size in args.image_size]
    table = Table(title=f"sam2rl bench — {args.model}, random weights, {args.device}, {torch.get_num_threads()} threads")
    for column in ("size", "encoder ms/frame", "feature KiB/frame", "B", "step ms", "ms/transition"):
        table.add_column(column, justify="right")
    for r in results:
        for s in r["step"]:
            table.add_row(str(r["image_size"]), f"{r['encoder_ms_per_frame']:.1f}", f"{r['feature_bytes_per_frame'] / 1024:.0f}",
                          str(s["batch"]), f"{s['ms_per_step']:.1f}", f"{s['ms_per_transition']:.1f}")
    Console().print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0
