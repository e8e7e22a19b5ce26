"""Tests for sam2rl.synth: the synthetic benchmark whose videos break a FIFO memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2rl.synth import (
    DIFFICULTIES,
    Difficulty,
    SceneEvents,
    davis_palette,
    generate_video,
    video_seed,
    write_dataset,
)
from sam2rl.synth.cli import main as synth_main
from sam2rl.synth.preview import contact_sheet
from sam2rl.synth.render import render_scene as _render_scene
from sam2rl.synth.scene import build_scene as _build_scene

SEEDS = range(4)
EVENTS = ("occluded", "distractor_near", "fast_motion", "appearance_change")


@pytest.fixture(scope="module")
def videos() -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray, SceneEvents]]:
    """Default-size videos (48 frames, 128 px) for a few seeds at each difficulty, made once."""
    return {(d, s): generate_video(s, d) for d in DIFFICULTIES for s in range(6)}


def _runs(flags: list[bool]) -> list[int]:
    out, r = [], 0
    for x in list(flags) + [False]:
        if x:
            r += 1
        elif r:
            out.append(r)
            r = 0
    return out


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- basic contract


def test_shapes_dtypes_and_ids(videos):
    frames, masks, ev = videos[("medium", 0)]
    assert frames.shape == (48, 128, 128, 3) and frames.dtype == np.uint8
    assert masks.shape == (48, 128, 128) and masks.dtype == np.uint8
    ids = set(np.unique(masks).tolist())
    assert {0, 1, 2} <= ids and ids <= set(range(2 + ev.num_distractors))
    for name in EVENTS + ("visible_fraction",):
        assert len(getattr(ev, name)) == 48


@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
def test_prompt_frame_shows_whole_target(videos, difficulty):
    for s in range(6):
        _, masks, ev = videos[(difficulty, s)]
        assert ev.visible_fraction[0] == 1.0
        assert (masks[0] == 1).sum() > 100


def test_other_lengths_sizes_and_custom_difficulty():
    frames, masks, ev = generate_video(3, "hard", num_frames=10, size=64)
    assert frames.shape == (10, 64, 64, 3) and masks.shape == (10, 64, 64)
    assert len(ev.occluded) == 10
    custom = Difficulty(name="mine", occlusions=(0, 0), jumps=(0, 0), distractor_passes=(0, 0), num_distractors=(0, 0))
    frames, masks, ev = generate_video(1, custom, num_frames=12, size=48)
    assert set(np.unique(masks).tolist()) <= {0, 1}
    assert not any(ev.fast_motion) and ev.occlusion_windows == [] and ev.num_distractors == 0
    with pytest.raises(ValueError):
        generate_video(0, "impossible")
    with pytest.raises(ValueError):
        generate_video(-1)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays_different_seed_different(videos):
    f1, m1, e1 = videos[("medium", 2)]
    f2, m2, e2 = generate_video(2, "medium")
    assert np.array_equal(f1, f2) and np.array_equal(m1, m2) and e1 == e2
    f3, m3, _ = videos[("medium", 3)]
    assert not np.array_equal(f1, f3) and not np.array_equal(m1, m3)
    f4, _, _ = videos[("hard", 2)]
    assert not np.array_equal(f1, f4)


def test_write_dataset_twice_same_bytes(tmp_path):
    a = write_dataset(tmp_path / "a", num=2, seed=5, difficulty="hard", num_frames=8, size=64)
    b = write_dataset(tmp_path / "b", num=2, seed=5, difficulty="hard", num_frames=8, size=64)
    assert a == b == ["synth-hard-5-000", "synth-hard-5-001"]
    ta, tb = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert ta.keys() == tb.keys() and len(ta) == 2 * 2 * 8 + 2
    assert all(ta[k] == tb[k] for k in ta)
    write_dataset(tmp_path / "c", num=2, seed=6, difficulty="hard", num_frames=8, size=64)
    tc = _tree_bytes(tmp_path / "c")
    jpgs = lambda t: [v for k, v in t.items() if k.endswith(".jpg")]  # noqa: E731
    assert jpgs(ta) != jpgs(tc)


def test_video_seed_derivation(tmp_path):
    assert video_seed(3, 7) == 3 * 100003 + 7
    write_dataset(tmp_path, num=2, seed=3, num_frames=4, size=32)
    frames, masks, _ = generate_video(video_seed(3, 1), "medium", 4, 32)
    png = np.array(Image.open(tmp_path / "Annotations/480p/synth-medium-3-001/00002.png"))
    assert np.array_equal(png, masks[2])
    meta = json.loads((tmp_path / "synth.json").read_text())
    assert [v["seed"] for v in meta["videos"]] == [3 * 100003, 3 * 100003 + 1]


# --------------------------------------------------------------------------- masks vs frames


@pytest.mark.parametrize("difficulty,seed", [("medium", 0), ("hard", 1), ("easy", 2)])
def test_object_pixels_lie_on_their_colour_segment(difficulty, seed):
    """Every pixel of object k in the mask has object k's colour c2 + tex * (c1 - c2) (+ noise)."""
    scene = _build_scene(seed, difficulty, 48, 128)
    frames, masks = _render_scene(scene)
    f0, m0, _ = generate_video(seed, difficulty)
    assert np.array_equal(frames, f0) and np.array_equal(masks, m0)
    tol = scene.difficulty.sensor_noise * np.sqrt(3) + 1.5
    for b in scene.blobs:
        for t in range(0, 48, 3):
            sel = masks[t] == b.obj_id
            if not sel.any():
                continue
            px = frames[t][sel].astype(float)
            c1, c2 = b.color1[t], b.color2[t]
            seg = c1 - c2
            lam = np.clip((px - c2) @ seg / (seg @ seg), 0, 1)
            dist = np.linalg.norm(px - (c2 + lam[:, None] * seg), axis=1)
            assert dist.max() <= tol, (b.obj_id, t, dist.max())


