"""Official-format SAM 2 checkpoints (`{"model": state_dict}`): strict loading, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from sam2rl.atomic import write_torch
from sam2rl.errors import InputError

__all__ = ["CheckpointError", "file_sha256", "load_state_dict", "save_official_checkpoint"]


class CheckpointError(InputError, RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the fault."""


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read the `model` state dict of an official-format checkpoint.

    Fails on a missing file, a wrong hash, a truncated or foreign file, and a file
    without the `model` key, each time naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256.lower():
            raise CheckpointError(
                f"checkpoint {path}: sha256 is {actual}, expected {expected_sha256.lower()}"
            )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise CheckpointError(
            f"checkpoint {path}: cannot be read ({type(error).__name__}: {error}); "
            "the file is truncated or not a PyTorch checkpoint"
        ) from error
    if not isinstance(payload, dict) or "model" not in payload:
        keys = list(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"checkpoint {path}: expected the official SAM 2 format {{'model': state_dict}}, "
            f"found {keys}"
        )
    return payload["model"]


def load_into(model: torch.nn.Module, path: str | Path, config: str, expected_sha256: str | None = None) -> None:
    """Load strictly; a mismatch lists the first offending keys and names both files."""
    state = load_state_dict(path, expected_sha256)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches (checkpoint vs config)", mismatched)):
        if items:
            shown = ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match model config {config}: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def save_official_checkpoint(model: torch.nn.Module, path: str | Path, dtype: torch.dtype | None = None,
                             **extra: object) -> Path:
    """Write `{"model": state_dict, **extra}` atomically, on the CPU as the official checkpoints are (a
    plain `torch.load` works without a GPU); floating-point weights cast to `dtype` if given (loading
    casts them back to the model's dtype)."""
    state = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype)
             for k, v in model.state_dict().items()}
    return write_torch(path, {"model": state, **extra})
