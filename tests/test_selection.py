"""KeepBestGreedy: the iterate with the best greedy score is the one that is kept, also across a resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from sam2rl.agents.selection import KeepBestGreedy


class FakeModule:
    def __init__(self) -> None:
        self.actor = torch.nn.Linear(2, 1)
        self.logged: list[tuple[str, float]] = []

    def log(self, key: str, value: float) -> None:
        self.logged.append((key, value))


def _train(callback: KeepBestGreedy, module: FakeModule, epochs: range, max_epochs: int) -> None:
    callback.on_train_start(None, module)
    for epoch in epochs:
        with torch.no_grad():
            module.actor.weight.fill_(float(epoch + 1))  # a recognisable iterate
        callback.on_train_epoch_end(SimpleNamespace(current_epoch=epoch, max_epochs=max_epochs), module)
    callback.on_fit_end(None, module)


def test_best_iterate_is_restored_and_checked_every_n() -> None:
    scores = iter([0.50, 0.55, 0.70, 0.60])  # before training, after 2, 4 and 5 (the last) iterations
    module = FakeModule()
    bests = []  # (iteration, score, the actor's weight when it was the best)
    callback = KeepBestGreedy(lambda actor: next(scores), every=2,
                              on_best=lambda actor, i, value: bests.append((i, value, float(actor.weight[0, 0]))))
    _train(callback, module, range(5), max_epochs=5)
    assert [i for i, _ in callback.history] == [0, 2, 4, 5]
    assert callback.best_iteration == 4
    assert [(i, value) for i, value, _ in bests] == [(0, 0.50), (2, 0.55), (4, 0.70)]  # not after 5: 0.60 is no new best
    assert [weight for _, _, weight in bests[1:]] == [2.0, 4.0]  # called while the actor holds the best weights
    assert torch.all(module.actor.weight == 4.0)  # the weights after iteration 4, not the last ones
    assert [key for key, _ in module.logged] == ["select/greedy_quality"] * 3


def test_nothing_beats_the_start_keeps_the_start() -> None:
    scores = iter([0.6, 0.6, 0.5])
    module = FakeModule()
    with torch.no_grad():
        module.actor.weight.fill_(-1.0)
    callback = KeepBestGreedy(lambda actor: next(scores), every=1)
    _train(callback, module, range(2), max_epochs=2)
    assert callback.best_iteration == 0 and torch.all(module.actor.weight == -1.0)  # ties keep the earlier


def test_state_survives_a_resume() -> None:
    first = KeepBestGreedy(lambda actor: 0.9, every=1)
    module = FakeModule()
    _train(first, module, range(1), max_epochs=3)  # interrupted after one iteration
    resumed = KeepBestGreedy(lambda actor: 0.1, every=1)
    resumed.load_state_dict(first.state_dict())
    _train(resumed, module, range(1, 3), max_epochs=3)
    assert resumed.best_iteration == 0 and [i for i, _ in resumed.history] == [0, 1, 2, 3]


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every must be >= 1"):
        KeepBestGreedy(lambda actor: 0.0, every=0)


class _Worsening(L.LightningModule):
    """Each iteration adds 1 to the actor's weight; the score prefers it small, so the start is best."""

    def __init__(self) -> None:
        super().__init__()
        self.actor = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.actor.weight)
        self.automatic_optimization = False

    def train_dataloader(self) -> list[int]:
        return [0]

    def training_step(self, batch: int, batch_idx: int) -> None:
        optimiser = self.optimizers()
        optimiser.zero_grad()
        self.manual_backward(-self.actor.weight.sum())
        optimiser.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.actor.parameters(), lr=1.0)


def test_resuming_a_finished_run_still_restores_the_best(tmp_path: Path) -> None:
    """A run stopped after its last checkpoint but before its agent was written resumes at the end:
    Lightning runs no iteration (and skips on_train_end), and the kept weights must still be the best."""

    def fit(ckpt: Path | None) -> tuple[KeepBestGreedy, _Worsening]:
        selection, module = KeepBestGreedy(lambda actor: -float(actor.weight), every=1), _Worsening()
        trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[selection, ModelCheckpoint(dirpath=tmp_path, save_last=True)])
        trainer.fit(module, ckpt_path=ckpt)
        return selection, module

    selection, module = fit(None)
    assert selection.best_iteration == 0 and float(module.actor.weight) == 0.0
    selection, module = fit(tmp_path / "last.ckpt")  # holds the weights after iteration 3
    assert selection.best_iteration == 0 and float(module.actor.weight) == 0.0
