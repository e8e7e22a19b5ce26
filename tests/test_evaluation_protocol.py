"""Evaluation protocols: sam2's non-overlap rule, and `--protocol davis2017` giving what the DAVIS 2017
toolkit (tests/davis_toolkit.py) computes on the masks `sam2rl eval` writes; the default is unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import davis_toolkit as toolkit
import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from sam2.modeling.sam2_base import SAM2Base

from sam2rl.cli import main as sam2rl
from sam2rl.controllers import make_controller
from sam2rl.datasets import Track, VideoDataset
from sam2rl.evaluation.evaluate import evaluate, pool_results
from sam2rl.evaluation.protocols import non_overlapping, non_overlapping_runs, score_run
from sam2rl.evaluation.report import TRACK_COLUMNS, results_table
from sam2rl.evaluation.statistics import STATISTICS_KEYS
from sam2rl.metrics import score_track
from sam2rl.tracker import ModelSpec, Tracker, TrackerSettings, TrackRun, video_features

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
FIGURES = ("j_mean", "j_recall", "j_decay", "f_mean", "f_recall", "f_decay")
OLD_ROW_KEYS = {"sequence", "object_id", "prompt_frame", "fps", "iou", "f", "jf", "quality", "j_mean", "f_mean",
                "jf_mean", "presence", "num_frames", "bank_frames", "actions"}


def grid(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row] for row in rows])


def _run(object_id: int, prompt_frame: int, masks: torch.Tensor) -> TrackRun:
    frames = masks.shape[0]
    return TrackRun(Track("seq", object_id, prompt_frame), masks, torch.zeros(frames), torch.zeros(frames),
                    torch.zeros(frames, 7, dtype=torch.long), torch.zeros(frames - 1, dtype=torch.long), 0.0)


# ---------------------------------------------------------------- sam2's non-overlap rule


def test_non_overlapping_masks_hand_checked() -> None:
    masks = torch.stack([grid(["1100", "1100", "0000"]),
                         grid(["0110", "0110", "0110"]),
                         grid(["0011", "0000", "0011"])])
    kept = non_overlapping(masks)
    # bool masks carry no logits: a pixel several objects claim goes to the first (sam2's argmax on a tie)
    assert torch.equal(kept[0], grid(["1100", "1100", "0000"]))
    assert torch.equal(kept[1], grid(["0010", "0010", "0110"]))
    assert torch.equal(kept[2], grid(["0001", "0000", "0001"]))
    assert int(kept.sum(0).max()) == 1 and torch.equal(kept.any(0), masks.any(0))


def test_non_overlapping_logits_hand_checked() -> None:
    logits = torch.tensor([[[2.0, 1.0, -1.0, 5.0, -3.0]],
                           [[1.0, 3.0, 0.5, 5.0, -2.0]]])
    kept = non_overlapping(logits)
    # highest logit wins; pixel 2: object 2's 0.5 > 0 wins; pixel 3: a tie, the first; pixel 4: nobody's
    assert kept[0].tolist() == [[True, False, False, True, False]]
    assert kept[1].tolist() == [[False, True, True, False, False]]


@pytest.mark.parametrize("threshold", [0.0, 0.7, -20.0])
def test_non_overlapping_is_sam2s_rule(threshold: float) -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randint(-4, 5, (4, 1, 17, 23), generator=gen).float() * 3  # coarse: many ties
    logits[2] = -1024.0  # an absent object (sam2's NO_OBJ_SCORE)
    expected = SAM2Base._apply_non_overlapping_constraints(None, logits) > threshold  # uses no attribute of self
    assert torch.equal(non_overlapping(logits, threshold), expected)
    assert torch.equal(non_overlapping(logits[:1], threshold), logits[:1] > threshold)  # one object: as is


def test_non_overlapping_runs_align_frames_and_leave_the_input() -> None:
    a = torch.ones(3, 2, 2, dtype=torch.bool)  # object 5: frames 0..2, everywhere
    b = torch.zeros(2, 2, 2, dtype=torch.bool)  # object 2: prompted on frame 1, its left column
    b[:, :, 0] = True
    runs = [_run(5, 0, a), _run(2, 1, b)]
    kept = non_overlapping_runs(runs)
    assert [run.track.object_id for run in kept] == [5, 2]  # the given order
    assert torch.equal(kept[1].masks, b)  # the lower id keeps its pixels
    assert kept[0].masks[0].all()  # frame 0: object 2 not there yet
    assert kept[0].masks[1:].tolist() == [[[False, True], [False, True]]] * 2
    assert a.all() and kept[1].masks is b  # inputs untouched; unchanged masks not copied
    assert non_overlapping_runs([]) == []


# ---------------------------------------------------------------- against the toolkit, on the written masks


def _eval(tmp: Path, data: Path, *args: str) -> dict:
    code = sam2rl(["eval", "--data", str(data), "--model", "nano", "--image-size", "64", "--controllers", "fifo",
                   "--dump-masks", str(tmp / "masks"), "--json", str(tmp / "scores.json"),
                   "--csv", str(tmp / "scores.csv"), *args])
    assert code == 0
    return json.loads((tmp / "scores.json").read_text())


def _toolkit_rows(results: dict, masks: Path, gts: dict[str, np.ndarray]) -> list[tuple[dict, dict]]:
    """(sam2rl's row, the toolkit's) per track, the toolkit reading the PNGs `sam2rl eval` wrote."""
    pairs = []
    for sequence, gt in gts.items():
        expected = toolkit.evaluate_sequence(gt, toolkit.read_results(masks / "fifo" / sequence))
        rows = [row for row in results["controllers"]["fifo"]["tracks"] if row["sequence"] == sequence]
        assert sorted(row["object_id"] for row in rows) == list(range(1, len(expected) + 1))
        pairs += [(row, expected[row["object_id"] - 1]) for row in rows]
    return pairs


@pytest.fixture(scope="module")
def sample_gt() -> dict[str, np.ndarray]:
    return {path.name: toolkit.read_gt(path) for path in sorted((SAMPLE / "Annotations" / "480p").iterdir())}


@pytest.fixture(scope="module")
def sample_setup() -> tuple[Tracker, VideoDataset, dict]:
    tracker = Tracker.from_spec(ModelSpec("nano", image_size=64), "cpu", TrackerSettings())
    dataset = VideoDataset(SAMPLE)
    return tracker, dataset, {video.name: video_features(tracker, video) for video in dataset.sequences}


@pytest.fixture(scope="module")
def davis_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("davis2017")
    return out, _eval(out, SAMPLE, "--protocol", "davis2017")


def test_davis2017_equals_the_toolkit_on_the_written_masks(davis_run: tuple[Path, dict],
                                                           sample_gt: dict[str, np.ndarray]) -> None:
    out, results = davis_run
    assert (results["protocol"], results["non_overlap"]) == ("davis2017", True)
    pairs = _toolkit_rows(results, out / "masks", sample_gt)
    assert len(pairs) == 5
    for row, expected in pairs:
        for key in FIGURES:
            assert row[key] == expected[key], (row["sequence"], row["object_id"], key)
        assert row["jf_mean"] == (expected["j_mean"] + expected["f_mean"]) / 2
    overall = results["controllers"]["fifo"]["overall"]
    assert overall["jf_mean"] == pytest.approx(toolkit.global_jf([expected for _, expected in pairs]), rel=1e-12)
    for key in FIGURES:
        assert overall[key] == pytest.approx(np.mean([expected[key] for _, expected in pairs]), rel=1e-12)


def test_without_non_overlap_the_scores_are_not_the_written_masks(sample_setup: tuple[Tracker, VideoDataset, dict],
                                                                  sample_gt: dict[str, np.ndarray],
                                                                  tmp_path: Path) -> None:
    """The sample's objects overlap: scored as tracked, they are not what the PNGs (one id a pixel) hold."""
    tracker, dataset, features = sample_setup
    results = evaluate(tracker, dataset, [make_controller("fifo")], features=features, protocol="davis2017",
                       non_overlap=False, dump_masks=tmp_path / "masks")
    assert results["non_overlap"] is False
    pairs = _toolkit_rows(results, tmp_path / "masks", sample_gt)
    assert any(row["j_mean"] != expected["j_mean"] for row, expected in pairs)


