"""Shared fixtures: real DAVIS footage from ../shared (never copied into the repo) and tiny models."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

DAVIS_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def davis_root() -> Path:
    if not (DAVIS_ROOT / "JPEGImages").is_dir():
        pytest.skip(f"real DAVIS-2016 sample not found at {DAVIS_ROOT} (it lives in ../shared/data)")
    return DAVIS_ROOT


def copy_clip(davis_root: Path, sequence: str, num_frames: int, out: Path) -> Path:
    """First `num_frames` frames of one DAVIS sequence, in the DAVIS layout under `out`."""
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        folder = out / kind / sequence
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(num_frames):
            shutil.copy(davis_root / kind / "480p" / sequence / f"{t:05d}.{ext}", folder)
    return out


@pytest.fixture(scope="session")
def blackswan_clip(davis_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_clip(davis_root, "blackswan", 24, tmp_path_factory.mktemp("blackswan"))


@pytest.fixture(scope="session")
def nano_random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random nano weights (seed 0) saved in the official checkpoint format."""
    from sam2rl.tracker import ModelSpec, build_sam2_model, save_official_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = build_sam2_model(ModelSpec("nano", random_weights=True))
    return save_official_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "nano-random.pt")


@pytest.fixture
def late_object_sample(tmp_path: Path) -> Path:
    """The bundled sample with object 7 first seen on the last two frames of one video."""
    root = tmp_path / "late"
    shutil.copytree(Path(__file__).resolve().parents[1] / "sam2rl" / "sample", root)
    for t in (22, 23):
        path = root / "Annotations" / "480p" / "synth-medium-1000-000" / f"{t:05d}.png"
        with Image.open(path) as image:
            labels, palette = np.array(image), image.getpalette()
        labels[:8, :8] = 7
        out = Image.fromarray(labels, mode="P")
        out.putpalette(palette)
        out.save(path)
    return root
