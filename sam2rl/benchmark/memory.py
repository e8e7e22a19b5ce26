"""`sam2rl bench --memory`: peak memory of tracking one long video with features on demand.

Each video length runs in a fresh process (a process's peak resident set never goes down), on a
synthetic video drawn frame by frame when the image encoder asks for it (no frame is kept): a
disc moving over a gradient, prompted with its mask on frame 0 and tracked by SAM 2 itself (FIFO)
through `rollout`, with its features in a `FeatureStore` under a small `FeatureBudget`.

What is measured is the bare frame loop: each frame's prediction is scored and dropped. A caller
that keeps its output (`track_video`'s `TrackRun`) holds more per frame; `caller_bytes_per_frame`
says how much, apart.

The child process runs with the allocator settings of sam2rl's console commands
(`reuse_freed_memory`). Two measures: the resident set's peak (what the operating system sees,
including free heap memory the allocator keeps, so it moves with fragmentation: a long video meets
a worse moment of it, with nothing more held), and the most the allocations held after any frame
(glibc's `mallinfo2`: heap in use plus mapped blocks, and the host features `off_heap_copy` keeps
outside the heap; exact, and what a leak would grow). For
each, the stated bound is the figure after the first `WARM_FRAMES` frames (imports, the model, the
encoder's and the step's working memory, the first features) plus the feature budget, and for the
resident set also the free memory glibc may keep at the top of its heap (`kept_free_bytes`; how much
of it the first frames happened to leave resident varies from process to process): figures that do
not depend on the video's length.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings

import torch

from sam2rl.memory_reuse import (freed_memory_reused, held_bytes, kept_free_bytes, peak_resident_bytes,
                                 reuse_freed_memory)
from sam2rl.tracker import FeatureBudget, FeatureMemory, FeatureStore, ModelSpec, Tracker, TrackerSettings, rollout

__all__ = ["measure_in_subprocess", "measure_memory"]

WARM_FRAMES = 16
"""Frames tracked before the warm peak is read (two chunks of the encoder, the bank filled)."""

_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def _disc(t: int, size: int) -> torch.Tensor:
    """[S, S] bool: the object on frame t (a disc going round the middle of the picture)."""
    angle = 2 * math.pi * t / 90
    cy, cx, radius = size * (0.5 + 0.25 * math.sin(angle)), size * (0.5 + 0.25 * math.cos(angle)), size / 8
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (y - cy) ** 2 + (x - cx) ** 2 <= radius**2


def synthetic_frame(t: int, size: int) -> torch.Tensor:
    """Frame t, [3, S, S] ImageNet-normalised float32, drawn when asked for."""
    ramp = torch.linspace(0.2, 0.8, size)
    image = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size),
                         torch.full((size, size), 0.5)])
    image = torch.where(_disc(t, size), torch.tensor([0.9, 0.2, 0.1])[:, None, None], image)
    return (image - _MEAN) / _STD


@torch.inference_mode()
def measure_memory(model: str, image_size: int, frames: int, device: str, budget: FeatureBudget,
                   bf16: bool = False) -> dict:
    """Track a `frames`-frame synthetic video in this process; its peak memory and the bound."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = Tracker.from_spec(ModelSpec(model, image_size=image_size, random_weights=True), device,
                                    TrackerSettings(autocast=bf16))
    cuda = tracker.device.type == "cuda"
    model_bytes = sum(p.numel() * p.element_size() for p in tracker.model.parameters())
    after_model = peak_resident_bytes()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    memory = FeatureMemory(budget, tracker.device)
    store = FeatureStore(tracker.model, lambda t: synthetic_frame(t, image_size), frames,
                         dtype=tracker.settings.feature_dtype, autocast=bf16, memory=memory)
    start = torch.zeros(1, dtype=torch.long, device=tracker.device)
    prompt = _disc(0, image_size)[None, None].float().to(tracker.device)
    began = time.perf_counter()
    _, bank = tracker.start(store.gather(start), prompt, start)
    warm_rss = warm_cuda = 0
    held: list[int] = []  # what the allocations hold after each frame (glibc), free heap memory not counted
    ious = []
    low = image_size // 4
    for k, tracked in enumerate(rollout(tracker, store, bank, start, torch.full_like(start, frames)), start=1):
        step = tracked.step
        predicted = step.prediction.mask_logits(step.choice)[0, 0] > 0
        truth = torch.nn.functional.interpolate(_disc(k, image_size)[None, None].float(), size=(low, low),
                                                mode="area")[0, 0].to(predicted.device) > 0.5
        union = (predicted | truth).sum()
        ious.append(float((predicted & truth).sum() / union) if union else 1.0)
        if (in_use := held_bytes()) is not None:
            held.append(in_use)
        if k == min(WARM_FRAMES, frames - 1):
            warm_rss = peak_resident_bytes()
            warm_cuda = torch.cuda.max_memory_allocated() if cuda else 0
    seconds = time.perf_counter() - began
    host_budget = (budget.device_mib + budget.host_mib if not cuda else budget.host_mib) * 2**20
    record = {
        "model": model, "image_size": image_size, "frames": frames, "device": str(tracker.device), "bf16": bf16,
        "threads": torch.get_num_threads(), "freed_memory_reused": freed_memory_reused(),
        "device_mib": budget.device_mib, "host_mib": budget.host_mib,
        "model_bytes": model_bytes, "feature_bytes_per_frame": store.bytes_per_frame,
        "frames_encoded": store.encoded_frames, "feature_bytes_held": memory.used_bytes,
        "rss_after_model_bytes": after_model, "rss_warm_bytes": warm_rss, "rss_peak_bytes": peak_resident_bytes(),
        "rss_kept_free_bytes": kept_free_bytes(), "rss_bound_bytes": warm_rss + host_budget + kept_free_bytes(),
        "held_warm_bytes": max(held[:WARM_FRAMES], default=None), "held_peak_bytes": max(held, default=None),
        "held_bound_bytes": max(held[:WARM_FRAMES]) + host_budget if held else None, "seconds": seconds, "mean_iou": sum(ious) / len(ious),
        # what track_video's TrackRun keeps per frame and track: the low-res logits (float32), score,
        # predicted IoU, bank contents, action; its masks at video resolution add H x W bytes more
        "caller_bytes_per_frame": low * low * 4 + 4 + 4 + 8 * (bank.num_recent + bank.anchors.valid.shape[1]) + 8,
    }
    if cuda:
        record.update(cuda_warm_bytes=warm_cuda, cuda_peak_bytes=torch.cuda.max_memory_allocated(),
                      cuda_bound_bytes=warm_cuda + budget.device_mib * 2**20)
    return record


def measure_in_subprocess(model: str, image_size: int, frames: int, device: str, budget: FeatureBudget,
                          bf16: bool = False, threads: int | None = None) -> dict:
    """`measure_memory` in a fresh Python process, so its peak is this video's alone."""
    command = [sys.executable, "-m", "sam2rl.benchmark.memory", "--model", model, "--image-size", str(image_size),
               "--frames", str(frames), "--device", device, "--device-mib", str(budget.device_mib),
               "--host-mib", str(budget.host_mib), *(["--bf16"] if bf16 else []),
               *(["--threads", str(threads)] if threads else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory benchmark for {frames} frames failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """One measurement, printed as a JSON line (what `measure_in_subprocess` runs)."""
    parser = argparse.ArgumentParser(prog="python -m sam2rl.benchmark.memory")
    parser.add_argument("--model", required=True)
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--device-mib", type=float, required=True)
    parser.add_argument("--host-mib", type=float, required=True)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    reuse_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    record = measure_memory(args.model, args.image_size, args.frames, args.device,
                            FeatureBudget(args.device_mib, args.host_mib), args.bf16)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