def test_davis2017_on_real_footage_equals_the_toolkit(blackswan_clip: Path, tmp_path: Path) -> None:
    results = _eval(tmp_path, blackswan_clip, "--protocol", "davis2017")  # 854x480: 8 px boundary tolerance
    frames = sorted((blackswan_clip / "Annotations" / "blackswan").glob("*.png"))
    gt = np.stack([np.array(Image.open(path)) > 127 for path in frames])[None]  # DAVIS-2016: 0/255
    (row, expected), = _toolkit_rows(results, tmp_path / "masks", {"blackswan": gt})
    assert 0 < expected["f_mean"] < 1 and 0 < expected["j_mean"]  # (nano knows synthetic scenes only)
    for key in FIGURES:
        assert row[key] == expected[key], key


def test_a_late_object_counts_as_absent_before_its_prompt(late_object_sample: Path) -> None:
    """Object 7 first appears on frame 22 of 24: the written masks hold nothing for it before, and the
    toolkit scores those frames too (both empty: J = F = 1)."""
    video = next(v for v in VideoDataset(late_object_sample).sequences if v.name == "synth-medium-1000-000")
    track = next(t for t in video.tracks() if t.object_id == 7)
    gt, _ = video.object_masks(7)
    masks = gt[22:].clone()
    masks[:, :4, :4] = False  # a worse mask on the prompt frame, the last one scored
    row = score_run(video, _run(7, track.prompt_frame, masks), "davis2017")
    pred = torch.cat([torch.zeros_like(gt[:22]), masks])
    (expected,) = toolkit.evaluate_sequence(gt.numpy()[None], pred.numpy()[None])
    assert track.prompt_frame == 22 and expected["j_mean"] < 1
    for key in FIGURES:
        assert row[key] == expected[key], key
    assert len(row["iou"]) == 2  # the row's own curves cover the tracked frames only


