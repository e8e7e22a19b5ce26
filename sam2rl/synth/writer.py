"""Synthetic datasets on disk, in the DAVIS layout, written whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from sam2rl.atomic import usual_mode
from sam2rl.datasets.palette import davis_palette
from sam2rl.synth.generator import (
    FAST_MOTION_FRACTION,
    GENERATOR_VERSION,
    NEAR_DIAMETERS,
    Difficulty,
    generate_video,
    resolve_difficulty,
)

__all__ = ["SEED_STRIDE", "video_seed", "write_dataset"]

#: Seed derivation of :func:`write_dataset`: video ``i`` uses ``seed * SEED_STRIDE + i``.
SEED_STRIDE = 100003


def video_seed(seed: int, index: int) -> int:
    """Seed of video ``index`` in a dataset written with ``seed``."""
    return seed * SEED_STRIDE + index


def _dump_meta(meta: dict) -> str:
    """JSON with one line per top-level key and per video (readable, still valid and deterministic)."""
    lines = []
    for k in sorted(meta):
        if k == "videos":
            body = ",\n  ".join(json.dumps(v, sort_keys=True) for v in meta[k])
            lines.append(f' "{k}": [\n  {body}\n ]' if body else f' "{k}": []')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(meta[k], sort_keys=True)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_dataset(
    out: str | Path,
    num: int,
    seed: int,
    difficulty: str | Difficulty = "medium",
    num_frames: int = 48,
    size: int = 128,
) -> list[str]:
    """Write ``num`` videos in DAVIS layout under ``out`` and return their names.

    ``out/JPEGImages/480p/<name>/00000.jpg`` (quality 90), ``out/Annotations/480p/<name>/00000.png``
    (palette PNG, pixel = object id, DAVIS palette), ``out/ImageSets/all.txt`` (one name a line)
    and ``out/synth.json`` (parameters + per-video events). Video ``i`` is named
    ``synth-<difficulty>-<seed>-<i:03d>`` and uses seed :func:`video_seed` ``(seed, i)`` =
    ``seed * 100003 + i``. The same arguments give the same bytes.

    ``out`` must be new or empty: the videos are written into a folder beside it that is renamed
    to ``out`` when complete, so an interrupted run leaves no half dataset. A folder that already
    holds the dataset of these arguments is left as it is; any other non-empty folder raises
    ``FileExistsError`` (nothing in it is touched).
    """
    d = resolve_difficulty(difficulty)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; write the dataset to a new folder")
    header = {
        "generator": "sam2rl.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "seed_derivation": f"video i uses seed * {SEED_STRIDE} + i",
        "num": int(num),
        "num_frames": int(num_frames),
        "size": int(size),
        "difficulty": d.to_dict(),
        "near_diameters": NEAR_DIAMETERS,
        "fast_motion_fraction": FAST_MOTION_FRACTION,
    }
    if out.is_dir() and any(out.iterdir()):
        return _existing_names(out, header)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    staging.chmod(usual_mode(0o777))  # mkdtemp makes 0700 folders
    try:
        names = _write_videos(staging, d, int(num), seed, num_frames, size, header)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names


def _existing_names(out: Path, header: dict) -> list[str]:
    """The names of the dataset in `out` if it was written with `header`'s arguments."""
    meta_path = out / "synth.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        meta = None
    expected = json.loads(json.dumps(header))  # as read back: tuples become lists
    if not isinstance(meta, dict) or any(meta.get(key) != value for key, value in expected.items()):
        found = "another synthetic dataset" if isinstance(meta, dict) else f"no readable {meta_path.name}"
        raise FileExistsError(f"{out} is not empty ({found}); write the dataset to a new folder or remove this one")
    return [video["name"] for video in meta["videos"]]


def _write_videos(out: Path, d: Difficulty, num: int, seed: int, num_frames: int, size: int,
                  header: dict) -> list[str]:
    palette = davis_palette()
    names: list[str] = []
    videos = []
    for i in range(num):
        name = f"synth-{d.name}-{seed}-{i:03d}"
        vseed = video_seed(seed, i)
        frames, masks, events = generate_video(vseed, d, num_frames, size)
        jdir = out / "JPEGImages" / "480p" / name
        adir = out / "Annotations" / "480p" / name
        jdir.mkdir(parents=True, exist_ok=True)
        adir.mkdir(parents=True, exist_ok=True)
        for t in range(frames.shape[0]):
            Image.fromarray(frames[t], "RGB").save(jdir / f"{t:05d}.jpg", format="JPEG", quality=90)
            im = Image.fromarray(masks[t], "P")
            im.putpalette(palette)
            im.save(adir / f"{t:05d}.png", format="PNG")
        names.append(name)
        videos.append({"name": name, "seed": vseed, "events": events.to_dict()})
    sets = out / "ImageSets"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "all.txt").write_text("".join(n + "\n" for n in names))
    (out / "synth.json").write_text(_dump_meta({**header, "videos": videos}))
    return names
