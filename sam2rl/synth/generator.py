"""Deterministic synthetic videos in which a tracker's memory matters.

SAM 2 remembers the prompted frame plus the 6 most recent frames (FIFO). Every
video made here contains the events that break such a memory:

* **look-alike distractors** (mask ids 2..): the target's shape family, colour and
  texture, slightly perturbed, steered so that they pass near or across the
  target at scheduled frames; depth order decides who is on top;
* **full occlusions**: a wide textured bar (background, id 0, drawn above every
  object) sweeps in and hides the target completely for several frames; its
  mask is then empty;
* **sudden jumps** of the target (large displacement between two frames);
* **gradual appearance change** of the target: hue/brightness drift, texture
  frequency/phase change, scale change and rotation inside change windows;
* **cluttered backgrounds**: low-frequency colour noise plus random shapes in
  other colours.

Everything is drawn with hard edges (a pixel belongs to a shape iff its centre
is inside it), so the id map is exactly the top visible layer of the rendered
frame. All randomness comes from ``np.random.default_rng(seed)``; rendering is
vectorised numpy (about 20-40 ms for 48 frames of 128 px).

Object pixels are ``c2 + tex * (c1 - c2)`` with ``tex`` in [0, 1], i.e. they lie
on the segment between the object's two colours of that frame (before the
bounded sensor noise), which the tests use to check mask/frame consistency.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

__all__ = [
    "DIFFICULTIES",
    "GENERATOR_VERSION",
    "Difficulty",
    "SceneEvents",
    "generate_video",
    "resolve_difficulty",
]

GENERATOR_VERSION = 1
#: Event counts in :class:`Difficulty` are given per this many frames and scaled
#: proportionally for other lengths.
REFERENCE_FRAMES = 48
#: A distractor is "near" when its centre is within this many target diameters.
NEAR_DIAMETERS = 1.0
#: A frame is "fast motion" when the target centre moved more than this fraction
#: of the frame size since the previous frame (cruising speed is < 0.05).
FAST_MOTION_FRACTION = 0.1

_TEXTURES = ("stripes", "checker", "rings", "waves")


# --------------------------------------------------------------------------- difficulty


@dataclass(frozen=True)
class Difficulty:
    """How often and how strongly each event happens.

    Ranges ``(lo, hi)`` are sampled uniformly per video (integers inclusive).
    Event counts are per 48 frames (scaled for other lengths; at least one when
    ``lo >= 1``). Sizes and speeds are fractions of the frame size.
    """

    name: str = "custom"
    # target
    target_radius: tuple[float, float] = (0.09, 0.12)
    speed: tuple[float, float] = (0.010, 0.020)
    # look-alike distractors
    num_distractors: tuple[int, int] = (1, 2)
    distractor_passes: tuple[int, int] = (2, 3)
    pass_distance: tuple[float, float] = (0.2, 0.8)  # centre offset at the pass, target diameters
    distractor_hue_jitter: float = 0.04  # std of hue offset (hue circle = 1): lower = more alike
    distractor_size_jitter: float = 0.12  # std of log radius
    distractor_front_prob: float = 0.5  # chance a distractor is drawn above the target
    # full occlusions by a bar
    occlusions: tuple[int, int] = (1, 2)
    occlusion_frames: tuple[int, int] = (3, 6)
    # sudden jumps
    jumps: tuple[int, int] = (1, 2)
    jump_distance: tuple[float, float] = (0.2, 0.3)
    # gradual appearance change of the target
    appearance_changes: tuple[int, int] = (1, 2)
    appearance_frames: tuple[int, int] = (8, 14)
    hue_drift: float = 0.08  # max hue shift per change window
    scale_drift: float = 0.25  # max |log scale| change per window
    rotation_drift: float = 1.2  # max rotation per window, radians
    texture_drift: float = 0.35  # max |log texture frequency| change per window
    # background clutter
    clutter_shapes: tuple[int, int] = (6, 10)
    background_contrast: float = 0.12
    sensor_noise: int = 3  # max |uniform integer noise| added to every pixel

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy",
        speed=(0.008, 0.015),
        num_distractors=(1, 1),
        distractor_passes=(0, 1),
        pass_distance=(0.6, 0.9),
        distractor_hue_jitter=0.10,
        distractor_size_jitter=0.2,
        distractor_front_prob=0.3,
        occlusions=(0, 1),
        occlusion_frames=(2, 3),
        jumps=(0, 1),
        jump_distance=(0.12, 0.18),
        appearance_changes=(0, 1),
        appearance_frames=(12, 18),
        hue_drift=0.03,
        scale_drift=0.1,
        rotation_drift=0.5,
        texture_drift=0.15,
        clutter_shapes=(3, 6),
        background_contrast=0.08,
        sensor_noise=2,
    ),
    "medium": Difficulty(name="medium"),
    "hard": Difficulty(
        name="hard",
        speed=(0.015, 0.025),
        num_distractors=(2, 3),
        distractor_passes=(4, 6),
        pass_distance=(0.0, 0.5),
        distractor_hue_jitter=0.02,
        distractor_size_jitter=0.08,
        distractor_front_prob=0.6,
        occlusions=(2, 3),
        occlusion_frames=(4, 8),
        jumps=(2, 4),
        jump_distance=(0.25, 0.4),
        appearance_changes=(2, 3),
        appearance_frames=(6, 12),
        hue_drift=0.15,
        scale_drift=0.4,
        rotation_drift=2.0,
        texture_drift=0.6,
        clutter_shapes=(10, 16),
        background_contrast=0.18,
        sensor_noise=4,
    ),
}


def resolve_difficulty(difficulty: str | Difficulty) -> Difficulty:
    """A preset by name (`easy`, `medium`, `hard`), or the `Difficulty` given."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    try:
        return DIFFICULTIES[difficulty]
    except KeyError:
        raise ValueError(f"unknown difficulty {difficulty!r}; choose from {sorted(DIFFICULTIES)}") from None