def test_davis2017_csv_and_table_carry_the_new_figures(davis_run: tuple[Path, dict]) -> None:
    out, results = davis_run
    with (out / "scores.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["controller", "sequence", "object_id", "prompt_frame", "quality", "j_mean", "j_recall",
                                 "j_decay", "f_mean", "f_recall", "f_decay", "jf_mean", "presence", "fps"]
    for got, row in zip(rows, results["controllers"]["fifo"]["tracks"], strict=True):
        assert all(float(got[key]) == row[key] for key in FIGURES)
    with (out / "scores-overall.csv").open(newline="") as handle:
        (overall,) = list(csv.DictReader(handle))
    assert float(overall["j_decay"]) == results["controllers"]["fifo"]["overall"]["j_decay"]
    console = Console(width=200, record=True)
    console.print(results_table(results, "sam2rl eval"))
    text = console.export_text()
    assert "DAVIS 2017 protocol" in text and "non-overlapping masks" in text
    for header in ("J-Recall", "J-Decay", "F-Recall", "F-Decay", "J&F", "quality", "vs FIFO"):
        assert header in text


# ---------------------------------------------------------------- the default stays as it was


def test_default_protocol_scores_each_mask_as_tracked(sample_setup: tuple[Tracker, VideoDataset, dict]) -> None:
    tracker, dataset, features = sample_setup
    raw: dict[str, list[TrackRun]] = {}
    results = evaluate(tracker, dataset, [make_controller("fifo")], features=features,
                       on_runs=lambda video, name, runs: raw.__setitem__(video.name, runs))
    assert (results["protocol"], results["non_overlap"]) == ("sam2rl", False)
    videos = {video.name: video for video in dataset.sequences}
    overlap = 0
    for row in results["controllers"]["fifo"]["tracks"]:
        assert set(row) == OLD_ROW_KEYS
        run = next(run for run in raw[row["sequence"]] if run.track.object_id == row["object_id"])
        gt, annotated = videos[row["sequence"]].object_masks(run.track.object_id, run.frames)
        expected = score_track(run.masks, gt, annotated=annotated).to_dict()
        assert {key: row[key] for key in expected} == expected
    for runs in raw.values():
        overlap += int((torch.stack([run.masks for run in runs]).sum(0) > 1).sum())
    assert overlap > 0  # masks as tracked: objects overlap here
    assert set(results["controllers"]["fifo"]["overall"]) == {"quality", "j_mean", "f_mean", "jf_mean", "presence",
                                                             "fps", "gain_over_fifo", *STATISTICS_KEYS}
    table = results_table(results, "sam2rl eval")
    assert [column.header for column in table.columns] == ["controller", "quality", "J", "F", "J&F", "presence", "fps",
                                                          "vs FIFO", "95% CI", "W/T/L"]
    assert table.title == "sam2rl eval — nano @ 64 px" and TRACK_COLUMNS[4:-1] == ("quality", "j_mean", "f_mean",
                                                                                "jf_mean", "presence")