def test_mean_colour_inside_target_mask(videos):
    for s in SEEDS:
        scene = _build_scene(s, "medium", 48, 128)
        frames, masks, _ = videos[("medium", s)]
        tgt = scene.target
        for t in range(0, 48, 4):
            sel = masks[t] == 1
            if sel.sum() < 30:
                continue
            mean_in = frames[t][sel].astype(float).mean(0)
            lo = np.minimum(tgt.color1[t], tgt.color2[t]) - 6
            hi = np.maximum(tgt.color1[t], tgt.color2[t]) + 6
            assert np.all(mean_in >= lo) and np.all(mean_in <= hi)
            mean_bg = frames[t][masks[t] == 0].astype(float).mean(0)
            assert np.linalg.norm(mean_in - mean_bg) > 20


@pytest.mark.parametrize("difficulty,seed", [("medium", 1), ("hard", 0)])
def test_hiding_an_object_changes_exactly_its_visible_pixels(difficulty, seed):
    scene = _build_scene(seed, difficulty, 48, 128)
    frames, masks = _render_scene(scene)
    for obj_id in (1, 2):
        hidden, hmasks = _render_scene(scene, hide={obj_id})
        diff = np.any(frames != hidden, axis=-1)
        vis = masks == obj_id
        assert not np.any(diff & ~vis), f"pixels changed outside object {obj_id}'s mask"
        assert diff[vis].mean() > 0.97  # a few pixels may coincide after rounding
        assert not np.any(hmasks == obj_id)
        assert np.array_equal(hmasks[~vis], masks[~vis])


def test_occlusion_windows_have_empty_target_mask(videos):
    for d in ("medium", "hard"):
        for s in SEEDS:
            _, masks, ev = videos[(d, s)]
            assert ev.occlusion_windows
            for a, b in ev.occlusion_windows:
                for t in range(a, b):
                    assert ev.occluded[t] and not np.any(masks[t] == 1)
            for t, occ in enumerate(ev.occluded):
                assert occ == (not np.any(masks[t] == 1))


