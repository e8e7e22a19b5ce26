"""Scale-out and robustness of agent training: DDP on 2 CPU processes (gloo), kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.random_weights=true", "model.image_size=64", "evaluation.baselines=[fifo]", "env.batch_size=4", "env.group_size=2", "ppo.rollout_steps=4", "ppo.minibatch_size=8",
        "data.tracks=[synth-medium-1000-000:1,synth-medium-1000-001:1]", "task=generalize",
        "data.val_split=null", "trainer.threads=1", "ppo.self_imitation=false",
        "imitation.steps=5"]


def sam2rl_run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "sam2rl.cli", "run", "recipes/overfit.yaml", *TINY, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_ddp_two_cpu_processes_sync_weights_but_not_rollouts(tmp_path: Path) -> None:
    result = sam2rl_run("trainer.devices=2", "trainer.strategy=ddp", "trainer.iterations=3", f"output.dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / "generalist" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["param_checksum"] == ranks[1]["param_checksum"]  # gradients were averaged
    assert ranks[0]["param_abs_checksum"] == ranks[1]["param_abs_checksum"]
    assert ranks[0]["rollout_checksum"] != ranks[1]["rollout_checksum"]  # each rank its own seed and tracks
    assert ranks[0]["optimizer_steps"] == ranks[1]["optimizer_steps"] > 0
    assert (tmp_path / "summary.json").is_file()  # rank 0 reported


def test_killed_run_resumes_and_does_the_same_number_of_updates(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert sam2rl_run("trainer.iterations=4", f"output.dir={reference}").returncode == 0
    expected = torch.load(reference / "generalist" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "sam2rl.cli", "run", "recipes/overfit.yaml", *TINY, "trainer.iterations=4",
               "trainer.checkpoint_every=1", f"output.dir={out}"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "generalist" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not last.is_file():
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.is_file(), "no checkpoint was written before the deadline"
    stopped_at = torch.load(last, weights_only=False)["global_step"]  # loads: never a truncated file
    assert stopped_at < expected
    assert not (out / "generalist" / "agent.pt").exists()

    resumed = sam2rl_run("trainer.iterations=4", "trainer.checkpoint_every=1", "resume=auto", f"output.dir={out}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=False)["global_step"] == expected
    assert (out / "generalist" / "agent.pt").is_file() and (out / "summary.json").is_file()
