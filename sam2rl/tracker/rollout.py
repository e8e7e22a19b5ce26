"""The frame loop: B tracks carried from the frame their banks hold to the end of their videos.

Evaluation, the ground-truth oracle and search, SAM2Long's pathways, the predictor, tracker
pretraining, the benchmark and the environment's reference run all track frame after frame;
`rollout` is that loop, once. Callers hook in where they differ: how the candidate is chosen
(`choose`), what the bank does with the memory (`act`), the whole step (`step`, for SAM2Long's
pathways), and what they keep of each frame (they read what `rollout` yields, and may stop).
`RunRecorder` keeps what evaluation needs of each frame and makes `TrackRun`s of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch

from sam2rl.datasets import Track, VideoSequence
from sam2rl.tracker.bank import MemoryBank
from sam2rl.tracker.core import Tracker
from sam2rl.tracker.features import Features
from sam2rl.tracker.prediction import Actor, Chooser, Step, to_video_resolution

__all__ = ["RunRecorder", "StepFn", "TrackRun", "TrackedFrame", "rollout"]

StepFn = Callable[[torch.Tensor, MemoryBank], Step]
"""`step(frame [B], bank) -> Step`: one tracked frame, in place of `Tracker.step`."""


class TrackedFrame(NamedTuple):
    """One frame of a rollout."""

    frame: torch.Tensor  # [B] the frame just tracked (a row past its video's end repeats its last frame)
    inside: torch.Tensor  # [B] bool: the frame is inside the row's video
    step: Step


def rollout(tracker: Tracker, features: Features, bank: MemoryBank, start: torch.Tensor,
            num_frames: torch.Tensor, *, steps: int | None = None, choose: Chooser | None = None,
            act: Actor | None = None, step: StepFn | None = None,
            offset: torch.Tensor | int = 0) -> Iterator[TrackedFrame]:
    """Track the B rows of `bank` (which holds frame `start` [B]) forward, one `TrackedFrame` a frame.

    Runs `steps` frames, or fewer when every row has reached the last frame of its video
    (`num_frames` [B]); rows whose video ends earlier repeat their last frame (`inside` False).
    Without hooks each frame is SAM 2 itself (`Tracker.step`: highest predicted IoU, FIFO);
    `choose`/`act` replace its candidate choice and memory action, `step(frame, bank)` the whole
    frame. Frame t of row b is read from `features` at `offset[b] + t` (several videos in one cache).
    The loop does not switch autograd off: pretraining runs it with gradients.
    """
    last = num_frames.to(start.device) - 1
    remaining = last - start  # frames each row has left
    horizon = int(remaining.max()) if steps is None else min(steps, int(remaining.max()))
    for k in range(1, horizon + 1):
        frame = torch.minimum(start + k, last)
        if step is None:
            out = tracker.step(features.gather(offset + frame), bank, frame, num_frames, choose, act)
        else:
            out = step(frame, bank)
        bank = out.bank
        yield TrackedFrame(frame, k <= remaining, out)


@dataclass
class TrackRun:
    """One object tracked from its prompt frame to the end of the video."""

    track: Track
    masks: torch.Tensor  # [T', H, W] bool at video resolution, T' = frames from the prompt on
    object_score: torch.Tensor  # [T'] presence logit (prompt frame: from the mask)
    predicted_iou: torch.Tensor  # [T'] predicted IoU of the chosen candidate
    bank_frames: torch.Tensor  # [T', A + R] frames held in the bank after each frame (-1 empty)
    actions: torch.Tensor  # [T'-1] the controller's action after each tracked frame
    seconds: float  # tracking time of the batch this track was in, per track
    logits: torch.Tensor | None = None  # [T', 1, S/4, S/4] the chosen masks' low-res logits (masks: upsampled > 0)

    @property
    def frames(self) -> range:
        return range(self.track.prompt_frame, self.track.prompt_frame + self.masks.shape[0])


class RunRecorder:
    """What evaluation keeps of each frame of a batch of tracks (low-res logits, presence score,
    predicted IoU, bank contents, action), turned into `TrackRun`s once the batch is done."""

    def __init__(self, video: VideoSequence) -> None:
        self.video = video
        self.began = time.perf_counter()
        self._frames: list[tuple[torch.Tensor, ...]] = []
        self._actions: list[torch.Tensor] = []

    def prompt(self, low_res_logits: torch.Tensor, bank: MemoryBank) -> None:
        """The prompt frame: its mask's logits [B, 1, h, w] and the bank holding its anchor."""
        self._frames.append((low_res_logits, bank.anchors.object_score[:, 0], bank.anchors.iou[:, 0],
                             bank.slot_frames()))

    def add(self, step: Step) -> None:
        """A tracked frame (its rows may differ from the prompt's: see `runs`)."""
        self._frames.append((step.prediction.mask_logits(step.choice), step.prediction.object_score,
                             step.candidate.iou, step.bank.slot_frames()))
        self._actions.append(step.action)

    def runs(self, tracks: list[Track], rows: list[torch.Tensor] | None = None) -> list[TrackRun]:
        """One `TrackRun` per track; track i's frame t is row `rows[t][i]` of what frame t recorded
        (default: row i, every frame). One host copy per recorded quantity."""
        count = len(tracks)
        picks = [torch.arange(count)] * len(self._frames) if rows is None else rows
        logits, scores, ious, banks = (torch.stack([entry[q][pick.to(entry[q].device)] for entry, pick in
                                                    zip(self._frames, picks)], dim=1).cpu() for q in range(4))
        if self._actions:
            actions = torch.stack([a[pick.to(a.device)] for a, pick in zip(self._actions, picks[1:])], dim=1).cpu()
        else:
            actions = torch.zeros(count, 0, dtype=torch.long)
        height, width = self.video.height, self.video.width
        masks = [to_video_resolution(logits[i], height, width)[:, 0] > 0 for i in range(count)]
        seconds = (time.perf_counter() - self.began) / count
        return [TrackRun(track, masks[i], scores[i], ious[i], banks[i], actions[i], seconds, logits[i])
                for i, track in enumerate(tracks)]