def test_bars_are_background_on_top(videos):
    scene = _build_scene(0, "medium", 48, 128)
    frames, masks = _render_scene(scene)
    no_bar, no_bar_masks = _render_scene(scene, hide_bars=True)
    a, _ = scene.occlusion_windows[0]
    assert (no_bar_masks[a] == 1).sum() > 100 and not np.any(masks[a] == 1)
    changed = np.any(frames[a] != no_bar[a], axis=-1)
    assert np.all(masks[a][changed] == 0)


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_every_event_in_every_medium_and_hard_video(videos, difficulty):
    for s in SEEDS:
        _, _, ev = videos[(difficulty, s)]
        counts = ev.counts()
        assert all(counts[k] > 0 for k in EVENTS), (s, counts)
        assert ev.num_distractors >= 1 and ev.distractor_passes and ev.jump_frames and ev.appearance_windows


def test_medium_occlusions_last_several_frames(videos):
    for s in range(6):
        _, _, ev = videos[("medium", s)]
        runs = _runs(ev.occluded)
        assert runs and max(runs) >= 3 and max(runs) <= 8, runs
        assert all(3 <= b - a <= 6 for a, b in ev.occlusion_windows)


def test_fast_motion_is_the_scheduled_jumps(videos):
    for d in DIFFICULTIES:
        for s in SEEDS:
            _, _, ev = videos[(d, s)]
            assert [t for t, x in enumerate(ev.fast_motion) if x] == ev.jump_frames


def test_appearance_change_is_the_scheduled_windows(videos):
    for s in SEEDS:
        _, _, ev = videos[("hard", s)]
        expected = sorted({t for a, b in ev.appearance_windows for t in range(a, b)})
        assert [t for t, x in enumerate(ev.appearance_change) if x] == expected


def test_distractors_are_near_at_their_passes(videos):
    hits = total = 0
    for d in ("medium", "hard"):
        for s in range(6):
            _, _, ev = videos[(d, s)]
            for t, _k in ev.distractor_passes:
                total += 1
                hits += ev.distractor_near[t]
    assert total > 0 and hits / total > 0.9


def test_easy_is_rarer_than_medium_is_rarer_than_hard(videos):
    totals = {d: {k: sum(videos[(d, s)][2].counts()[k] for s in range(6)) for k in EVENTS} for d in DIFFICULTIES}
    for k in EVENTS:
        assert totals["easy"][k] < totals["medium"][k] < totals["hard"][k], (k, totals)
    # some easy videos have no occlusion / jump at all
    assert any(videos[("easy", s)][2].counts()["occluded"] == 0 for s in range(6))
    assert any(videos[("easy", s)][2].counts()["fast_motion"] == 0 for s in range(6))


def test_difficulty_presets_are_ordered():
    e, m, h = DIFFICULTIES["easy"], DIFFICULTIES["medium"], DIFFICULTIES["hard"]
    for knob in ("occlusions", "jumps", "distractor_passes", "num_distractors", "appearance_changes", "clutter_shapes"):
        assert getattr(e, knob)[1] <= getattr(m, knob)[1] <= getattr(h, knob)[1]
    assert e.occlusions[0] == 0 and m.occlusions[0] >= 1 and h.occlusions[0] >= 1
    assert e.distractor_hue_jitter > m.distractor_hue_jitter > h.distractor_hue_jitter
    assert e.jump_distance[0] < m.jump_distance[0] < h.jump_distance[0]
    assert e.hue_drift < m.hue_drift < h.hue_drift
    assert {d.name for d in DIFFICULTIES.values()} == set(DIFFICULTIES)


# --------------------------------------------------------------------------- dataset layout and CLI


