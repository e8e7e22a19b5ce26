"""TorchRL environment: after every frame, decide what SAM 2's memory bank keeps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from sam2rl.datasets import Track, VideoSequence
from sam2rl.envs.observation import GLOBAL_FEATURES, TOKEN_FEATURES, observe, token_dim
from sam2rl.metrics import iou as mask_iou
from sam2rl.rewards import CompositeReward
from sam2rl.schema.agent import EpisodeSettings
from sam2rl.tracker import (FeatureMemory, Features, FeatureViews, Memories, Prediction, Tracker, ground_truth_masks,
                            rollout, video_features)
from sam2rl.tracker.bank import ActionLayout

__all__ = ["SAM2MemoryEnv", "TOKEN_FEATURES", "has_decisions"]


def has_decisions(track: Track, num_frames: int) -> bool:
    """Whether an episode on `track` (in a video of `num_frames`) has a decision to make: it needs
    the prompt frame, one frame whose memory is decided on, and one frame that rewards it."""
    return num_frames - track.prompt_frame >= 3


class _Track:
    """A track with its ground truth at model resolution and where its frames sit in the cache."""

    def __init__(self, track: Track, video: VideoSequence, offset: int, image_size: int):
        self.track = track
        self.offset = offset
        self.num_frames = video.num_frames
        self.gt = ground_truth_masks(video, [track], image_size)[0][0]  # [T, S, S]


class SAM2MemoryEnv(EnvBase):
    """B episodes of SAM 2 tracking stepped together; the agent edits each memory bank.

    Observation (`observation_spec`):
        tokens [B, N, C_mem + 10]   one token per anchor slot (A), recent slot (R) and the
                                    candidate memory of the frame just predicted, N = A + R + 1:
                                    spatially pooled memory features, then `TOKEN_FEATURES`:
                                    object-score logit / 10, predicted IoU, mask area relative to
                                    the prompt's, age in frames / track length, cosine
                                    similarity of its pooled features to the candidate's,
                                    validity, slot type (anchor / recent / candidate), recency
                                    rank / R. Nothing comes from the ground truth.
        global [B, 4]               `GLOBAL_FEATURES`: progress along the track (prompt
                                    frame to video end, in windows too), fraction of recent
                                    slots filled, the frame's object score / 10 and IoU.
        fifo_action [B, R + 2]      SAM 2's own action (fill the first empty slot, else evict the
                                    oldest), one-hot: a prior a policy can start from.
        action_mask [B, R + 2]      legal actions.
        info/iou, info/frame        IoU of the new prediction (for logging; not for policies),
                                    its frame, and the episode's track (index into `tracks`);
        info/fifo_iou               with `track_reference`: FIFO's IoU on the same frame.
        info/reward_terms/<label>   each reward term's unweighted value (for logging).
    Action: `Categorical(R + 2)`: 0 discard the candidate, k write it into recent slot k-1,
        R + 1 add it as an anchor (see `sam2rl.tracker.bank`).
    Reward: the recipe's `CompositeReward` on the prediction of the next frame, which the
        action influenced.
    End of episode: after the last frame of the window (or video) is predicted. `terminated`
        at the end of the video, `truncated` at the end of a shorter window.

    The banks live in the environment (not in the TensorDicts, which would copy every memory
    into each rollout); episodes of different tracks and videos share one batched tracker call,
    and the image features of each video are computed once and shared.
    """

    def __init__(self, tracker: Tracker, videos: Sequence[VideoSequence], batch_size: int,
                 reward: CompositeReward, episode: EpisodeSettings | None = None,
                 tracks: Sequence[Track] | None = None, features: Sequence[Features] | None = None,
                 feature_cache_dir: str | None = None, seed: int = 0, track_reference: bool = False):
        super().__init__(device=tracker.device, batch_size=torch.Size([batch_size]))
        self.tracker = tracker
        self.episode = episode = episode or EpisodeSettings()
        self.actions = ActionLayout.for_episodes(episode, tracker.settings.max_anchors)
        if batch_size % episode.group_size:
            raise ValueError(f"batch_size {batch_size} is not a multiple of episode.group_size {episode.group_size}")
        self.track_reference = track_reference
        """Also report the IoU SAM 2's FIFO rule gets on the same frame (`info/fifo_iou`), for logging
        the gain over FIFO; its run is computed once per (track, start frame) and cached."""
        self.reward = reward
        if features is None:  # one budget for all the videos
            memory = FeatureMemory(device=tracker.device)
            features = [video_features(tracker, v, cache_dir=feature_cache_dir, memory=memory) for v in videos]
        self.features = FeatureViews(list(features))  # each video's own features, not a copy
        offsets = self.features.offsets
        by_name = {v.name: (v, off) for v, off in zip(videos, offsets)}
        if tracks is None:  # every track that has a decision (an object first seen at the very end has none)
            tracks = [t for v in videos for t in v.tracks() if has_decisions(t, v.num_frames)]
        chosen = list(tracks)
        if not chosen:
            raise ValueError("SAM2MemoryEnv needs at least one track with a decision to make")
        unknown = sorted({t.sequence for t in chosen} - by_name.keys())
        if unknown:
            raise ValueError(f"tracks of {', '.join(unknown)}: not among the videos given ({', '.join(by_name)})")
        short = [f"{t.sequence}:{t.object_id} (prompt frame {t.prompt_frame} of {by_name[t.sequence][0].num_frames})"
                 for t in chosen if not has_decisions(t, by_name[t.sequence][0].num_frames)]
        if short:  # the first step would predict a frame past the end of the video
            raise ValueError(f"tracks {', '.join(short)}: an episode needs at least 3 frames from the prompt "
                             "(the prompt, one decision, one reward)")
        self.tracks = [_Track(t, by_name[t.sequence][0], by_name[t.sequence][1], tracker.image_size) for t in chosen]
        if episode.window is not None and episode.window < 3:
            raise ValueError(f"episode.window must be at least 3 frames (prompt, one decision, one reward), got {episode.window}")
        # per-track lookups as tensors, so a step indexes instead of looping over episodes
        self._feature_offset = torch.tensor([t.offset for t in self.tracks], device=self.device)
        self._track_length = torch.tensor([t.num_frames for t in self.tracks], device=self.device)
        self._prompt_frame = torch.tensor([t.track.prompt_frame for t in self.tracks], device=self.device)
        self._gt_all = torch.cat([t.gt for t in self.tracks]).to(self.device)  # [sum T, S, S]
        self._gt_offset = torch.cumsum(self._track_length, 0) - self._track_length
        self._references: dict[tuple[int, int], torch.Tensor] = {}  # FIFO's IoU per frame, per (track, start)
        self._needs_reference = "reference_iou" in reward.needs or track_reference
        # each episode's reference run, indexed by frame - start (filled at reset, read per step)
        self._episode_reference = torch.zeros(batch_size, int(self._track_length.max()), device=self.device)
        self.rng = torch.Generator().manual_seed(seed)
        self._build_specs()
        self._bank = tracker.new_bank(batch_size)
        dev = self.device
        self._track = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self._frame = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self._start = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self._end = torch.ones(batch_size, dtype=torch.long, device=dev)
        self._prediction: Prediction | None = None
        self._candidate: Memories | None = None

    @property
    def max_episode_steps(self) -> int:
        """Steps (decisions) of the longest episode: frames from the start to the end, less the start
        and the frame predicted at reset, `hold` frames a step."""
        window = self.episode.window
        frames = max((t.num_frames - t.track.prompt_frame) if window is None else
                     min(window, t.num_frames - t.track.prompt_frame) for t in self.tracks)
        return -(-(frames - 2) // self.actions.hold)

    # -- specs ---------------------------------------------------------------------------------

    def _build_specs(self) -> None:
        batch = self.batch_size[0]
        bank = self.tracker.new_bank(1)
        self.num_tokens = bank.anchors.valid.shape[1] + bank.num_recent + 1
        self.token_dim = token_dim(self.tracker)
        n_actions = bank.num_actions
        info = Composite(iou=Bounded(low=0.0, high=1.0, shape=(batch, 1), device=self.device),
                         frame=Unbounded(shape=(batch, 1), dtype=torch.long, device=self.device),
                         track=Unbounded(shape=(batch, 1), dtype=torch.long, device=self.device),
                         shape=(batch,), device=self.device)
        if self.track_reference:
            info["fifo_iou"] = Bounded(low=0.0, high=1.0, shape=(batch, 1), device=self.device)
        info["reward_terms"] = Composite({label: Unbounded(shape=(batch, 1), device=self.device) for label in self.reward.weights},
                                         shape=(batch,), device=self.device)
        self.observation_spec = Composite({
            "tokens": Unbounded(shape=(batch, self.num_tokens, self.token_dim), device=self.device),
            "global": Unbounded(shape=(batch, len(GLOBAL_FEATURES)), device=self.device),
            "fifo_action": Bounded(low=0.0, high=1.0, shape=(batch, n_actions), device=self.device),
            "action_mask": Binary(n=n_actions, shape=(batch, n_actions), dtype=torch.bool, device=self.device),
            "info": info,
        }, shape=(batch,), device=self.device)
        self.action_spec = Categorical(n_actions, shape=(batch,), device=self.device)
        self.reward_spec = Unbounded(shape=(batch, 1), device=self.device)
        flag = Categorical(2, shape=(batch, 1), dtype=torch.bool, device=self.device)
        self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(),
                                   shape=(batch,), device=self.device)

    # -- episodes ------------------------------------------------------------------------------

    def _set_seed(self, seed: int | None) -> None:
        self.rng.manual_seed(0 if seed is None else seed)

    def _sample_episodes(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        track = torch.randint(len(self.tracks), (count,), generator=self.rng)
        starts, ends = [], []
        for index in track.tolist():
            item = self.tracks[index]
            first = item.track.prompt_frame
            if self.episode.window is None:
                start, end = first, item.num_frames
            else:
                visible = [t for t in range(first, max(first + 1, item.num_frames - self.episode.window + 1))
                           if bool(item.gt[t].any())]
                start = visible[int(torch.randint(len(visible), (1,), generator=self.rng))]
                end = min(start + self.episode.window, item.num_frames)
            starts.append(start)
            ends.append(end)
        return track, torch.tensor(starts), torch.tensor(ends)

    def _index(self, rows: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Where frame `frame` of each episode in `rows` sits on the videos' joint frame axis (`FeatureViews`)."""
        return self._feature_offset[self._track[rows]] + frame

    def _gt(self, rows: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        return self._gt_all[self._gt_offset[self._track[rows]] + frame]

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        batch = self.batch_size[0]
        mask = None if tensordict is None else tensordict.get("_reset", None)
        rows = torch.arange(batch, device=self.device) if mask is None else mask.reshape(batch).nonzero()[:, 0]
        if rows.numel():
            self._start_rows(rows)
        return self._observe(iou=None)

    @torch.inference_mode()
    def _start_rows(self, rows: torch.Tensor) -> None:
        # the rows of a group start the same episode (track and start frame), so each is the others' baseline
        groups, member = torch.unique(rows.cpu() // self.episode.group_size, return_inverse=True)
        track, start, end = (x[member] for x in self._sample_episodes(groups.numel()))
        self._track[rows], self._start[rows], self._end[rows] = track.to(self.device), start.to(self.device), end.to(self.device)
        if self._needs_reference:
            self._load_references(rows)
        frame = start.to(self.device)
        prompt = self._gt(rows, frame)[:, None].float()
        _, bank = self.tracker.start(self.features.gather(self._index(rows, frame)), prompt, frame)
        full = self._bank.clone()
        full[rows] = bank
        self._bank = full
        self._frame[rows] = frame
        self._advance(rows)

    @torch.inference_mode()
    def _advance(self, rows: torch.Tensor) -> None:
        """Predict the next frame of `rows` and put its memory on the table."""
        frame = self._frame[rows] + 1
        features = self.features.gather(self._index(rows, frame))
        total = self._track_length[self._track[rows]]
        bank = self._bank[rows]
        prediction = self.tracker.predict(features, bank, frame, total)
        candidate = self.tracker.remember(features, prediction, prediction.sam_choice, frame)
        if self._prediction is None or rows.numel() == self.batch_size[0]:
            self._prediction, self._candidate = prediction, candidate
        else:
            self._prediction = self._prediction.clone()
            self._candidate = self._candidate.clone()
            self._prediction[rows] = prediction
            self._candidate[rows] = candidate
        self._frame[rows] = frame

    # -- step ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get("action").reshape(-1).long().to(self.device)
        mask = self._action_mask()
        legal = mask.gather(1, action[:, None])[:, 0]
        if not bool(legal.all()):
            bad = (~legal).nonzero()[:, 0].tolist()
            raise ValueError(f"illegal actions {action[bad].tolist()} for episodes {bad} (see action_mask)")
        batch = self.batch_size[0]
        followed_fifo = action == self._bank.fifo_action()
        rows = torch.arange(batch, device=self.device)
        reward = torch.zeros(batch, device=self.device)
        iou = torch.zeros(batch, device=self.device)
        reference = torch.zeros(batch, device=self.device) if self._needs_reference else None
        terms = {label: torch.zeros(batch, device=self.device) for label in self.reward.weights}
        for held in range(self.actions.hold):  # the decision, then its repeats on the next frames
            if held:
                rows = rows[self._frame[rows] < self._end[rows] - 1]  # episodes that have frames left
                if not rows.numel():
                    break
                action = self.actions.resume(self._bank[rows], action[rows] if rows.numel() < batch else action,
                                             followed_fifo[rows])
            frame_reward, frame_terms, iou[rows], frame_reference = self._track_frame(rows, action)
            reward[rows] += frame_reward
            for label, value in frame_terms.items():
                terms[label][rows] += value
            if reference is not None:
                reference[rows] = frame_reference
            action, followed_fifo = self._expand(action, rows, batch), self._expand(followed_fifo, rows, batch)
        frame = self._frame
        done = (frame >= self._end - 1)[:, None]
        at_video_end = self._track_length[self._track] - 1
        out = self._observe(iou=iou, fifo_iou=reference, terms=terms)
        out.update({"reward": reward[:, None].float(), "done": done,
                    "terminated": done & (frame == at_video_end)[:, None],
                    "truncated": done & (frame != at_video_end)[:, None]})
        return out

    @staticmethod
    def _expand(values: torch.Tensor, rows: torch.Tensor, batch: int) -> torch.Tensor:
        """Per-row values of `rows` back at their places in a batch-sized tensor (others: zero)."""
        if rows.numel() == batch:
            return values
        full = torch.zeros(batch, dtype=values.dtype, device=values.device)
        full[rows] = values
        return full

    def _track_frame(self, rows: torch.Tensor, action: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Apply `action` to the banks of `rows`, track their next frame and score it: (reward, reward
        terms, IoU, the reference run's IoU or None), one value per row of `rows`."""
        whole = rows.numel() == self.batch_size[0]
        bank = self._bank if whole else self._bank[rows]
        candidate = self._candidate if whole else self._candidate[rows]
        overwrote = (action >= 1) & (action <= bank.num_recent)
        slot = (action - 1).clamp(0, bank.num_recent - 1)
        overwrote &= bank.recent.valid.gather(1, slot[:, None])[:, 0]
        fifo_action = bank.fifo_action()
        bank = bank.apply(candidate, action).push_pointer(candidate.obj_ptr, candidate.frame)
        if whole:
            self._bank = bank
        else:
            full = self._bank.clone()
            full[rows] = bank
            self._bank = full
        self._advance(rows)
        frame = self._frame[rows]
        prediction = self._prediction if whole else self._prediction[rows]
        logits = prediction.chosen_high_res(prediction.sam_choice)
        gt = self._gt(rows, frame)
        track = self._track[rows]
        reward_input = TensorDict({
            "pred_mask": logits > 0, "pred_logits": logits, "gt_mask": gt,
            "object_score": prediction.object_score,
            "predicted_iou": self._candidate.iou if whole else self._candidate.iou[rows],
            "action": action, "fifo_action": fifo_action, "overwrote": overwrote, "frame": frame,
            "num_frames": self._track_length[track],
        }, batch_size=[rows.numel()])
        if self._needs_reference:
            reward_input["reference_iou"] = self._episode_reference[rows, frame - self._start[rows]]
        reward, terms = self.reward(reward_input)
        return reward, terms, mask_iou(logits > 0, gt), reward_input.get("reference_iou", None)

    def _load_references(self, rows: torch.Tensor) -> None:
        """Put the reference run of each new episode in `rows` where the step reads it."""
        episodes = zip(rows.tolist(), self._track[rows].tolist(), self._start[rows].tolist(), self._end[rows].tolist())
        for row, track, start, end in episodes:
            if (track, start) not in self._references:  # the end follows from the start
                self._references[(track, start)] = self._fifo_run(track, start, end)
            run = self._references[(track, start)]
            self._episode_reference[row, :run.numel()] = run

    @torch.inference_mode()
    def _fifo_run(self, track: int, start: int, end: int) -> torch.Tensor:
        """Per-frame IoU of SAM 2's own rule on this track over the episode's frames start..end-1."""
        item = self.tracks[track]
        frame = torch.tensor([start], device=self.device)
        total = torch.tensor([item.num_frames], device=self.device)
        first = int(self._gt_offset[track])
        gt = self._gt_all[first + start:first + end]
        _, bank = self.tracker.start(self.features.gather(item.offset + frame), gt[:1, None].float(), frame)
        ious = [torch.ones((), device=self.device)]
        for t, tracked in enumerate(rollout(self.tracker, self.features, bank, frame, total, steps=end - start - 1,
                                            offset=item.offset), start=1):
            ious.append(mask_iou(tracked.step.prediction.chosen_high_res(tracked.step.choice)[0] > 0, gt[t]))
        return torch.stack(ious)

    def _info(self, iou: torch.Tensor | None, fifo_iou: torch.Tensor | None,
              terms: dict[str, torch.Tensor] | None) -> TensorDict:
        ones = torch.ones(self.batch_size[0], device=self.device)
        if terms is None:  # a reset: no reward yet
            terms = {label: ones.new_zeros(ones.shape[0]) for label in self.reward.weights}
        info = {"iou": (ones if iou is None else iou)[:, None].float(), "frame": self._frame[:, None].clone(),
                "track": self._track[:, None].clone(),
                "reward_terms": {label: value[:, None].float() for label, value in terms.items()}}
        if self.track_reference:
            info["fifo_iou"] = (ones if fifo_iou is None else fifo_iou)[:, None].float()
        return TensorDict(info, batch_size=self.batch_size)

    def fifo_action(self) -> torch.Tensor:
        """SAM 2's own action for every episode (a reference policy)."""
        return self._bank.fifo_action()

    # -- observations --------------------------------------------------------------------------

    def _action_mask(self) -> torch.Tensor:
        return self.actions.mask(self._bank)

    def _observe(self, iou: torch.Tensor | None, fifo_iou: torch.Tensor | None = None,
                 terms: dict[str, torch.Tensor] | None = None) -> TensorDictBase:
        mask = self._action_mask()
        self.action_spec.update_mask(mask)
        # ages and progress relative to the whole track, as a trained agent sees them on a whole video
        track = self._track
        out = observe(self._bank, self._candidate, self._prediction, self._frame, self._prompt_frame[track],
                      self._track_length[track], mask)
        batch = self.batch_size[0]
        flag = torch.zeros(batch, 1, dtype=torch.bool, device=self.device)
        out.update({"info": self._info(iou, fifo_iou, terms), "done": flag, "terminated": flag.clone(), "truncated": flag.clone()})
        return out
