"""Overlay videos: a track's predicted masks tinted over its frames, as animated GIFs (Pillow only)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sam2rl.datasets import VideoSequence
from sam2rl.datasets.palette import davis_palette
from sam2rl.atomic import write_bytes
from sam2rl.evaluation.report import safe_name
from sam2rl.tracker import TrackRun

__all__ = ["GifWriter", "overlay_frames", "write_overlay_gif"]

MAX_WIDTH = 320


def _size(video: VideoSequence, max_width: int) -> tuple[int, int]:
    width = min(max_width, video.width)
    return width, max(1, round(video.height * width / video.width))


def overlay_frames(video: VideoSequence, run: TrackRun, max_width: int = MAX_WIDTH, alpha: float = 0.55,
                   label: str = "", colors: int = 128) -> Iterator[Image.Image]:
    """One palette image (`colors` colours) per frame of the track (prompt frame on), at most `max_width` px wide: the
    predicted mask tinted in the object's DAVIS colour, `label` and the frame number on top and a
    progress bar along the bottom edge."""
    size = _size(video, max_width)
    palette = davis_palette()
    oid = run.track.object_id % 256
    colour = tuple(palette[3 * oid:3 * oid + 3]) if oid else (255, 0, 0)
    solid = Image.new("RGB", size, colour)
    for i, t in enumerate(run.frames):
        with Image.open(video.frame_paths[t]) as image:
            frame = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        mask = Image.fromarray(run.masks[i].numpy().astype(np.uint8) * 255, mode="L")
        mask = mask.resize(size, Image.Resampling.BILINEAR)  # soft edges when downscaling
        frame = Image.composite(Image.blend(frame, solid, alpha), frame, mask)
        draw = ImageDraw.Draw(frame)
        text = f"{label}  frame {t}" if label else f"frame {t}"
        right, bottom = draw.textbbox((3, 1), text)[2:]
        draw.rectangle((0, 0, right + 2, bottom + 2), fill=(0, 0, 0))
        draw.text((3, 1), text, fill=(255, 255, 255))
        draw.rectangle((0, size[1] - 3, round(size[0] * (i + 1) / len(run.frames)) - 1, size[1] - 1), fill=colour)
        yield frame.quantize(colors, dither=Image.Dither.NONE)  # no dither: smaller files, the tint stays flat


def write_overlay_gif(path: Path, video: VideoSequence, run: TrackRun, label: str = "", max_width: int = MAX_WIDTH,
                      fps: float = 10.0) -> Path:
    """Animated GIF of `overlay_frames`, one GIF frame per video frame of the track, looping."""
    frames = overlay_frames(video, run, max_width=max_width, label=label)
    first = next(frames)
    buffer = io.BytesIO()
    # the progress bar makes consecutive frames differ, so Pillow never merges two into one
    first.save(buffer, format="GIF", save_all=True, append_images=list(frames), duration=round(1000 / fps), loop=0,
               optimize=False)
    return write_bytes(path, buffer.getvalue())


class GifWriter:
    """An `evaluate(on_runs=...)` callback: `out/<controller>/<sequence>_obj<id>.gif` per track."""

    def __init__(self, out: Path, max_width: int = MAX_WIDTH, fps: float = 10.0) -> None:
        self.out = Path(out)
        self.max_width = max_width
        self.fps = fps
        self.written: list[Path] = []

    def __call__(self, video: VideoSequence, controller: str, runs: list[TrackRun]) -> None:
        for run in runs:
            path = self.out / safe_name(controller) / f"{safe_name(video.name)}_obj{run.track.object_id}.gif"
            self.written.append(write_overlay_gif(path, video, run, label=controller, max_width=self.max_width,
                                                  fps=self.fps))
