"""What a recipe prints: Lightning's banners dropped (`sam2rl.tasks.quiet`), genuine warnings kept, and
no vmap fallback warning from the critic (PPO's advantages)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from tensordict import TensorDict

from sam2rl.agents.networks import make_actor_critic
from sam2rl.agents.ppo import PPOModule
from sam2rl.schema.agent import EncoderSettings, PPOSettings
from sam2rl.tasks.quiet import BANNERS, quiet_lightning


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_log():
    handler = _Collect()
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _trainer(tmp_path: Path) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=CSVLogger(str(tmp_path)), enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)


def test_lightning_banners_are_dropped_inside_only(tmp_path: Path, lightning_log: list[str]) -> None:
    _trainer(tmp_path)
    outside = list(lightning_log)
    assert any(m.startswith("GPU available") for m in outside)  # so the filter below is what removes them
    assert any("Tip" in m for m in outside)
    lightning_log.clear()
    with quiet_lightning():
        _trainer(tmp_path)
        rank_zero_info("Restoring states from the checkpoint path at x.ckpt")  # not a banner: kept
    assert lightning_log == ["Restoring states from the checkpoint path at x.ckpt"]
    lightning_log.clear()
    _trainer(tmp_path)  # the filter goes with the block
    assert any(m.startswith(BANNERS) for m in lightning_log)


def test_genuine_warnings_still_show() -> None:
    with quiet_lightning():
        with pytest.warns(UserWarning, match="GPU available but not used"):
            rank_zero_warn("GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`.")
        with pytest.warns(FutureWarning, match="something else"):
            warnings.warn("something else is deprecated", FutureWarning)


def test_leafspec_deprecation_from_lightning_is_hidden() -> None:
    from lightning.pytorch.utilities._pytree import _tree_flatten

    def flatten() -> list[warnings.WarningMessage]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _tree_flatten({"a": torch.zeros(1)})
        return [w for w in caught if "LeafSpec" in str(w.message)]

    if not flatten():
        pytest.skip("this torch/lightning pair raises no LeafSpec deprecation")

    def shown() -> bool:  # under the filters in force (entering catch_warnings resets the once-registry)
        with warnings.catch_warnings(record=True) as caught:
            _tree_flatten({"a": torch.zeros(1)})
        return any("LeafSpec" in str(w.message) for w in caught)

    assert shown()
    with quiet_lightning():
        assert not shown()
    assert shown()


def test_advantages_call_the_critic_without_the_vmap_fallback() -> None:
    torch.manual_seed(0)
    actor, critic = make_actor_critic(16, 4, 2, 6, EncoderSettings())
    module = PPOModule(actor, critic, lambda *args: None, PPOSettings(), iterations=1)
    batch, steps, slots = 4, 5, 9
    rollout = TensorDict({
        "tokens": torch.randn(batch, steps, slots, 16), "global": torch.randn(batch, steps, 4),
        "next": {"tokens": torch.randn(batch, steps, slots, 16), "global": torch.randn(batch, steps, 4),
                 "reward": torch.randn(batch, steps, 1), "done": torch.zeros(batch, steps, 1, dtype=torch.bool),
                 "terminated": torch.zeros(batch, steps, 1, dtype=torch.bool)}}, batch_size=[batch, steps])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            module.advantage(rollout)
    assert not [w for w in caught if "batching rule" in str(w.message)]
    with torch.no_grad():  # the same values as calling the critic on each half
        expected = critic(rollout.select("tokens", "global").clone())["state_value"]
    assert torch.allclose(rollout["state_value"], expected, atol=1e-6)
