"""Endless stream of short synthetic clips with a first-frame mask, for training the tracker."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from sam2.utils.misc import _load_img_as_tensor

from sam2rl.datasets.vos import normalize_image
from sam2rl.schema.pretrain import CurriculumStage
from sam2rl.synth import generate_video

__all__ = ["SyntheticClips", "TRAIN_SEED_BASE"]

TRAIN_SEED_BASE = 1 << 40
"""Training videos use seeds from here on; `sam2rl synth --seed S` (S < 10^7) never reaches them,
so evaluation on synth datasets is always on videos never seen in training."""


class SyntheticClips(torch.utils.data.IterableDataset):
    """Clips [L, 3, S, S] (sam2-normalised, JPEG round-trip as on disk) and masks [L, S, S] bool.

    Each generated video gives `clips_per_video` windows, each with a random visible object as
    the target (the target blob with probability `target_prob` when a distractor is visible too, else a
    look-alike distractor; the target whenever it is the only object visible).
    """

    def __init__(self, stages: Sequence[CurriculumStage], size: int = 128, video_frames: int = 48,
                 clips_per_video: int = 4, target_prob: float = 0.7, seed: int = 0, batch_size: int = 8):
        self.stages = list(stages)
        self.size = size
        self.video_frames = video_frames
        self.clips_per_video = clips_per_video
        self.target_prob = target_prob
        self.seed = seed
        self.batch_size = batch_size
        self.start_step = 0  # set when resuming, so the curriculum continues where it was

    def _stage(self, step: int) -> CurriculumStage:
        for stage in self.stages:
            if stage.until is None or step < stage.until:
                return stage
        return self.stages[-1]

    def _frames(self, frames: np.ndarray) -> torch.Tensor:
        out = []
        for frame in frames:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
            buffer.seek(0)
            out.append(_load_img_as_tensor(buffer, self.size)[0])
        return normalize_image(torch.stack(out))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        rng = np.random.default_rng([self.seed, worker, self.start_step])
        clips_made = 0
        while True:
            # DataLoader takes whole batches from the workers in turn: this worker's k-th batch is
            # global step start_step + k * workers + worker.
            stage = self._stage(self.start_step + (clips_made // self.batch_size) * workers + worker)
            names = sorted(stage.difficulty or {"medium": 1.0})
            weights = np.array([(stage.difficulty or {"medium": 1.0})[n] for n in names], dtype=float)
            difficulty = names[rng.choice(len(names), p=weights / weights.sum())]
            seed = TRAIN_SEED_BASE + int(rng.integers(1 << 40))
            frames, masks, _ = generate_video(seed, difficulty, self.video_frames, self.size)
            length = min(stage.clip_frames, self.video_frames)
            for _ in range(self.clips_per_video):
                start = int(rng.integers(0, self.video_frames - length + 1))
                ids = [i for i in np.unique(masks[start]) if i != 0]
                if not ids:
                    continue
                others = [i for i in ids if i != 1]
                target = 1 if 1 in ids and (not others or rng.random() < self.target_prob) else int(rng.choice(others))
                window = slice(start, start + length)
                yield self._frames(frames[window]), torch.from_numpy(masks[window] == target)
                clips_made += 1