def test_written_layout(tmp_path):
    names = write_dataset(tmp_path, num=3, seed=1, difficulty="medium", num_frames=6, size=48)
    assert names == [f"synth-medium-1-{i:03d}" for i in range(3)]
    assert (tmp_path / "ImageSets/all.txt").read_text().split() == names
    pal = davis_palette()
    assert pal[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] and len(pal) == 768
    meta = json.loads((tmp_path / "synth.json").read_text())
    assert meta["num"] == 3 and meta["num_frames"] == 6 and meta["size"] == 48
    assert meta["difficulty"]["name"] == "medium"
    assert [v["name"] for v in meta["videos"]] == names
    for v in meta["videos"]:
        assert len(v["events"]["occluded"]) == 6 and set(v["events"]["counts"]) == set(EVENTS)
    for name in names:
        jpgs = sorted((tmp_path / "JPEGImages/480p" / name).glob("*.jpg"))
        pngs = sorted((tmp_path / "Annotations/480p" / name).glob("*.png"))
        assert len(jpgs) == len(pngs) == 6
        assert [p.stem for p in jpgs] == [p.stem for p in pngs] == [f"{t:05d}" for t in range(6)]
        for jp, pp in zip(jpgs, pngs):
            im, an = Image.open(jp), Image.open(pp)
            assert im.mode == "RGB" and an.mode == "P" and im.size == an.size == (48, 48)
            assert an.getpalette()[:24] == pal[:24]
            ids = set(np.unique(np.array(an)).tolist())
            assert ids <= set(range(8))
        first = np.array(Image.open(pngs[0]))
        assert {0, 1} <= set(np.unique(first).tolist())


def test_cli_writes_n_videos(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = synth_main(
        ["--out", str(out), "--num", "2", "--seed", "4", "--difficulty", "hard", "--frames", "5", "--size", "40",
         "--preview", str(tmp_path / "p.png")]
    )
    assert rc == 0
    assert sorted(p.name for p in (out / "JPEGImages/480p").iterdir()) == ["synth-hard-4-000", "synth-hard-4-001"]
    assert len(list((out / "Annotations/480p").rglob("*.png"))) == 10
    assert (out / "ImageSets/all.txt").read_text().split() == ["synth-hard-4-000", "synth-hard-4-001"]
    assert Image.open(tmp_path / "p.png").size[0] > 40
    assert "hard" in capsys.readouterr().out
    assert synth_main(["--out", str(out), "--num", "0"]) == 2
    assert "error: --num 0 (need >= 1)" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert synth_main(["--out", str(tmp_path / "file"), "--num", "1", "--frames", "2", "--size", "32"]) == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        synth_main(["--out", str(out), "--difficulty", "extreme"])


def test_write_dataset_never_mixes_into_a_folder(tmp_path, capsys):
    out = tmp_path / "ds"
    names = write_dataset(out, num=2, seed=4, num_frames=3, size=32)
    before = _tree_bytes(out)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]  # the staging folder became `out`
    assert write_dataset(out, num=2, seed=4, num_frames=3, size=32) == names  # already there: left as it is
    with pytest.raises(FileExistsError, match=f"{out} is not empty \\(another synthetic dataset\\)"):
        write_dataset(out, num=3, seed=4, num_frames=3, size=32)
    assert synth_main(["--out", str(out), "--num", "2", "--seed", "5", "--frames", "3", "--size", "32"]) == 2
    assert f"{out} is not empty" in capsys.readouterr().err
    assert _tree_bytes(out) == before  # nothing written over
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no readable synth.json"):
        write_dataset(tmp_path / "other", num=1, seed=0, num_frames=3, size=32)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert write_dataset(tmp_path / "empty", num=1, seed=0, num_frames=3, size=32) == ["synth-medium-0-000"]


def test_contact_sheet(videos):
    frames, masks, ev = videos[("medium", 0)]
    sheet = contact_sheet(frames, masks, ev, scale=1)
    assert sheet.mode == "RGB" and sheet.size[0] > 4 * 128
