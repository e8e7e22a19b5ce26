"""Agent checkpoints that describe themselves: recipe, package versions, SAM 2 model identity."""

from __future__ import annotations

from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

import sam2rl
from sam2rl.atomic import write_torch
from sam2rl.errors import InputError

__all__ = ["AgentCheckpointError", "package_versions", "read_agent_checkpoint", "write_agent_checkpoint"]

FORMAT = "sam2rl-agent/1"
_REQUIRED = ("versions", "model", "layout", "encoder", "actor")  # what loading an agent reads


class AgentCheckpointError(InputError, RuntimeError):
    """An agent checkpoint that does not fit; the message names the file and the mismatch."""


def package_versions() -> dict[str, str]:
    """Versions of sam2rl and the packages a trained agent's behaviour depends on (kept in its checkpoint)."""
    return {"sam2rl": sam2rl.__version__, **{name: version(name) for name in
                                              ("torch", "sam2", "torchrl", "tensordict", "lightning")}}


def write_agent_checkpoint(path: str | Path, *, actor: torch.nn.Module, critic: torch.nn.Module, recipe_yaml: str,
                           tracker_identity: dict[str, str], layout: dict[str, Any], encoder: Any,
                           extra: dict[str, Any] | None = None) -> Path:
    """Atomic write (temp file + rename): a kill never leaves a truncated file behind."""
    payload = {"format": FORMAT, "versions": package_versions(), "recipe": recipe_yaml, "model": tracker_identity,
               "layout": layout, "encoder": asdict(encoder), "actor": actor.state_dict(),
               "critic": critic.state_dict(), **(extra or {})}
    return write_torch(path, payload)


def read_agent_checkpoint(path: str | Path, tracker_identity: dict[str, str] | None = None,
                          force: bool = False) -> dict[str, Any]:
    """Load and check: format, sam2rl version, and (when given) the SAM 2 model it was trained on."""
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
    if saved != sam2rl.__version__:
        problems.append(f"written by sam2rl {saved}, this is {sam2rl.__version__}")
    if tracker_identity is not None:
        for key in ("model", "config_sha256", "weights_sha256", "image_size"):
            if payload["model"].get(key) != tracker_identity.get(key):
                problems.append(f"trained on SAM 2 {key}={payload['model'].get(key)!r}, "
                                f"this tracker has {tracker_identity.get(key)!r}")
    if problems and not force:
        raise AgentCheckpointError(f"agent checkpoint {path}: " + "; ".join(problems) + " (force=True to load anyway)")
    return payload
