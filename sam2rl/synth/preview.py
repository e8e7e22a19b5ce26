"""Contact sheet of a generated video: frames with mask overlays and event labels."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from sam2rl.datasets.palette import davis_palette
from sam2rl.synth.generator import SceneEvents


def overlay(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend the DAVIS colour of each object id over ``frame`` (id 0 left as is) and outline objects."""
    pal = np.array(davis_palette(), dtype=np.float32).reshape(256, 3)
    # the DAVIS colours of ids 1 and 2 are dark; brighten them for display
    colours = np.clip(pal[mask] * 2.0, 0, 255)
    out = frame.astype(np.float32)
    obj = mask > 0
    out[obj] = (1 - alpha) * out[obj] + alpha * colours[obj]
    edge = np.zeros_like(obj)
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge &= obj
    out[edge] = colours[edge]
    return np.clip(out, 0, 255).astype(np.uint8)


def _label(events: SceneEvents | None, t: int) -> str:
    if events is None:
        return f"t={t}"
    tags = []
    if events.occluded[t]:
        tags.append("OCC")
    if events.distractor_near[t]:
        tags.append("NEAR")
    if events.fast_motion[t]:
        tags.append("JUMP")
    if events.appearance_change[t]:
        tags.append("APP")
    return f"t={t} " + " ".join(tags)


def pick_frames(events: SceneEvents, num: int = 8) -> list[int]:
    """Frame 0, then one frame per event kind where possible, filled up evenly; sorted."""
    T = len(events.occluded)
    chosen = {0}
    for flags in (events.occluded, events.distractor_near, events.fast_motion, events.appearance_change):
        hits = [t for t, x in enumerate(flags) if x and t not in chosen]
        if hits and len(chosen) < num:
            chosen.add(hits[len(hits) // 2])
    for t in np.linspace(0, T - 1, num).round().astype(int):
        if len(chosen) >= min(num, T):
            break
        chosen.add(int(t))
    t = 0
    while len(chosen) < min(num, T):
        chosen.add(t)
        t += 1
    return sorted(chosen)


def contact_sheet(
    frames: np.ndarray,
    masks: np.ndarray,
    events: SceneEvents | None = None,
    indices: list[int] | None = None,
    cols: int = 4,
    scale: int = 2,
) -> Image.Image:
    """Two rows per frame row: the raw frame above its mask overlay, with frame/event labels."""
    if indices is None:
        indices = pick_frames(events) if events is not None else list(
            np.linspace(0, len(frames) - 1, 8).round().astype(int)
        )
    H, W = frames.shape[1:3]
    th, tw, lab = H * scale, W * scale, 14
    rows = (len(indices) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (tw + 4) + 4, rows * (2 * th + lab + 8) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, t in enumerate(indices):
        r, c = divmod(k, cols)
        x = 4 + c * (tw + 4)
        y = 4 + r * (2 * th + lab + 8)
        draw.text((x, y), _label(events, int(t)), fill=(0, 0, 0))
        raw = Image.fromarray(frames[t]).resize((tw, th), Image.NEAREST)
        ov = Image.fromarray(overlay(frames[t], masks[t])).resize((tw, th), Image.NEAREST)
        sheet.paste(raw, (x, y + lab))
        sheet.paste(ov, (x, y + lab + th + 2))
    return sheet
