"""Agent checkpoints that describe themselves: recipe, package versions, SAM 2 model identity, and
the observation and action layout the policy was built for (`AgentLayout`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from sam2rl.atomic import write_torch
from sam2rl.envs.observation import GLOBAL_FEATURES, token_dim
from sam2rl.errors import InputError
from sam2rl.tracker import Tracker
from sam2rl.tracker.bank import ActionLayout

__all__ = ["AgentCheckpointError", "AgentLayout", "package_versions", "read_agent_checkpoint",
           "write_agent_checkpoint"]

FORMAT = "sam2rl-agent/1"
_REQUIRED = ("versions", "model", "layout", "encoder", "actor")  # what loading an agent reads


class AgentCheckpointError(InputError, RuntimeError):
    """An agent checkpoint that does not fit; the message names the file and the mismatch."""


@dataclass(frozen=True)
class AgentLayout:
    """What a policy's networks are sized for and which actions it takes: `token_dim` per slot token,
    `global_dim` globals, `num_recent` recent slots, and the bank's anchors and legal actions."""

    token_dim: int
    global_dim: int
    num_recent: int
    actions: ActionLayout

    @classmethod
    def for_tracker(cls, tracker: Tracker, actions: ActionLayout) -> AgentLayout:
        """The layout of the observations `tracker`'s banks give (`sam2rl.envs.observation`)."""
        return cls(token_dim(tracker), len(GLOBAL_FEATURES), tracker.num_recent, actions)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> AgentLayout:
        """Back from a checkpoint's `asdict`; also the flat dict of checkpoints written before this class."""
        actions = saved.get("actions") or {key: saved[key] for key in ("num_anchor", "allow_discard", "allow_anchor")}
        return cls(saved["token_dim"], saved["global_dim"], saved["num_recent"], ActionLayout(**actions))


def package_versions() -> dict[str, str]:
    """Versions of sam2rl and the packages a trained agent's behaviour depends on (kept in its checkpoint)."""
    return {"sam2rl": version("sam2rl"), **{name: version(name) for name in
                                              ("torch", "sam2", "torchrl", "tensordict", "lightning")}}


def write_agent_checkpoint(path: str | Path, *, actor: torch.nn.Module, critic: torch.nn.Module, recipe_yaml: str,
                           tracker_identity: dict[str, str], layout: AgentLayout, encoder: Any,
                           extra: dict[str, Any] | None = None) -> Path:
    """Atomic write (temp file + rename): a kill never leaves a truncated file behind."""
    payload = {"format": FORMAT, "versions": package_versions(), "recipe": recipe_yaml, "model": tracker_identity,
               "layout": asdict(layout), "encoder": asdict(encoder), "actor": actor.state_dict(),
               "critic": critic.state_dict(), **(extra or {})}
    return write_torch(path, payload)


def read_agent_checkpoint(path: str | Path, tracker_identity: dict[str, str] | None = None,
                          force: bool = False) -> dict[str, Any]:
    """Load and check: format, sam2rl version, and (when given) the SAM 2 model it was trained on; the
    payload's `layout` comes back as an `AgentLayout`."""
    path = Path(path)
    if not path.is_file():
        raise AgentCheckpointError(f"agent checkpoint {path}: file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise AgentCheckpointError(f"agent checkpoint {path}: cannot be read ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise AgentCheckpointError(f"agent checkpoint {path}: not a {FORMAT} file")
    missing = [key for key in _REQUIRED if key not in payload]
    if missing:
        raise AgentCheckpointError(f"agent checkpoint {path}: no {', '.join(missing)} (an incomplete {FORMAT} file)")
    problems = []
    saved = payload["versions"]["sam2rl"]
    if saved != version("sam2rl"):
        problems.append(f"written by sam2rl {saved}, this is {version('sam2rl')}")
    if tracker_identity is not None:
        for key in ("model", "config_sha256", "weights_sha256", "image_size"):
            if payload["model"].get(key) != tracker_identity.get(key):
                problems.append(f"trained on SAM 2 {key}={payload['model'].get(key)!r}, "
                                f"this tracker has {tracker_identity.get(key)!r}")
    if problems and not force:
        raise AgentCheckpointError(f"agent checkpoint {path}: " + "; ".join(problems) + " (force=True to load anyway)")
    payload["layout"] = AgentLayout.from_saved(payload["layout"])
    return payload
