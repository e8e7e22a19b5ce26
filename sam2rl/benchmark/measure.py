"""The measurements behind `sam2rl bench`: the plain SAM 2 loop, our environment, the tracker's parts.

Speed does not depend on the weights, so every measurement uses seeded random weights and a
synthetic video written by `sam2rl.synth` (the same video and weights for every contender).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median_high

import torch
from tensordict import TensorDict
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from sam2rl.datasets import VideoDataset, VideoSequence
from sam2rl.envs import SAM2MemoryEnv
from sam2rl.memory_reuse import peak_resident_bytes
from sam2rl.rewards import CompositeReward
from sam2rl.synth import write_dataset
from sam2rl.tracker import ModelSpec, Tracker, TrackerSettings, build_sam2_video_predictor, rollout, video_features

__all__ = ["BenchSetup", "EnvRollout", "NaiveLoop", "PeakMemory", "count_flops", "interleaved", "measure_parts",
           "synthetic_video"]


@dataclass(frozen=True)
class BenchSetup:
    """One model on one device; every contender in a run shares it."""

    model: str = "sam2.1_hiera_t"
    image_size: int = 256
    device: str = "cpu"
    bf16: bool = False
    threads: int = field(default_factory=torch.get_num_threads)
    compile: bool = False
    """Our tracker under `torch.compile` (`TrackerSettings.compile`); the naive loop stays plain."""

    def describe(self) -> dict:
        """What every record measured under this setup carries."""
        return {"model": self.model, "image_size": self.image_size, "device": self.device, "bf16": self.bf16,
                "compiled": self.compile, "threads": self.threads}

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.model, image_size=self.image_size, random_weights=True)

    def tracker(self) -> Tracker:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Tracker.from_spec(self.spec, self.device, TrackerSettings(autocast=self.bf16, compile=self.compile))

    @contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16):
            yield

    def synchronize(self) -> None:
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize()


class PeakMemory:
    """Peak memory over a block: CUDA's allocator peak on GPU, resident set size (sampled every
    5 ms from /proc) on CPU, where `ru_maxrss` would only give the whole process's peak."""

    def __init__(self, device: str):
        self.cuda = torch.device(device).type == "cuda"
        self.peak_bytes = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # not Linux: the process-wide peak is the best available
            return peak_resident_bytes()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_bytes = max(self.peak_bytes, self._rss())

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak_bytes = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, self._rss())