# --------------------------------------------------------------------------- events


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
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, list):
                d[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        d["counts"] = self.counts()
        return d


# --------------------------------------------------------------------------- scene description


@dataclass
class _Blob:
    """A textured star-shaped blob; every per-frame quantity is an array over frames."""

    obj_id: int
    depth: float
    center: np.ndarray  # [T, 2] (x, y), pixels
    radius: np.ndarray  # [T] pixels (base radius * scale)
    angle: np.ndarray  # [T] radians
    harm_k: np.ndarray  # [K] harmonic orders
    harm_a: np.ndarray  # [K] amplitudes (sum |a| < 0.6)
    harm_p: np.ndarray  # [K] phases
    texture: str
    tex_freq: np.ndarray  # [T] cycles per radius
    tex_phase: np.ndarray  # [T]
    color1: np.ndarray  # [T, 3] 0..255
    color2: np.ndarray  # [T, 3]

    @property
    def extent(self) -> float:
        """Bounding-circle radius / radius."""
        return 1.0 + float(np.abs(self.harm_a).sum())


@dataclass
class _Bar:
    """A full-span textured bar |p . n - offset[t]| <= half_width (offset NaN = off screen)."""

    angle: float
    half_width: float
    offset: np.ndarray  # [T]
    color1: np.ndarray  # [3]
    color2: np.ndarray  # [3]
    freq: float  # radians per pixel
    phase: float


@dataclass
class _Scene:
    size: int
    num_frames: int
    difficulty: Difficulty
    background: np.ndarray  # [H, W, 3] float32, 0..255
    blobs: list[_Blob]  # sorted far -> near
    bars: list[_Bar]
    noise_seed: int
    occlusion_windows: list[tuple[int, int]]
    jump_frames: list[int]
    appearance_windows: list[tuple[int, int]]
    passes: list[tuple[int, int]]

    @property
    def target(self) -> _Blob:
        return next(b for b in self.blobs if b.obj_id == 1)


# --------------------------------------------------------------------------- helpers


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))) * 255.0


