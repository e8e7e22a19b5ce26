"""Atomic file writes: a kill or a full disk never leaves a truncated file under the final name."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["usual_mode", "write_atomically", "write_bytes", "write_json", "write_text", "write_torch"]


def usual_mode(base: int) -> int:
    """`base` (0o666 for files, 0o777 for folders) less the process umask: the permissions a plain
    `open` or `mkdir` would give, which `tempfile`'s private 0600 / 0700 do not."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, usual_mode(0o666))  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_torch(path: str | Path, payload: Any) -> Path:
    """`torch.save` to `path`, atomically."""
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def write_text(path: str | Path, text: str) -> Path:
    """`text` to `path`, atomically."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """`data` to `path`, atomically."""
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json(path: str | Path, payload: Any) -> Path:
    """`payload` as indented JSON to `path`, atomically."""
    def dump(tmp: str) -> None:
        with open(tmp, "w") as out:
            json.dump(payload, out, indent=1)

    return write_atomically(path, dump)
