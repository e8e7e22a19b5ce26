"""A small memory task whose best schedule is a long stretch of identical non-FIFO decisions.

Three recent slots, 30 frames; the object is hidden on frames 7-22, so every memory of those
frames is bad. When it comes back (frame 23) the track is found again only if a recent slot still
holds a good memory; each later frame then scores 1 (else 0). SAM 2's rule writes every frame, so
after three hidden frames every slot is bad: FIFO scores 0. The best schedules keep a slot clean for
sixteen frames in a row (discard throughout, or write into the same slot throughout) and score 7.
The bank, its legal actions and held decisions are sam2rl's own (`MemoryBank`, `ActionLayout`).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from sam2rl.tracker.bank import ActionLayout, Memories, MemoryBank

FRAMES, HIDDEN, RECENT = 30, range(7, 23), 3
BEST_RETURN = float(FRAMES - HIDDEN.stop)  # frames 23..29 found
TOKEN_DIM, GLOBAL_DIM = 6, 4


class LongStretchEnv(EnvBase):
    """B episodes of the task (all from frame 0; rows in groups of `group_size` share nothing but that)."""

    def __init__(self, batch_size: int, actions: ActionLayout, group_size: int = 1, seed: int = 0):
        super().__init__(batch_size=torch.Size([batch_size]))
        self.actions, self.group_size = actions, group_size
        n = RECENT + 2
        self.observation_spec = Composite(
            tokens=Unbounded(shape=(batch_size, 1 + RECENT + 1, TOKEN_DIM)),
            **{"global": Unbounded(shape=(batch_size, GLOBAL_DIM))},
            fifo_action=Bounded(low=0.0, high=1.0, shape=(batch_size, n)),
            action_mask=Binary(n=n, shape=(batch_size, n), dtype=torch.bool), shape=(batch_size,))
        self.action_spec = Categorical(n, shape=(batch_size,))
        self.reward_spec = Unbounded(shape=(batch_size, 1))
        flag = Categorical(2, shape=(batch_size, 1), dtype=torch.bool)
        self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=(batch_size,))
        self.frame = torch.zeros(batch_size, dtype=torch.long)
        self.found = torch.zeros(batch_size, dtype=torch.bool)
        self.bank = self._empty(batch_size)

    @property
    def max_episode_steps(self) -> int:
        return -(-(FRAMES - 2) // self.actions.hold)

    @staticmethod
    def _empty(batch: int) -> MemoryBank:
        return MemoryBank.empty(batch, RECENT, 1, 1, (1, 1, 1), 1, torch.float32, "cpu")

    def _candidate(self) -> Memories:
        """The memory of the current frame: good (object score +1) unless the object is hidden."""
        batch = self.batch_size[0]
        memory = Memories.empty((batch,), (1, 1, 1), 1, torch.float32, "cpu")
        memory.frame = self.frame.clone()
        memory.valid = torch.ones(batch, dtype=torch.bool)
        hidden = (self.frame >= HIDDEN.start) & (self.frame < HIDDEN.stop)
        memory.object_score = torch.where(hidden, -1.0, 1.0)
        return memory

    def _observe(self) -> TensorDict:
        batch = self.batch_size[0]
        slots = torch.cat([self.bank.anchors, self.bank.recent, self._candidate().unsqueeze(1)], dim=1)
        kinds = torch.zeros(batch, RECENT + 2, 3)
        kinds[:, 0, 0], kinds[:, 1:-1, 1], kinds[:, -1, 2] = 1, 1, 1
        age = (self.frame[:, None] - slots.frame).float() / FRAMES * slots.valid
        tokens = torch.cat([torch.stack([slots.valid.float(), slots.object_score * slots.valid, age], -1), kinds], -1)
        global_ = torch.stack([self.frame.float() / FRAMES, self.bank.recent.valid.float().mean(1),
                               slots.object_score[:, -1], torch.zeros(batch)], -1)
        mask = self.actions.mask(self.bank)
        fifo = torch.nn.functional.one_hot(self.bank.fifo_action(), RECENT + 2).float()
        return TensorDict({"tokens": tokens, "global": global_, "fifo_action": fifo, "action_mask": mask},
                          batch_size=[batch])

    def _set_seed(self, seed: int | None) -> None:
        pass

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        batch = self.batch_size[0]
        mask = None if tensordict is None else tensordict.get("_reset", None)
        rows = torch.ones(batch, dtype=torch.bool) if mask is None else mask.reshape(batch)
        fresh = self._empty(batch)
        fresh.anchors.valid[:, 0] = True  # the prompt
        fresh.anchors.frame[:, 0] = 0
        fresh.anchors.object_score[:, 0] = 1.0
        bank = self.bank.clone()
        bank[rows] = fresh[rows]
        self.bank = bank
        self.frame[rows] = 1
        self.found[rows] = False
        out = self._observe()
        out.update({key: torch.zeros(batch, 1, dtype=torch.bool) for key in ("done", "terminated", "truncated")})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict["action"].reshape(-1).long()
        followed_fifo = action == self.bank.fifo_action()
        reward = torch.zeros(self.batch_size[0])
        for held in range(self.actions.hold):
            live = self.frame < FRAMES - 1
            if held:
                action = torch.where(live, self.actions.resume(self.bank, action, followed_fifo), action)
            applied = self.bank.apply(self._candidate(), torch.where(live, action, torch.zeros_like(action)))
            self.bank = applied
            self.frame = torch.where(live, self.frame + 1, self.frame)
            good = (self.bank.recent.valid & (self.bank.recent.object_score > 0)).any(dim=1)
            self.found |= live & (self.frame == HIDDEN.stop) & good
            reward += (live & (self.frame >= HIDDEN.stop) & self.found).float()
        done = (self.frame >= FRAMES - 1)[:, None]
        out = self._observe()
        out.update({"reward": reward[:, None], "done": done, "terminated": done.clone(),
                    "truncated": torch.zeros_like(done)})
        return out
