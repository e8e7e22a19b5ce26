"""`sam2rl eval` outputs: CSV tables, PNG plots, overlay GIFs, SAM2Long's pathway search, controller errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image

import sam2rl.controllers.pathways as pathways
from sam2rl.cli import main as sam2rl
from sam2rl.evaluation.plots import comparison_figure, write_plots
from sam2rl.evaluation.report import OVERALL_COLUMNS, TRACK_COLUMNS
from sam2rl.tracker import TrackRun

SAMPLE = Path(__file__).resolve().parents[1] / "sam2rl" / "sample"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _eval(checkpoint: Path, *args: str) -> int:
    return sam2rl(["eval", "--data", str(SAMPLE), "--model", "nano", "--checkpoint", str(checkpoint),
                   "--image-size", "64", *args])


def _one_sequence(tmp_path: Path) -> Path:
    split = tmp_path / "split.txt"
    split.write_text("synth-medium-1000-000\n")
    return split


@pytest.fixture(scope="module")
def sample_run(nano_random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One `fifo,random` run on the bundled sample (2 sequences, 5 tracks) writing every output."""
    out = tmp_path_factory.mktemp("eval-outputs")
    code = _eval(nano_random_checkpoint, "--controllers", "fifo,random", "--json", str(out / "scores.json"),
                 "--csv", str(out / "scores.csv"), "--plots", str(out / "plots"), "--video", str(out / "videos"))
    assert code == 0
    return out, json.loads((out / "scores.json").read_text())


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _same(text: str, value: float | int | None) -> bool:
    if value is None:
        return text == ""
    if isinstance(value, float) and math.isnan(value):
        return text == "nan"
    return float(text) == value  # full precision: repr round-trips exactly


def test_csv_rows_and_columns_match_json(sample_run: tuple[Path, dict]) -> None:
    out, results = sample_run
    columns, rows = _read_csv(out / "scores.csv")
    assert columns == list(TRACK_COLUMNS)
    expected = [(name, row) for name, entry in results["controllers"].items() for row in entry["tracks"]]
    assert len(rows) == len(expected) == 10  # 5 tracks x 2 controllers
    for got, (name, row) in zip(rows, expected):
        assert (got["controller"], got["sequence"]) == (name, row["sequence"])
        for key in TRACK_COLUMNS[2:]:
            assert _same(got[key], row[key]), (name, key, got[key], row[key])
    columns, overall = _read_csv(out / "scores-overall.csv")
    assert columns == list(OVERALL_COLUMNS)
    assert [row["controller"] for row in overall] == ["fifo", "random"]
    for got in overall:
        summary = results["controllers"][got["controller"]]["overall"]
        for key in OVERALL_COLUMNS[1:]:
            assert _same(got[key], summary[key]), (got["controller"], key)


def test_json_has_the_gain_over_fifo(sample_run: tuple[Path, dict]) -> None:
    _, results = sample_run
    fifo, rand = (results["controllers"][name]["overall"] for name in ("fifo", "random"))
    assert fifo["gain_over_fifo"] == 0.0
    assert rand["gain_over_fifo"] == pytest.approx((rand["quality"] - fifo["quality"]) / fifo["quality"])
    assert results["controllers"]["fifo"]["bank"] == {"anchors": 1, "recent": 6}


def test_plots_are_written_per_track_plus_the_headline(sample_run: tuple[Path, dict]) -> None:
    out, results = sample_run
    tracks = {(row["sequence"], row["object_id"]) for row in results["controllers"]["fifo"]["tracks"]}
    expected = {f"{seq}_obj{oid}_{kind}.png" for seq, oid in tracks for kind in ("iou", "memory")}
    assert {path.name for path in (out / "plots").iterdir()} == expected | {"gain_over_fifo.png"}
    for path in (out / "plots").iterdir():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, path.name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert 200 < image.width <= 1000 and 150 < image.height <= 1000, (path.name, image.size)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 20, path.name  # something was drawn


def test_comparison_figure_shows_only_the_chosen_controllers(sample_run: tuple[Path, dict], tmp_path: Path) -> None:
    _, results = sample_run
    written = write_plots(results, tmp_path, compare=["random", "fifo"])
    compare = sorted(p.name for p in written if p.name.endswith("_compare.png"))
    assert len(compare) == 5  # one per track
    figure = comparison_figure(results, "synth-medium-1000-000", 1, ["random", "fifo"])
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles == ["IoU per frame (tracking quality)", "random: memory bank after each frame",
                      "fifo: memory bank after each frame"]
    assert [line.get_label().split(" ")[0] for line in figure.axes[0].get_lines()] == ["random", "fifo"]
    with pytest.raises(KeyError, match="no controller 'oracle'"):
        comparison_figure(results, "synth-medium-1000-000", 1, ["fifo", "oracle"])


