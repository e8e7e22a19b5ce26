"""One device setting: the tracker sits where Lightning puts this process (srun, torchrun, Lightning's
launcher), bf16 defaults to on for CUDA, and one override selects an official model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2rl.schema.agent import AgentRecipe
from sam2rl.schema.recipe import RecipeError, load_recipe
from sam2rl.tasks import agent as agent_task
from sam2rl.tasks.agent import tracker_device

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "overfit.yaml"
CLUSTER_VARIABLES = ("SLURM_NTASKS", "SLURM_NTASKS_PER_NODE", "SLURM_LOCALID", "SLURM_PROCID", "SLURM_NODEID",
                     "SLURM_JOB_NAME", "LOCAL_RANK", "RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID")


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_cpu_runs_stay_on_the_cpu() -> None:
    assert tracker_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert tracker_device("auto") == torch.device("cpu")


def test_a_single_gpu_process_takes_gpu_0() -> None:
    assert tracker_device("gpu") == torch.device("cuda", 0)


def test_srun_processes_take_their_slurm_local_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """srun sets SLURM_LOCALID, not LOCAL_RANK: a bare LOCAL_RANK lookup put every process on cuda:0."""
    monkeypatch.setattr("lightning.fabric.plugins.environments.slurm._is_srun_used", lambda: True)
    for name, value in {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4", "SLURM_LOCALID": "3",
                        "SLURM_PROCID": "3", "SLURM_NODEID": "0", "SLURM_JOB_NAME": "train"}.items():
        monkeypatch.setenv(name, value)
    assert tracker_device("gpu") == torch.device("cuda", 3)


def test_torchrun_and_lightning_processes_take_their_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "2")  # Lightning's own launcher
    assert tracker_device("cuda") == torch.device("cuda", 2)
    monkeypatch.setattr(torch.distributed, "is_torchelastic_launched", lambda: True)
    for name, value in {"RANK": "5", "GROUP_RANK": "1", "LOCAL_WORLD_SIZE": "4", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    assert tracker_device("gpu") == torch.device("cuda", 1)


def test_bf16_follows_the_device_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    monkeypatch.setattr(agent_task.Tracker, "from_spec", lambda spec, device, settings: built.append((device, settings)))
    for overrides, device, autocast in [([], "cpu", False), (["trainer.accelerator=gpu"], "cuda:0", True),
                                        (["trainer.accelerator=gpu", "model.bf16=false"], "cuda:0", False),
                                        (["model.bf16=true"], "cpu", True)]:
        agent_task._tracker(load_recipe(RECIPE, AgentRecipe, overrides))
        assert (str(built[-1][0]), built[-1][1].autocast) == (device, autocast), overrides


def test_one_override_selects_an_official_model() -> None:
    model = load_recipe(RECIPE, AgentRecipe, ["model=sam2.1_hiera_l"]).model
    assert (model.name, model.image_size, model.checkpoint, model.bf16) == ("sam2.1_hiera_l", None, None, None)
    assert load_recipe(RECIPE, AgentRecipe, []).model.image_size == 128  # the recipe's own stays otherwise
    tiny = load_recipe(RECIPE, AgentRecipe, ["model=sam2.1_hiera_t", "model.image_size=256"]).model
    assert (tiny.name, tiny.image_size) == ("sam2.1_hiera_t", 256)
    with pytest.raises(RecipeError, match="unknown key 'model.device'"):  # the device is trainer.accelerator's
        load_recipe(RECIPE, AgentRecipe, ["model.device=cuda"])