def _randint(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    lo, hi = lo_hi
    return int(rng.integers(lo, hi + 1))


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _scaled_count(rng: np.random.Generator, lo_hi: tuple[int, int], T: int) -> int:
    n = int(round(_randint(rng, lo_hi) * T / REFERENCE_FRAMES))
    return max(n, 1) if lo_hi[0] >= 1 else n


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _place_windows(
    rng: np.random.Generator,
    n: int,
    lengths: tuple[int, int],
    lo: int,
    hi: int,
    gap: int,
    taken: list[tuple[int, int]] | None = None,
) -> list[tuple[int, int]]:
    """Up to ``n`` windows [a, b) inside [lo, hi) with ``gap`` free frames between them."""
    out: list[tuple[int, int]] = []
    taken = list(taken or [])
    for _ in range(n):
        for _try in range(50):
            L = _randint(rng, lengths)
            if hi - L < lo:
                continue
            a = int(rng.integers(lo, hi - L + 1))
            b = a + L
            if all(b + gap <= s or e + gap <= a for s, e in out + taken):
                out.append((a, b))
                break
    return sorted(out)


def _hermite(times: np.ndarray, pts: np.ndarray, tans: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cubic Hermite through (times, pts) with tangents ``tans`` (per unit time), evaluated at ``t``."""
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    t0, t1 = times[i], times[i + 1]
    h = t1 - t0
    s = ((t - t0) / h)[:, None]
    s2, s3 = s * s, s * s * s
    return (
        (2 * s3 - 3 * s2 + 1) * pts[i]
        + (s3 - 2 * s2 + s) * h[:, None] * tans[i]
        + (-2 * s3 + 3 * s2) * pts[i + 1]
        + (s3 - s2) * h[:, None] * tans[i + 1]
    )


def _texture(kind: str, u: np.ndarray, v: np.ndarray, rho: np.ndarray, freq: float, phase: float) -> np.ndarray:
    w = 2.0 * math.pi * freq
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(w * u + phase)
    if kind == "checker":
        return 0.5 + 0.5 * np.tanh(4.0 * np.sin(w * u + phase) * np.sin(w * v))
    if kind == "rings":
        return 0.5 + 0.5 * np.sin(w * rho + phase)
    if kind == "waves":
        return 0.5 + 0.5 * np.sin(w * u + 1.5 * np.sin(0.7 * w * v) + phase)
    raise ValueError(kind)


def _blob_layer(b: _Blob, t: int, size: int):
    """(slices, coverage, colours) of blob ``b`` at frame ``t`` in its bounding box, or None off screen."""
    cx, cy = b.center[t]
    R = float(b.radius[t])
    rb = R * b.extent
    x0, x1 = max(0, int(math.floor(cx - rb))), min(size, int(math.ceil(cx + rb)) + 1)
    y0, y1 = max(0, int(math.floor(cy - rb))), min(size, int(math.ceil(cy + rb)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    c, s = math.cos(b.angle[t]), math.sin(b.angle[t])
    u = (dx * c + dy * s) / R
    v = (-dx * s + dy * c) / R
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    rlim = 1.0 + sum(a * np.cos(k * phi + p) for k, a, p in zip(b.harm_k, b.harm_a, b.harm_p))
    cov = rho <= rlim
    tex = _texture(b.texture, u, v, rho, float(b.tex_freq[t]), float(b.tex_phase[t]))
    c1 = b.color1[t].astype(np.float32)
    c2 = b.color2[t].astype(np.float32)
    col = c2 + tex[..., None].astype(np.float32) * (c1 - c2)
    return (slice(y0, y1), slice(x0, x1)), cov, col


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.arange(size, dtype=np.float32) + 0.5
    return c[None, :], c[:, None]


def _bar_layer(bar: _Bar, t: int, xx: np.ndarray, yy: np.ndarray):
    d = bar.offset[t]
    if not np.isfinite(d):
        return None
    c, s = math.cos(bar.angle), math.sin(bar.angle)
    p = xx * c + yy * s - d
    cov = np.abs(p) <= bar.half_width
    q = -xx * s + yy * c
    tex = 0.5 + 0.25 * np.sin(bar.freq * q + bar.phase) + 0.25 * np.sin(0.5 * bar.freq * p)
    col = bar.color2 + tex[..., None] * (bar.color1 - bar.color2)
    return cov, col


def _upsample_matrix(size: int, g: int) -> np.ndarray:
    """[size, g] linear-interpolation weights from a g-point grid to size pixels."""
    x = (np.arange(size) + 0.5) / size * (g - 1)
    i0 = np.clip(np.floor(x).astype(int), 0, g - 2)
    f = x - i0
    W = np.zeros((size, g))
    W[np.arange(size), i0] = 1 - f
    W[np.arange(size), i0 + 1] = f
    return W


# --------------------------------------------------------------------------- scene building


def _appearance_curves(rng, d: Difficulty, T: int, windows):
    """Per-frame (hue, value, log scale, rotation, log tex freq, tex phase) offsets of the target."""
    t = np.arange(T, dtype=np.float64)
    curves = np.zeros((6, T))
    # rotation is piecewise constant too, so the appearance_change flags are exact
    for a, b in windows:
        L = b - a
        ramp = _smoothstep((t - a + 1) / L)
        sign = rng.choice([-1.0, 1.0], size=6)
        mag = rng.uniform(0.5, 1.0, size=6)
        delta = sign * mag * np.array(
            [d.hue_drift, 1.5 * d.hue_drift, d.scale_drift, d.rotation_drift, d.texture_drift, math.pi]
        )
        # keep the total scale change bounded
        delta[2] = float(np.clip(curves[2, -1] + delta[2], -0.45, 0.45) - curves[2, -1])
        curves += delta[:, None] * ramp[None, :]
    return curves


def _target_path(rng, d: Difficulty, T: int, S: int, rb_max: float, jump_frames, jump_dists):
    lo, hi = 0.7 * rb_max, S - 0.7 * rb_max
    speed = _uniform(rng, d.speed) * S
    pos = rng.uniform(0.3 * S, 0.7 * S, size=2)
    ang = rng.uniform(0, 2 * math.pi)
    vel = speed * np.array([math.cos(ang), math.sin(ang)])
    noise = rng.normal(size=(T, 2))
    jump_angles = rng.uniform(0, 2 * math.pi, size=(max(len(jump_frames), 1), 24))
    out = np.zeros((T, 2))
    out[0] = pos
    m = 0.85
    jumps = dict(zip(jump_frames, range(len(jump_frames))))
    for t in range(1, T):
        vel = m * vel + (1 - m) * 2.0 * speed * noise[t]
        n = float(np.linalg.norm(vel)) + 1e-9
        vel = vel * float(np.clip(n, 0.5 * speed, 1.5 * speed)) / n
        if t in jumps:
            j = jumps[t]
            dist = jump_dists[j]
            cand = pos[None, :] + dist * np.stack([np.cos(jump_angles[j]), np.sin(jump_angles[j])], 1)
            ok = np.all((cand >= lo) & (cand <= hi), axis=1)
            if ok.any():
                pos = cand[int(np.argmax(ok))]
            else:  # towards the centre
                to_c = np.array([S / 2, S / 2]) - pos
                pos = np.clip(pos + dist * to_c / (np.linalg.norm(to_c) + 1e-9), lo, hi)
        else:
            pos = pos + vel
            for k in range(2):
                if pos[k] < lo:
                    pos[k], vel[k] = 2 * lo - pos[k], abs(vel[k])
                elif pos[k] > hi:
                    pos[k], vel[k] = 2 * hi - pos[k], -abs(vel[k])
            pos = np.clip(pos, lo, hi)
        out[t] = pos
    return out


def _distractor_path(rng, T: int, S: int, speed: float, meets, target_xy, target_diam):
    """Smooth path through the meeting points ``meets`` = [(frame, xy, velocity)].

    Between and around the passes the path's waypoints are picked away from the
    target (at least 2.5 target diameters where possible), so that a distractor is
    near the target mostly at its scheduled passes.
    """
    inner_lo, inner_hi = 0.1 * S, 0.9 * S

    def away(base: np.ndarray, spread: float, tau: float) -> np.ndarray:
        k = int(np.clip(round(tau), 0, T - 1))
        cand = np.clip(base[None, :] + spread * rng.normal(size=(16, 2)), inner_lo, inner_hi)
        cand = np.concatenate([np.clip(base, inner_lo, inner_hi)[None, :], cand])
        dist = np.linalg.norm(cand - target_xy[k], axis=1)
        ok = dist >= 2.5 * target_diam[k]
        return cand[int(np.argmax(ok))] if ok.any() else cand[int(np.argmax(dist))]

    def step(prev: np.ndarray, L: float) -> np.ndarray:
        a = rng.uniform(0, 2 * math.pi)
        return prev + speed * L * np.array([math.cos(a), math.sin(a)])

    path = None
    for _try in range(16):
        times: list[float] = []
        pts: list[np.ndarray] = []
        tans: list[np.ndarray | None] = []
        if meets:
            for j, (tm, xy, vel) in enumerate(meets):
                if j > 0:  # swing away between two passes
                    tp, xp, _ = meets[j - 1]
                    tau = (tp + tm) / 2
                    times.append(tau)
                    pts.append(away((xp + xy) / 2, 0.3 * S, tau))
                    tans.append(None)
                times.append(float(tm))
                pts.append(np.asarray(xy, dtype=float))
                tans.append(np.asarray(vel, dtype=float))
            L = min(rng.uniform(8, 14), float(meets[0][0]))
            if L > 0:
                times.insert(0, meets[0][0] - L)
                pts.insert(0, away(meets[0][1] - meets[0][2] * L, 0.15 * S, times[0]))
                tans.insert(0, None)
            L = rng.uniform(8, 14)
            times.append(meets[-1][0] + L)
            pts.append(away(meets[-1][1] + meets[-1][2] * L, 0.15 * S, times[-1]))
            tans.append(None)
        else:
            times.append(0.0)
            pts.append(away(np.array([S / 2, S / 2]), 0.3 * S, 0.0))
            tans.append(None)
        if times[0] > 0:  # wander back to frame 0, where a waypoint sits away from the target
            n = math.ceil(times[0] / 12)
            for tau in np.linspace(0, times[0], n + 1)[-2::-1]:
                times.insert(0, float(tau))
                pts.insert(0, away(step(pts[0], times[1] - tau), 0.1 * S, tau))
                tans.insert(0, None)
        while times[-1] < T - 1:
            L = rng.uniform(8, 14)
            times.append(times[-1] + L)
            pts.append(away(step(pts[-1], L), 0.1 * S, times[-1]))
            tans.append(None)
        tt = np.array(times)
        P = np.stack(pts)
        M = np.zeros_like(P)
        for i in range(len(tt)):  # Catmull-Rom tangents where not prescribed
            if tans[i] is not None:
                M[i] = tans[i]
            else:
                i0, i1 = max(i - 1, 0), min(i + 1, len(tt) - 1)
                M[i] = (P[i1] - P[i0]) / max(tt[i1] - tt[i0], 1e-9)
        path = _hermite(tt, P, M, np.arange(T, dtype=np.float64))
        # the prompt frames (0..2) must show the target well apart from every distractor
        k = min(3, T)
        if (np.linalg.norm(path[:k] - target_xy[:k], axis=1) > 2.0 * target_diam[:k]).all():
            break
    return path


def _make_blob(obj_id, depth, T, base_r, harm, texture, freq, hsv, angle0, spin):
    h, s, v = hsv
    c1 = np.tile(_hsv(h, s, v), (T, 1))
    c2 = np.tile(_hsv(h + 0.03, 0.8 * s, 0.45 * v), (T, 1))
    return _Blob(
        obj_id=obj_id,
        depth=depth,
        center=np.zeros((T, 2)),
        radius=np.full(T, base_r),
        angle=angle0 + spin * np.arange(T),
        harm_k=harm[0],
        harm_a=harm[1],
        harm_p=harm[2],
        texture=texture,
        tex_freq=np.full(T, freq),
        tex_phase=np.zeros(T),
        color1=c1,
        color2=c2,
    )


def _build_scene(seed: int, difficulty: str | Difficulty, num_frames: int, size: int) -> _Scene:
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if num_frames < 1 or size < 16:
        raise ValueError("need num_frames >= 1 and size >= 16")
    d = resolve_difficulty(difficulty)
    rng = np.random.default_rng(seed)
    T, S = int(num_frames), int(size)

    # ---- target appearance (base)
    R0 = _uniform(rng, d.target_radius) * S
    harm = (
        np.array([2, 3, 5]),
        np.array([rng.uniform(0.08, 0.3), rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.05)]),
        rng.uniform(0, 2 * math.pi, size=3),
    )
    texture = _TEXTURES[int(rng.integers(len(_TEXTURES)))]
    freq0 = rng.uniform(1.0, 2.0)
    hue0, sat0, val0 = rng.uniform(0, 1), rng.uniform(0.6, 0.95), rng.uniform(0.7, 0.95)
    angle0 = rng.uniform(0, 2 * math.pi)

    # ---- schedule
    first = min(6, max(T - 1, 1))
    occ_windows = _place_windows(rng, _scaled_count(rng, d.occlusions, T), d.occlusion_frames, first, T - 1, gap=4)
    banned = {t for a, b in occ_windows for t in range(a - 1, b + 2)}
    jump_frames: list[int] = []
    for _ in range(_scaled_count(rng, d.jumps, T)):
        cand = [t for t in range(3, T) if t not in banned and all(abs(t - j) >= 4 for j in jump_frames)]
        if cand:
            jump_frames.append(int(rng.choice(cand)))
    jump_frames.sort()
    jump_dists = [_uniform(rng, d.jump_distance) * S for _ in jump_frames]
    app_windows = _place_windows(rng, _scaled_count(rng, d.appearance_changes, T), d.appearance_frames, 2, T, gap=1)

    # ---- target
    curves = _appearance_curves(rng, d, T, app_windows)
    target = _make_blob(1, 0.0, T, R0, harm, texture, freq0, (hue0, sat0, val0), angle0, 0.0)
    target.radius = R0 * np.exp(curves[2])
    target.angle = angle0 + curves[3]
    target.tex_freq = freq0 * np.exp(curves[4])
    target.tex_phase = curves[5]
    target.color1 = np.stack([_hsv(hue0 + curves[0, t], sat0, val0 + curves[1, t]) for t in range(T)])
    target.color2 = np.stack([_hsv(hue0 + 0.03 + curves[0, t], 0.8 * sat0, 0.45 * (val0 + curves[1, t])) for t in range(T)])
    rb = target.radius * target.extent
    target.center = _target_path(rng, d, T, S, float(rb.max()), jump_frames, jump_dists)
    diam = 2.0 * target.radius

    # ---- distractors
    n_d = _randint(rng, d.num_distractors)
    blobs = [target]
    passes: list[tuple[int, int]] = []
    n_pass = _scaled_count(rng, d.distractor_passes, T) if n_d else 0
    occl_frames = {t for a, b in occ_windows for t in range(a - 1, b + 1)}
    per_d: dict[int, list[int]] = {k: [] for k in range(n_d)}
    for p in range(n_pass):
        k = p % n_d
        for _try in range(50):
            tm = int(rng.integers(min(10, T - 1), T)) if T > 1 else 0
            if tm in occl_frames or any(abs(tm - o) < 10 for o in per_d[k]):
                continue
            per_d[k].append(tm)
            passes.append((tm, k + 2))
            break
    passes.sort()
    for k in range(n_d):
        hue = hue0 + rng.normal(0, d.distractor_hue_jitter)
        sat = float(np.clip(sat0 + rng.normal(0, 0.05), 0.3, 1.0))
        val = float(np.clip(val0 + rng.normal(0, 0.05), 0.4, 1.0))
        r = R0 * math.exp(rng.normal(0, d.distractor_size_jitter))
        dh = (harm[0], np.clip(harm[1] + rng.normal(0, 0.04, size=3), 0.0, 0.3), harm[2] + rng.normal(0, 0.5, size=3))
        tex = texture if rng.uniform() < 0.8 else _TEXTURES[int(rng.integers(len(_TEXTURES)))]
        front = rng.uniform() < d.distractor_front_prob
        depth = (1.0 if front else -1.0) * (1.0 + 0.1 * k)
        blob = _make_blob(
            k + 2, depth, T, r, dh, tex, freq0 * math.exp(rng.normal(0, 0.15)),
            (hue, sat, val), rng.uniform(0, 2 * math.pi), rng.uniform(-0.04, 0.04),
        )
        blob.tex_phase = np.full(T, rng.uniform(0, 2 * math.pi))
        dspeed = _uniform(rng, d.speed) * S * rng.uniform(1.5, 2.5)
        meets = []
        for tm in sorted(per_d[k]):
            a = rng.uniform(0, 2 * math.pi)
            off = _uniform(rng, d.pass_distance) * diam[tm] * np.array([math.cos(a), math.sin(a)])
            b = rng.uniform(0, 2 * math.pi)
            meets.append((tm, target.center[tm] + off, dspeed * np.array([math.cos(b), math.sin(b)])))
        blob.center = _distractor_path(rng, T, S, dspeed, meets, target.center, diam)
        blobs.append(blob)
    blobs.sort(key=lambda b: b.depth)

    # ---- occluding bars: cover the target's bounding circle during each window
    bars: list[_Bar] = []
    corners = np.array([[0, 0], [S, 0], [0, S], [S, S]], dtype=float)
    for a, b in occ_windows:
        ang = rng.uniform(0, math.pi)
        n = np.array([math.cos(ang), math.sin(ang)])
        proj = target.center @ n
        win = np.arange(a, b)
        d_lin = np.interp(win, [a, b - 1], [proj[a], proj[b - 1]]) if b - 1 > a else proj[win]
        need = float(rb[win].max() + 0.02 * S + 1.0 + np.abs(d_lin - proj[win]).max())
        half = max(need, rng.uniform(0.08, 0.14) * S)
        shift = rng.uniform(-1, 1) * 0.8 * (half - need)
        d0, d1 = proj[a] + shift, proj[b - 1] + shift
        sgn = np.sign(d1 - d0) if abs(d1 - d0) > 1e-6 else rng.choice([-1.0, 1.0])
        pc = corners @ n
        d_in = pc.min() - half - 1 if sgn > 0 else pc.max() + half + 1
        d_out = pc.max() + half + 1 if sgn > 0 else pc.min() - half - 1
        vb = rng.uniform(0.1, 0.16) * S
        vb = max(vb, abs(d0 - d_in) / max(a - 1, 1))  # off screen at frame 0
        pre = max(2, math.ceil(abs(d0 - d_in) / vb))
        post = max(2, math.ceil(abs(d_out - d1) / vb))
        keys_t = [a - pre, a] + ([b - 1] if b - 1 > a else []) + [b - 1 + post]
        keys_d = [d_in, d0] + ([d1] if b - 1 > a else []) + [d_out]
        t_all = np.arange(T, dtype=float)
        off = np.interp(t_all, keys_t, keys_d)
        off[(t_all < keys_t[0]) | (t_all > keys_t[-1])] = np.nan
        hue = hue0 + rng.uniform(0.25, 0.75)
        bars.append(
            _Bar(
                angle=float(ang),
                half_width=float(half),
                offset=off,
                color1=_hsv(hue, rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.8)).astype(np.float32),
                color2=_hsv(hue + 0.05, rng.uniform(0.1, 0.5), rng.uniform(0.15, 0.4)).astype(np.float32),
                freq=float(2 * math.pi / rng.uniform(0.05, 0.12) / S),
                phase=float(rng.uniform(0, 2 * math.pi)),
            )
        )

    # ---- background: low-frequency colour noise + clutter shapes in other colours
    bg_hue = hue0 + rng.uniform(0.2, 0.8)
    base = _hsv(bg_hue, rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.6))
    bg = np.tile(base[None, None, :], (S, S, 1))
    for g, amp in ((4, 1.0), (9, 0.5)):
        W = _upsample_matrix(S, g)
        G = rng.normal(size=(3, g, g))
        G = 0.6 * G.mean(0, keepdims=True) + 0.4 * G  # mostly luminance
        bg += amp * d.background_contrast * 255.0 * np.einsum("ia,cab,jb->ijc", W, G, W)
    xx, yy = _grid(S)
    for _ in range(_randint(rng, d.clutter_shapes)):
        hue = hue0 + rng.uniform(0.15, 0.85)
        c1 = _hsv(hue, rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
        c2 = c1 * rng.uniform(0.5, 0.9)
        cx, cy = rng.uniform(0, S, size=2)
        r = rng.uniform(0.04, 0.14) * S
        th = rng.uniform(0, math.pi)
        c, s = math.cos(th), math.sin(th)
        u = ((xx - cx) * c + (yy - cy) * s) / r
        v = (-(xx - cx) * s + (yy - cy) * c) / r
        kind = int(rng.integers(3))
        aspect = rng.uniform(0.4, 1.0)
        if kind == 0:  # rectangle
            cov = (np.abs(u) <= 1.0) & (np.abs(v) <= aspect)
        elif kind == 1:  # ellipse
            cov = u * u + (v / aspect) ** 2 <= 1.0
        else:  # triangle
            cov = (v >= -aspect) & (v <= aspect * (1 - 2 * np.abs(u)))
        tex = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(0.5, 2.0) * u) if rng.uniform() < 0.5 else np.ones_like(u)
        col = c2 + tex[..., None] * (c1 - c2)
        bg[cov] = col[cov]
    bg = np.clip(bg, 0, 255).astype(np.float32)

    return _Scene(
        size=S,
        num_frames=T,
        difficulty=d,
        background=bg,
        blobs=blobs,
        bars=bars,
        noise_seed=int(rng.integers(2**62)),
        occlusion_windows=occ_windows,
        jump_frames=jump_frames,
        appearance_windows=app_windows,
        passes=passes,
    )


# --------------------------------------------------------------------------- rendering


def _render_scene(scene: _Scene, hide: frozenset[int] | set[int] = frozenset(), hide_bars: bool = False):
    """Render frames and id masks; objects whose id is in ``hide`` (and bars if ``hide_bars``) are skipped.

    The sensor noise is identical whatever is hidden, so renders differ only where
    a hidden layer was the top visible one.
    """
    T, S = scene.num_frames, scene.size
    xx, yy = _grid(S)
    frames = np.empty((T, S, S, 3), np.uint8)
    masks = np.zeros((T, S, S), np.uint8)
    noise_rng = np.random.default_rng(scene.noise_seed)
    amp = scene.difficulty.sensor_noise
    for t in range(T):
        img = scene.background.copy()
        ids = masks[t]
        for b in scene.blobs:
            if b.obj_id in hide:
                continue
            layer = _blob_layer(b, t, S)
            if layer is None:
                continue
            sl, cov, col = layer
            img[sl][cov] = col[cov]
            ids[sl][cov] = b.obj_id
        if not hide_bars:
            for bar in scene.bars:
                layer = _bar_layer(bar, t, xx, yy)
                if layer is None:
                    continue
                cov, col = layer
                img[cov] = col[cov]
                ids[cov] = 0
        noise = noise_rng.integers(-amp, amp + 1, size=(S, S, 3), dtype=np.int16)
        frames[t] = np.clip(np.rint(img).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return frames, masks


def _events(scene: _Scene, masks: np.ndarray) -> SceneEvents:
    T, S = scene.num_frames, scene.size
    target = scene.target
    visible = (masks == 1).reshape(T, -1).sum(1)
    full = np.zeros(T)
    for t in range(T):
        layer = _blob_layer(target, t, S)
        full[t] = 0 if layer is None else layer[1].sum()
    vis_frac = np.where(full > 0, visible / np.maximum(full, 1), 0.0)
    diam = 2.0 * target.radius
    near = np.zeros(T, bool)
    for b in scene.blobs:
        if b.obj_id == 1:
            continue
        seen = (masks == b.obj_id).reshape(T, -1).any(1)
        dist = np.linalg.norm(b.center - target.center, axis=1)
        near |= seen & (dist <= NEAR_DIAMETERS * diam)
    step = np.zeros(T)
    step[1:] = np.linalg.norm(np.diff(target.center, axis=0), axis=1)
    params = np.concatenate(
        [target.color1, target.color2, target.radius[:, None], target.angle[:, None],
         target.tex_freq[:, None], target.tex_phase[:, None]], axis=1,
    )
    change = np.zeros(T, bool)
    change[1:] = np.abs(np.diff(params, axis=0)).max(1) > 1e-6
    return SceneEvents(
        occluded=[bool(v == 0) for v in visible],
        distractor_near=[bool(x) for x in near],
        fast_motion=[bool(x) for x in step > FAST_MOTION_FRACTION * S],
        appearance_change=[bool(x) for x in change],
        visible_fraction=[round(float(x), 4) for x in vis_frac],
        occlusion_windows=[(int(a), int(b)) for a, b in scene.occlusion_windows],
        jump_frames=[int(j) for j in scene.jump_frames],
        appearance_windows=[(int(a), int(b)) for a, b in scene.appearance_windows],
        distractor_passes=[(int(t), int(k)) for t, k in scene.passes],
        num_distractors=sum(1 for b in scene.blobs if b.obj_id != 1),
    )


def generate_video(
    seed: int, difficulty: str | Difficulty = "medium", num_frames: int = 48, size: int = 128
) -> tuple[np.ndarray, np.ndarray, SceneEvents]:
    """Generate one video.

    Returns ``frames`` uint8 [T, H, W, 3], ``masks`` uint8 [T, H, W] object ids
    (1 = target, 2.. = distractors, 0 = background, bars included) and the
    :class:`SceneEvents`. The target is fully visible on frame 0 (the prompt).
    """
    scene = _build_scene(seed, difficulty, num_frames, size)
    frames, masks = _render_scene(scene)
    return frames, masks, _events(scene, masks)