def test_gif_has_one_frame_per_tracked_frame(sample_run: tuple[Path, dict]) -> None:
    out, results = sample_run
    for name, entry in results["controllers"].items():
        for row in entry["tracks"]:
            path = out / "videos" / name / f"{row['sequence']}_obj{row['object_id']}.gif"
            with Image.open(path) as gif:
                assert gif.format == "GIF" and gif.size == (128, 128)  # sample frames: 128 px, under 320
                assert gif.n_frames == len(row["iou"]) == 24


def test_gif_downscales_to_320_px(blackswan_clip: Path, tmp_path: Path) -> None:
    import torch

    from sam2rl.datasets import VideoDataset
    from sam2rl.evaluation.videos import write_overlay_gif

    video = VideoDataset(blackswan_clip).sequences[0]
    track = video.tracks()[0]
    frames = 5
    masks = torch.zeros(frames, video.height, video.width, dtype=torch.bool)
    masks[:, 100:300, 200:500] = True
    run = TrackRun(track, masks, torch.zeros(frames), torch.zeros(frames),
                            torch.zeros(frames, 7, dtype=torch.long), torch.zeros(frames - 1, dtype=torch.long), 0.0)
    with Image.open(write_overlay_gif(tmp_path / "a.gif", video, run, label="fifo")) as gif:
        assert gif.size == (320, 180) and gif.n_frames == frames
        gif.seek(2)
        inside, outside = gif.convert("RGB").getpixel((130, 75)), gif.convert("RGB").getpixel((30, 160))
    assert inside != outside


def test_sam2long_pathways_run_through_the_search(nano_random_checkpoint: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    search = pathways.track_video_sam2long

    def spy(tracker, video, num_pathways=3, **kwargs):
        calls.append(num_pathways)
        return search(tracker, video, num_pathways=num_pathways, **kwargs)

    monkeypatch.setattr(pathways, "track_video_sam2long", spy)
    code = _eval(nano_random_checkpoint, "--split", str(_one_sequence(tmp_path)), "--controllers",
                 "sam2long,sam2long:2", "--json", str(tmp_path / "scores.json"), "--video", str(tmp_path / "videos"))
    assert code == 0
    assert calls == [2]  # plain sam2long is the one-pathway rule, stepped by track_video
    results = json.loads((tmp_path / "scores.json").read_text())
    rows = results["controllers"]["sam2long:2"]["tracks"]
    assert [(row["sequence"], row["object_id"]) for row in rows] == [("synth-medium-1000-000", 1),
                                                                     ("synth-medium-1000-000", 2)]
    for row in rows:
        assert len(row["iou"]) == len(row["bank_frames"]) == 24 and len(row["actions"]) == 23
        assert 0.0 <= row["quality"] <= 1.0 and row["bank_frames"][-1][0] == 0  # the prompt anchor stays
    assert results["controllers"]["sam2long:2"]["overall"]["gain_over_fifo"] is None  # no FIFO in this run
    assert len(list((tmp_path / "videos" / "sam2long_2").glob("*.gif"))) == 2


@pytest.mark.parametrize("name", ["sam2long:0", "sam2long:x"])
def test_bad_pathway_count_is_a_clean_error(name: str, capsys: pytest.CaptureFixture) -> None:
    assert sam2rl(["eval", "--data", str(SAMPLE), "--random-weights", "--controllers", f"fifo,{name}"]) == 2
    assert f"controller {name!r}: P in sam2long:P must be a positive integer" in capsys.readouterr().err


BAD_RULE = '''
import torch
from sam2rl.controllers import Controller


class BadRule(Controller):
    """FIFO until frame 3, then an action one past the last valid one."""

    name = "bad-rule"

    def act(self, prediction, candidate, bank):
        if int(candidate.frame[0]) == 3:
            return torch.full_like(bank.fifo_action(), bank.num_actions)
        return bank.fifo_action()
'''


def test_invalid_action_names_controller_and_frame(nano_random_checkpoint: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad_rule_module.py").write_text(BAD_RULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = _eval(nano_random_checkpoint, "--split", str(_one_sequence(tmp_path)), "--controllers",
                 "fifo,bad_rule_module.BadRule", "--json", str(tmp_path / "scores.json"))
    out = capsys.readouterr().err
    assert code == 2  # input errors end every command with status 2
    assert ("controller 'bad-rule' failed on frame 3 of sequence 'synth-medium-1000-000': actions must be in [0, 7]"
            in out), out
    assert "Traceback" not in out and not (tmp_path / "scores.json").exists()
