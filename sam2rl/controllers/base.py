"""The controller interface: what every memory rule (heuristic, oracle, learned agent) implements."""

from __future__ import annotations

import torch

from sam2rl.datasets import Track, VideoSequence
from sam2rl.errors import InputError
from sam2rl.tracker import Features, Memories, MemoryBank, Prediction, Tracker

__all__ = ["Controller", "ControllerError"]


class ControllerError(InputError, ValueError):
    """A controller that cannot be built (unknown name, options it does not take) or whose decision
    broke the tracker (e.g. an action outside [0, N]); names the controller (and sequence, frame)."""


class Controller:
    """Decides, for B tracks after each frame, which candidate mask is the prediction and what
    the memory bank does with the frame's memory (an action, see `sam2rl.tracker.bank`).

    Controllers hold per-episode state only; `reset` starts B new episodes.
    """

    name = "controller"
    max_anchors = 1
    """Anchor slots this rule may use (the tracker's bank must have at least as many)."""
    heuristic = False
    """True for the published hand-written rules (SAMURAI, DAM4SAM, SAM2Long): what SAM2RL's headline
    compares an agent with. SAM 2's own rule is the reference itself; the random rule is a floor;
    the oracle and the search read the ground truth, so they are upper references."""

    def reset(self, batch_size: int) -> None:
        """Forget per-episode state; called before the prompt frame of B new tracks."""

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: Features | None = None) -> Controller:
        """Hook for rules that need the whole video (the oracle reads its ground truth)."""
        return self

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        """Where the B episodes start (prompt frames) and their videos' lengths; after `reset`."""

    def choose(self, prediction: Prediction, bank: MemoryBank) -> torch.Tensor:
        """[B] index of the multimask candidate that becomes the prediction (SAM 2's by default)."""
        return prediction.sam_choice

    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        """[B] action on the candidate memory of this frame."""
        raise NotImplementedError