def _sdpa_cpu_flops(query, key, value, *args, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


# torch's counter knows the CUDA attention kernels; the CPU one would count as zero.
_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops}


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (matmuls, convolutions, attention). Compiled modules run
    eagerly here (torch.compile does not trace under the counter); the arithmetic is the same."""
    with torch.compiler.set_stance("force_eager"), \
            FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        fn()
    return counter.get_total_flops()


def synthetic_video(folder: str | Path, frames: int, size: int) -> VideoSequence:
    """One medium synthetic video (seed 0) of `frames` frames at `size` px, in DAVIS layout."""
    write_dataset(folder, 1, seed=0, num_frames=frames, size=size)
    return VideoDataset(folder).sequences[0]


class NaiveLoop:
    """The loop a SAM 2 user writes: `SAM2VideoPredictor.init_state` on the frame folder, a mask
    prompt on frame 0, `propagate_in_video` (image encoder per frame, one episode at a time).
    Frame loading (`init_state`) is timed apart; one short warm-up episode runs first. A window
    is one whole episode."""

    def __init__(self, setup: BenchSetup, video: VideoSequence):
        self.setup = setup
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.predictor = build_sam2_video_predictor(setup.spec, setup.device)
        self.mask = torch.from_numpy(video.object_mask(0, 1))
        self.transitions = video.num_frames - 1
        with self._quiet():
            began = time.perf_counter()
            self.state = self.predictor.init_state(str(video.frame_paths[0].parent))
            self.frame_load_s = time.perf_counter() - began
            self.predictor.add_new_mask(self.state, 0, 1, self.mask)
            for _ in self.predictor.propagate_in_video(self.state, max_frame_num_to_track=3):
                pass

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        # sam2's predictor draws tqdm progress bars on stderr for every call; they would bury the table.
        with torch.inference_mode(), self.setup.autocast(), contextlib.redirect_stderr(io.StringIO()):
            yield

    def window(self) -> float:
        """Transitions per second of one episode."""
        with self._quiet():
            self.predictor.reset_state(self.state)
            self.setup.synchronize()
            began = time.perf_counter()
            self.predictor.add_new_mask(self.state, 0, 1, self.mask)
            for _ in self.predictor.propagate_in_video(self.state):
                pass
            self.setup.synchronize()
        return self.transitions / (time.perf_counter() - began)

    def figures(self, transitions_per_s: float) -> dict:
        """What goes with the measured rate in the report (nothing of the loop's depends on it)."""
        return {"frame_load_s": self.frame_load_s}


class EnvRollout:
    """`SAM2MemoryEnv` with B parallel episodes on the video, FIFO actions, IoU reward, banks
    already full. A window is `steps` steps (episodes that end are reset and counted). The
    feature cache (image encoder once per frame) is built and timed apart."""

    @torch.inference_mode()
    def __init__(self, setup: BenchSetup, video: VideoSequence, batch: int, steps: int = 20,
                 tracker: Tracker | None = None):
        self.setup, self.batch, self.steps, self.frames = setup, batch, steps, video.num_frames
        tracker = tracker or setup.tracker()
        began = time.perf_counter()
        self.features = video_features(tracker, video)
        for start in range(0, video.num_frames, self.features.chunk):  # every frame now, timed apart from the steps
            self.features.gather(torch.arange(start, min(start + self.features.chunk, video.num_frames)))
        setup.synchronize()
        self.cache_build_s = time.perf_counter() - began
        track = [t for t in video.tracks() if t.object_id == 1]
        self.env = SAM2MemoryEnv(tracker, [video], batch, CompositeReward(["iou"]), tracks=track,
                                 features=[self.features])
        self.env.reset()
        for _ in range(min(16, video.num_frames - 2)):  # fill banks and pointer histories
            self._step()
        self.flops_per_transition = count_flops(self._step) / batch

    def _step(self) -> None:
        out = self.env.step(TensorDict({"action": self.env.fifo_action()}, batch_size=[self.batch]))
        finished = out["next", "done"]
        if bool(finished.any()):
            self.env.reset(TensorDict({"_reset": finished}, batch_size=[self.batch]))

    @torch.inference_mode()
    def window(self) -> float:
        """Transitions per second over `steps` steps."""
        self.setup.synchronize()
        began = time.perf_counter()
        for _ in range(self.steps):
            self._step()
        self.setup.synchronize()
        return self.batch * self.steps / (time.perf_counter() - began)

    def figures(self, transitions_per_s: float) -> dict:
        return {"batch": self.batch, "frames": self.frames, "cache_build_s": self.cache_build_s,
                "cache_bytes_per_frame": self.features.bytes_per_frame,
                "flops_per_transition": self.flops_per_transition,
                "achieved_tflops": self.flops_per_transition * transitions_per_s / 1e12}


Contender = NaiveLoop | EnvRollout


def interleaved(setup: BenchSetup, contenders: list[Contender], windows: int = 3) -> list[dict]:
    """Each contender's figures with its median transitions per second over `windows` windows and
    the peak memory while it ran: the whole process's (resident set on CPU, CUDA allocator peak on
    GPU), so the memory the other contenders keep alive is included.
    The contenders take turns window by window, so a spell in which a shared machine runs slow
    falls on all of them instead of on whichever was being timed."""
    rates: list[list[float]] = [[] for _ in contenders]
    peaks = [0] * len(contenders)
    for _ in range(windows):
        for i, contender in enumerate(contenders):
            with PeakMemory(setup.device) as memory:
                rates[i].append(contender.window())
            peaks[i] = max(peaks[i], memory.peak_bytes)
    results = []
    for contender, rate, peak in zip(contenders, rates, peaks):
        median = median_high(rate)
        results.append({**contender.figures(median), "transitions_per_s": median, "window_transitions_per_s": rate,
                        "peak_memory_bytes": peak})
    return results


def _timed(fn: Callable[[], object], repeats: int, setup: BenchSetup) -> float:
    """Median seconds of `fn` over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        setup.synchronize()
        start = time.perf_counter()
        fn()
        setup.synchronize()
        times.append(time.perf_counter() - start)
    return median_high(times)


@torch.inference_mode()
def measure_parts(setup: BenchSetup, batches: list[int], repeats: int = 5) -> dict:
    """ms per frame of the image encoder (one frame per call, as `SAM2VideoPredictor` runs it) and
    ms per call of one batched tracking step (memory attention + heads + memory encoder) with
    full banks (prompt anchor + 6 recent memories + 15 pointers), for each batch size, with the
    operators that take most of the step's time (`top_ops`)."""
    tracker = setup.tracker()
    size = setup.image_size
    frames = torch.randn(24, 3, size, size, device=setup.device)
    encoder_s = _timed(lambda: tracker.encode_frames(frames[:1], chunk=1), repeats, setup)
    cache = tracker.encode_frames(frames)
    result = {"encoder_ms_per_frame": 1e3 * encoder_s, "feature_bytes_per_frame": cache.bytes_per_frame, "step": []}
    for batch in batches:
        zeros = torch.zeros(batch, dtype=torch.long, device=setup.device)
        total = zeros + frames.shape[0]
        prompt = torch.zeros(batch, 1, size, size, device=setup.device)
        prompt[..., size // 4: size // 2, size // 4: size // 2] = 1
        _, bank = tracker.start(cache.gather(zeros), prompt, zeros)
        for tracked in rollout(tracker, cache, bank, zeros, total, steps=16):
            bank = tracked.step.bank
        frame = zeros + 17
        features = cache.gather(frame)
        step_s = _timed(lambda: tracker.step(features, bank, frame, total), repeats, setup)
        result["step"].append({"batch": batch, "ms_per_step": 1e3 * step_s, "ms_per_transition": 1e3 * step_s / batch,
                               "top_ops": _top_ops(lambda: tracker.step(features, bank, frame, total), repeats, setup)})
    return result


def _top_ops(fn: Callable[[], object], repeats: int, setup: BenchSetup, top: int = 8) -> list[dict]:
    """The `top` operators (by name and input shapes) that take the most self time over `repeats`
    calls of `fn`: device time on CUDA, CPU time otherwise; where a step's time goes."""
    cuda = torch.device(setup.device).type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities, record_shapes=True) as profiler:
        for _ in range(repeats):
            fn()
        setup.synchronize()
    events = profiler.key_averages(group_by_input_shape=True)
    self_us = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    total = sum(self_us(e) for e in events) or 1
    costly = sorted(events, key=self_us, reverse=True)[:top]
    return [{"op": e.key, "input_shapes": [list(shape) for shape in e.input_shapes if shape],
             "share": self_us(e) / total, "ms_per_step": self_us(e) / 1e3 / repeats} for e in costly]
