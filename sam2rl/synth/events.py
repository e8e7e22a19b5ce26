"""What happened in a generated video, frame by frame, measured on the scene and its rendered masks.

The flags are measured rather than copied from the schedule, so that they say
what a tracker actually faced (a distractor counts as near only when it is
visible, a frame as occluded only when no target pixel is left).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sam2rl.synth.objects import TARGET_ID, Blob
from sam2rl.synth.render import blob_layer
from sam2rl.synth.scene import Scene

__all__ = ["FAST_MOTION_FRACTION", "NEAR_DIAMETERS", "SceneEvents", "label_events"]

#: A distractor is "near" when its centre is within this many target diameters.
NEAR_DIAMETERS = 1.0
#: A frame is "fast motion" when the target centre moved more than this fraction
#: of the frame size since the previous frame (cruising speed is < 0.05).
FAST_MOTION_FRACTION = 0.1


@dataclass
class SceneEvents:
    """What happened in a generated video, per frame (index = frame number)."""

    occluded: list[bool]  # target fully hidden (its mask is empty)
    distractor_near: list[bool]  # a visible distractor's centre within NEAR_DIAMETERS target diameters
    fast_motion: list[bool]  # target centre moved > FAST_MOTION_FRACTION * size since the previous frame
    appearance_change: list[bool]  # colour/texture/scale/rotation of the target changing this frame
    visible_fraction: list[float]  # visible target pixels / target pixels if nothing covered it
    # the schedule that produced the flags
    occlusion_windows: list[tuple[int, int]] = field(default_factory=list)  # [start, end) fully hidden by a bar
    jump_frames: list[int] = field(default_factory=list)
    appearance_windows: list[tuple[int, int]] = field(default_factory=list)  # [start, end)
    distractor_passes: list[tuple[int, int]] = field(default_factory=list)  # (frame, distractor id)
    num_distractors: int = 0

    def counts(self) -> dict[str, int]:
        """Number of frames flagged for each per-frame event."""
        return {
            "occluded": int(sum(self.occluded)),
            "distractor_near": int(sum(self.distractor_near)),
            "fast_motion": int(sum(self.fast_motion)),
            "appearance_change": int(sum(self.appearance_change)),
        }

    def to_dict(self) -> dict:
        """JSON-ready fields (pairs as lists) plus ``counts``."""
        values = asdict(self)
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = [list(item) if isinstance(item, tuple) else item for item in value]
        values["counts"] = self.counts()
        return values


def label_events(scene: Scene, masks: np.ndarray) -> SceneEvents:
    """The events of ``scene`` as rendered into ``masks`` (uint8 [T, S, S] object ids)."""
    target = scene.target
    visible = (masks == TARGET_ID).reshape(scene.num_frames, -1).sum(1)
    step = np.zeros(scene.num_frames)
    step[1:] = np.linalg.norm(np.diff(target.center, axis=0), axis=1)
    return SceneEvents(
        occluded=[bool(pixels == 0) for pixels in visible],
        distractor_near=[bool(flag) for flag in _distractor_near(scene, masks)],
        fast_motion=[bool(flag) for flag in step > FAST_MOTION_FRACTION * scene.size],
        appearance_change=[bool(flag) for flag in _appearance_changing(target)],
        visible_fraction=[round(float(share), 4) for share in _visible_fraction(target, visible, scene.size)],
        occlusion_windows=[(int(start), int(stop)) for start, stop in scene.occlusion_windows],
        jump_frames=[int(frame) for frame in scene.jump_frames],
        appearance_windows=[(int(start), int(stop)) for start, stop in scene.appearance_windows],
        distractor_passes=[(int(frame), int(obj_id)) for frame, obj_id in scene.distractor_passes],
        num_distractors=sum(1 for blob in scene.blobs if blob.obj_id != TARGET_ID),
    )


def _visible_fraction(target: Blob, visible: np.ndarray, size: int) -> np.ndarray:
    """Visible target pixels per frame over the pixels it would cover unhidden (0 when fully off screen)."""
    full = np.zeros(len(visible))
    for t in range(len(visible)):
        layer = blob_layer(target, t, size)
        full[t] = 0 if layer is None else layer[1].sum()
    return np.where(full > 0, visible / np.maximum(full, 1), 0.0)


def _distractor_near(scene: Scene, masks: np.ndarray) -> np.ndarray:
    """Frames where some visible distractor's centre is within NEAR_DIAMETERS target diameters of the target's."""
    target = scene.target
    diameters = 2.0 * target.radius
    near = np.zeros(scene.num_frames, bool)
    for blob in scene.blobs:
        if blob.obj_id == TARGET_ID:
            continue
        seen = (masks == blob.obj_id).reshape(scene.num_frames, -1).any(1)
        distance = np.linalg.norm(blob.center - target.center, axis=1)
        near |= seen & (distance <= NEAR_DIAMETERS * diameters)
    return near


def _appearance_changing(target: Blob) -> np.ndarray:
    """Frames whose colours, radius, angle or texture differ from the previous frame's."""
    params = np.concatenate(
        [
            target.color1,
            target.color2,
            target.radius[:, None],
            target.angle[:, None],
            target.texture_freq[:, None],
            target.texture_phase[:, None],
        ],
        axis=1,
    )
    change = np.zeros(len(params), bool)
    change[1:] = np.abs(np.diff(params, axis=0)).max(1) > 1e-6
    return change