def test_quality_is_the_same_figure_under_both_protocols(sample_setup: tuple[Tracker, VideoDataset, dict]) -> None:
    tracker, dataset, features = sample_setup
    fifo = make_controller("fifo")
    default = evaluate(tracker, dataset, [fifo], features=features)["controllers"]["fifo"]
    davis = evaluate(tracker, dataset, [fifo], features=features, protocol="davis2017",
                     non_overlap=False)["controllers"]["fifo"]
    for old, new in zip(default["tracks"], davis["tracks"], strict=True):
        assert (new["iou"], new["quality"], new["presence"]) == (old["iou"], old["quality"], old["presence"])
    assert davis["overall"]["gain_over_fifo"] == 0.0


def test_pool_refuses_to_mix_protocols() -> None:
    row = {"sequence": "a", "object_id": 1, "prompt_frame": 0, "quality": 0.5, "j_mean": 0.5, "f_mean": 0.5,
           "jf_mean": 0.5, "presence": 1.0, "fps": 1.0}
    base = {"model": {"model": "nano"}, "skip_first": 7,
            "controllers": {"fifo": {"bank": {"anchors": 1, "recent": 6}, "tracks": [row]}}}
    davis = {**base, "protocol": "davis2017", "non_overlap": True,
             "controllers": {"fifo": {"bank": {"anchors": 1, "recent": 6}, "tracks": [{**row, "sequence": "b"}]}}}
    with pytest.raises(ValueError, match="pool: two: protocol davis2017 differs from one's sam2rl"):
        pool_results([base, davis], ["one", "two"])
    assert pool_results([base, base | {"controllers": davis["controllers"]}], ["one", "two"])["protocol"] == "sam2rl"


def test_unknown_protocol_is_refused(sample_setup: tuple[Tracker, VideoDataset, dict],
                                     capsys: pytest.CaptureFixture) -> None:
    tracker, dataset, features = sample_setup
    with pytest.raises(ValueError, match="unknown protocol 'davis2016'; choose from sam2rl, davis2017"):
        evaluate(tracker, dataset, [make_controller("fifo")], features=features, protocol="davis2016")
    with pytest.raises(SystemExit):
        sam2rl(["eval", "--data", str(SAMPLE), "--protocol", "davis2016"])
    assert "invalid choice: 'davis2016'" in capsys.readouterr().err
