"""A greedy ground-truth oracle: the best action by a look-ahead, an upper reference and a teacher."""

from __future__ import annotations

import torch

from sam2rl.controllers.base import Controller
from sam2rl.controllers.registry import register_controller
from sam2rl.controllers.ground_truth import BatchCycle, IoUTally
from sam2rl.datasets import Track, VideoSequence, group_by_prompt_frame
from sam2rl.tracker import (
    Features, Memories, MemoryBank, Prediction, Tracker, ground_truth_masks, rollout, video_features,
)

__all__ = ["OracleController"]


@register_controller("oracle")
class OracleController(Controller):
    """Greedy one-step oracle with ground truth (an upper reference for memory rules, not a method
    from the literature).

    At each frame t it tries every legal action of every track (the B tracks expanded to
    B * num_actions rows of one batch), tracks `lookahead` (3; None: to the end of the video)
    frames ahead with SAM 2's own rule (highest predicted IoU, FIFO) or with `continuation`, and
    takes the action with the best mean IoU between the predicted masks (`high_res_masks > 0`)
    and the ground truth at model resolution over frames t+1..t+lookahead (annotated frames
    before `num_frames` only; an empty prediction on an empty ground truth scores 1). Ties, and
    frames with nothing left to look at, go to the default action: FIFO's, or `continuation`'s
    own; so do wins of at most `margin` (a teacher whose departures from FIFO are clear wins, for
    imitation across videos).

    With a `continuation` policy pi and `lookahead=None` this is one step of policy iteration by
    rollouts: every action is scored by following pi to the end, so the oracle's run is at least
    as good as pi's own on the same track (the tracker is deterministic). The continuation must
    keep no per-episode state (a trained agent does not): each look-ahead only calls its
    `begin_episode` with the rows' episode starts.
    The frame is read from `candidate.frame`. `last_scores` ([B, num_actions], -inf where
    illegal) keeps the look-ahead objective of the last decision.

    Build it with `OracleController.for_video(tracker, video, ...)` (or `make_controller("oracle")`
    then `bind_video(tracker, video, ...)` per video): ground truth for `track_video`'s batches,
    in its order. Or give `tracker`, `features`, `gt_masks` ([B, T, S, S] bool at model input
    size) for one batch of B tracks. The ground truth costs T * S^2 bytes per track.
    """

    def __init__(self, tracker: Tracker | None = None, features: Features | None = None,
                 gt_masks: torch.Tensor | list[torch.Tensor] | None = None, *, lookahead: int | None = 3,
                 num_frames: int | None = None, annotated: torch.Tensor | list[torch.Tensor] | None = None,
                 allow_anchor: bool = True, margin: float = 0.0, continuation: Controller | None = None) -> None:
        if lookahead is not None and lookahead < 1:
            raise ValueError(f"oracle: lookahead must be >= 1, got {lookahead}")
        if margin < 0:
            raise ValueError(f"oracle: margin must be >= 0, got {margin}")
        self.tracker = tracker
        self.features = features
        groups = [] if gt_masks is None else [gt_masks] if isinstance(gt_masks, torch.Tensor) else list(gt_masks)
        if annotated is None:
            marks = [torch.ones(g.shape[:2], dtype=torch.bool) for g in groups]
        else:
            marks = [annotated] if isinstance(annotated, torch.Tensor) else list(annotated)
        self._batches = BatchCycle("oracle: ground truth", list(zip(groups, marks)), [g.shape[0] for g in groups])
        self.lookahead = lookahead
        self.num_frames = num_frames
        self.allow_anchor = bool(allow_anchor)
        self.margin = float(margin)
        self.continuation = continuation
        self._start: torch.Tensor | None = None
        self._gt: torch.Tensor | None = None
        self._annotated: torch.Tensor | None = None
        self.last_scores: torch.Tensor | None = None

    @classmethod
    def for_video(cls, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                  features: Features | None = None, **options: object) -> OracleController:
        """An oracle for `track_video(tracker, video, oracle, tracks, features)`."""
        return cls(**options).bind_video(tracker, video, tracks, features)

    def bind_video(self, tracker: Tracker, video: VideoSequence, tracks: list[Track] | None = None,
                   features: Features | None = None) -> OracleController:
        """Take the tracker, features and ground truth of `video`: one batch per prompt frame, in
        the order `track_video` runs them (for a runner that builds controllers by name)."""
        tracks = video.tracks() if tracks is None else tracks
        self.tracker = tracker
        self.features = video_features(tracker, video) if features is None else features
        groups = group_by_prompt_frame(tracks)
        self._batches = BatchCycle("oracle: ground truth", [ground_truth_masks(video, group, tracker.image_size) for group in groups],
                                   [len(group) for group in groups])
        self.num_frames = video.num_frames
        self._gt, self._annotated = None, None
        return self

    def reset(self, batch_size: int) -> None:
        if not self._batches:
            raise RuntimeError("oracle: no ground truth; build it with OracleController.for_video(...), call "
                               "bind_video(tracker, video) or pass tracker, features and gt_masks")
        self._gt, self._annotated = self._batches.next(batch_size)

    def begin_episode(self, start_frame: torch.Tensor, num_frames: torch.Tensor) -> None:
        self._start = start_frame  # the continuation's episodes start where the real ones did

    @torch.inference_mode()
    def act(self, prediction: Prediction, candidate: Memories, bank: MemoryBank) -> torch.Tensor:
        if self._gt is None:
            self.reset(candidate.batch_size[0])
        tracker, features = self.tracker, self.features
        if tracker is None or features is None:
            raise RuntimeError("oracle: needs the tracker and the video features")
        batch, num_actions = candidate.batch_size[0], bank.num_actions
        device = candidate.frame.device
        num_frames = features.num_frames if self.num_frames is None else self.num_frames
        legal = bank.action_mask(allow_anchor=self.allow_anchor)
        follow = self.continuation
        if follow is None:
            default, choose, act = bank.fifo_action(), None, None
        else:
            if self._start is None:
                raise RuntimeError("oracle: begin_episode() must be called before act() when it has a continuation")
            follow.begin_episode(self._start, torch.full_like(self._start, num_frames))
            default, choose, act = follow.act(prediction, candidate, bank), follow.choose, follow.act

        rows = torch.arange(batch, device=device).repeat_interleave(num_actions)
        actions = torch.arange(num_actions, device=device).repeat(batch)
        actions = torch.where(legal.flatten(), actions, default[rows])  # illegal rows: scored -inf below
        expanded = candidate[rows]
        trial = bank[rows].apply(expanded, actions).push_pointer(expanded.obj_ptr, expanded.frame)
        start = candidate.frame[rows]
        total = torch.full_like(start, num_frames)
        gt_rows = rows.cpu()
        tally = IoUTally(rows.shape[0])
        if follow is not None:
            follow.begin_episode(self._start[rows], total)
        for tracked in rollout(tracker, features, trial, start, total, steps=self.lookahead, choose=choose, act=act):
            frame = tracked.frame.cpu()
            tally.add(tracked.step, self._gt[gt_rows, frame], tracked.inside.cpu() & self._annotated[gt_rows, frame])
        score = tally.mean().view(batch, num_actions)
        score = score.masked_fill(~legal.cpu(), float("-inf"))
        self.last_scores = score
        best = score.max(dim=1).values
        default_cpu = default.cpu()
        default_score = score[torch.arange(batch), default_cpu]
        choice = torch.where(default_score >= best - max(self.margin, 1e-9), default_cpu, score.argmax(dim=1))
        return choice.to(device)
