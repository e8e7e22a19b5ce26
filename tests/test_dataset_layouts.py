"""The benchmark layouts as they ship (YouTube-VOS, MOSE, DAVIS 2017), built as tiny synthetic trees:
strided and offset frame numbering, sparse masks, frames and annotations from separate roots,
submission masks named after the source frames, and bad input named in the error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam2rl.cli import main as sam2rl
from sam2rl.datasets import DatasetError, Track, VideoDataset, VideoSequence
from sam2rl.datasets.palette import davis_palette
from sam2rl.evaluation.evaluate import write_masks
from sam2rl.metrics import score_track
from sam2rl.tracker import TrackRun
from sam2rl.tracker.video import ground_truth_masks

SIZE = (32, 24)  # W, H
BOXES = {1: (slice(2, 8), slice(2, 10)), 2: (slice(12, 20), slice(16, 28))}


def _jpegs(folder: Path, numbers: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        pixels = np.random.default_rng(number).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"{number:05d}.jpg", quality=90)


def _ids(folder: Path, number: int, objects: tuple[int, ...], void_border: bool = False) -> None:
    """A palette PNG of object ids, as DAVIS / YouTube-VOS / MOSE ship them."""
    ids = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    for oid in objects:
        ids[BOXES[oid]] = oid
    if void_border:
        ids[0, :] = 255
    image = Image.fromarray(ids, "P")
    image.putpalette(davis_palette())
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / f"{number:05d}.png")


@pytest.fixture
def ytvos(tmp_path: Path) -> Path:
    """YouTube-VOS: masks on every 5th frame; `valid` annotates only where an object first appears
    (object 2 of `dog` on 00010, alone in that PNG) and `valid_all_frames` holds every frame;
    `late`'s frames start at 00012."""
    root = tmp_path / "youtube-vos"
    _jpegs(root / "train/JPEGImages/cat", range(0, 21, 5))
    for number in range(0, 21, 5):
        _ids(root / "train/Annotations/cat", number, (1, 2) if number >= 10 else (1,))
    _jpegs(root / "valid/JPEGImages/dog", range(0, 21, 5))
    _jpegs(root / "valid/JPEGImages/late", range(12, 23, 5))
    _ids(root / "valid/Annotations/dog", 0, (1,))
    _ids(root / "valid/Annotations/dog", 10, (2,))
    _ids(root / "valid/Annotations/late", 12, (1,))
    _jpegs(root / "valid_all_frames/JPEGImages/dog", range(0, 21))
    _jpegs(root / "valid_all_frames/JPEGImages/late", range(12, 23))
    listed = {"train": {"cat": {"1": 0, "2": 10}}, "valid": {"dog": {"1": 0, "2": 10}, "late": {"1": 12}}}
    for split, videos in listed.items():  # meta.json ships beside the folders (first frames only here)
        meta = {video: {"objects": {oid: {"category": "x", "frames": [f"{first:05d}"]}
                                    for oid, first in objects.items()}} for video, objects in videos.items()}
        (root / split / "meta.json").write_text(json.dumps({"videos": meta}))
    return root


@pytest.fixture
def mose(tmp_path: Path) -> Path:
    """MOSE: flat JPEGImages/<video>/, Annotations/<video>/; train annotates every frame, valid the first."""
    root = tmp_path / "MOSE"
    for split in ("train", "valid"):
        _jpegs(root / split / "JPEGImages/crowd", range(5))
    for number in range(5):
        _ids(root / "train/Annotations/crowd", number, (1, 2))
    _ids(root / "valid/Annotations/crowd", 0, (1, 2))
    return root


def _annotated(video: VideoSequence, object_id: int) -> list[int]:
    return torch.nonzero(video.object_masks(object_id)[1]).flatten().tolist()


def _truth_runs(video: VideoSequence) -> list[TrackRun]:
    """Runs that 'predict' each object's box on every frame from its prompt on, as a tracker would."""
    runs = []
    for track in video.tracks():
        steps = video.num_frames - track.prompt_frame
        masks = torch.zeros(steps, video.height, video.width, dtype=torch.bool)
        masks[(slice(None), *BOXES[track.object_id])] = True
        runs.append(TrackRun(track, masks, torch.zeros(steps), torch.zeros(steps), torch.zeros(steps, 7),
                             torch.zeros(steps - 1), 0.0))
    return runs


# --------------------------------------------------------------------------- YouTube-VOS


def test_youtube_vos_train_is_strided(ytvos: Path) -> None:
    """Every 5th frame: index = position, name = the file's; an object first seen later is prompted there."""
    cat = VideoDataset(ytvos / "train")["cat"]
    assert cat.num_frames == 5 and cat.frame_names == ["00000", "00005", "00010", "00015", "00020"]
    assert cat.tracks() == [Track("cat", 1, 0), Track("cat", 2, 2)]
    assert _annotated(cat, 2) == [0, 1, 2, 3, 4]  # absent before 00010, and that is ground truth
    assert cat.object_mask(1, 2).sum() == 0 and cat.object_mask(2, 2).sum() == 8 * 12


def test_youtube_vos_valid_alone(ytvos: Path) -> None:
    ds = VideoDataset(ytvos / "valid")
    assert ds.names() == ["dog", "late"]  # meta.json is no video
    dog, late = ds["dog"], ds["late"]
    assert dog.tracks() == [Track("dog", 1, 0), Track("dog", 2, 2)]
    assert _annotated(dog, 1) == [0, 2]
    assert late.frame_names == ["00012", "00017", "00022"] and late.tracks() == [Track("late", 1, 0)]


@pytest.mark.parametrize("frames", ["valid_all_frames", "valid_all_frames/JPEGImages"])
def test_youtube_vos_valid_with_all_frames(ytvos: Path, frames: str) -> None:
    """Frames from `valid_all_frames` (a dataset-like root or the video folders' parent), masks from `valid`."""
    ds = VideoDataset(ytvos / "valid", frames_root=ytvos / frames)
    assert ds.frame_root == ytvos / "valid_all_frames/JPEGImages"
    assert ds.annotation_root == ytvos / "valid/Annotations"
    dog, late = ds["dog"], ds["late"]
    assert dog.num_frames == 21 and dog.frame_names == [f"{n:05d}" for n in range(21)]
    assert dog.frame_paths[3] == ytvos / "valid_all_frames/JPEGImages/dog/00003.jpg"
    assert dog.tracks() == [Track("dog", 1, 0), Track("dog", 2, 10)]
    # valid's PNGs are prompts (00010 holds object 2 alone), so its scores say little: submit the masks
    assert _annotated(dog, 1) == _annotated(dog, 2) == [0, 10]
    assert late.num_frames == 11 and late.frame_names[0] == "00012" and late.tracks() == [Track("late", 1, 0)]
    truth, annotated = ground_truth_masks(dog, dog.tracks(), 16)  # what training rewards read
    assert annotated.nonzero()[:, 1].tolist() == [0, 10, 0, 10] and truth.shape == (2, 21, 16, 16)
    prompts = dog.prompt_masks(dog.tracks())
    assert prompts.sum((1, 2)).tolist() == [6 * 8, 8 * 12]


@pytest.mark.parametrize("annotations", ["valid", "valid/Annotations"])
def test_annotations_from_a_separate_root(ytvos: Path, annotations: str) -> None:
    ds = VideoDataset(ytvos / "valid_all_frames", annotations_root=ytvos / annotations)
    assert ds.annotation_root == ytvos / "valid/Annotations"
    assert ds["dog"].num_frames == 21 and ds["dog"].tracks() == [Track("dog", 1, 0), Track("dog", 2, 10)]


# --------------------------------------------------------------------------- MOSE and DAVIS 2017


def test_mose_train_and_first_frame_only_valid(mose: Path) -> None:
    train = VideoDataset(mose / "train")["crowd"]
    assert train.tracks() == [Track("crowd", 1, 0), Track("crowd", 2, 0)] and _annotated(train, 2) == [0, 1, 2, 3, 4]
    valid = VideoDataset(mose / "valid")["crowd"]
    assert valid.tracks() == [Track("crowd", 1, 0), Track("crowd", 2, 0)]
    gt, annotated = valid.object_masks(1)
    assert annotated.tolist() == [True, False, False, False, False]
    assert ground_truth_masks(valid, valid.tracks(), 16)[1].sum().item() == 2  # the prompt frame of each
    # tracked on every frame, scored on none but the (given) prompt: nothing to score, not zero
    pred = torch.ones(5, *gt.shape[1:], dtype=torch.bool)
    assert math.isnan(score_track(pred, gt, skip_first=0, annotated=annotated).j_mean)


def test_davis2017_layout(tmp_path: Path) -> None:
    """JPEGImages/480p, Annotations/480p, ImageSets/2017/*.txt, void border: read as before."""
    root = tmp_path / "DAVIS"
    for video in ("bike", "dogs"):
        _jpegs(root / "JPEGImages/480p" / video, range(4))
        for number in range(4):
            _ids(root / "Annotations/480p" / video, number, (1, 2), void_border=True)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("dogs\n")
    ds = VideoDataset(root, split="ImageSets/2017/val.txt")
    assert ds.resolution == "480p" and ds.names() == ["dogs"]
    dogs = ds["dogs"]
    assert dogs.frame_names == ["00000", "00001", "00002", "00003"] and dogs.object_ids == [1, 2]
    mask = dogs.mask(0)
    assert mask is not None and (mask[0] == 0).all()
    write_masks(tmp_path / "out", dogs, _truth_runs(dogs))
    assert sorted(p.name for p in (tmp_path / "out/dogs").iterdir()) == [f"{t:05d}.png" for t in range(4)]


# --------------------------------------------------------------------------- output names


def test_write_masks_names_after_source_frames(ytvos: Path, tmp_path: Path) -> None:
    ds = VideoDataset(ytvos / "valid")
    for video in ds:
        write_masks(tmp_path, video, _truth_runs(video))
    assert sorted(p.name for p in (tmp_path / "late").iterdir()) == ["00012.png", "00017.png", "00022.png"]
    written = sorted((tmp_path / "dog").iterdir())
    assert [p.name for p in written] == ["00000.png", "00005.png", "00010.png", "00015.png", "00020.png"]
    with Image.open(written[1]) as image:  # object 2 is prompted on 00010: not there yet on 00005
        assert image.mode == "P" and set(np.unique(np.array(image)).tolist()) == {0, 1}
    with Image.open(written[2]) as image:
        assert set(np.unique(np.array(image)).tolist()) == {0, 1, 2}


def test_eval_cli_with_all_frames_writes_submission_names(ytvos: Path, nano_random_checkpoint: Path,
                                                          tmp_path: Path) -> None:
    code = sam2rl(["eval", "--data", str(ytvos / "valid"), "--frames-root", str(ytvos / "valid_all_frames"),
                   "--model", "nano", "--checkpoint", str(nano_random_checkpoint), "--image-size", "64",
                   "--json", str(tmp_path / "scores.json"), "--dump-masks", str(tmp_path / "masks")])
    assert code == 0
    tracks = json.loads((tmp_path / "scores.json").read_text())["controllers"]["fifo"]["tracks"]
    assert [(t["sequence"], t["object_id"], t["prompt_frame"]) for t in tracks] == [("dog", 1, 0), ("dog", 2, 10),
                                                                                      ("late", 1, 0)]
    assert len(tracks[0]["iou"]) == 21
    late = sorted(p.name for p in (tmp_path / "masks/fifo/late").iterdir())
    assert late == [f"{n:05d}.png" for n in range(12, 23)]


# --------------------------------------------------------------------------- bad input


def _raises(match: str):
    return pytest.raises(DatasetError, match=match)


def test_annotation_matching_no_frame(ytvos: Path) -> None:
    _ids(ytvos / "train/Annotations/cat", 3, (1,))
    with _raises(r"00003\.png has frame number 3, but sequence 'cat' has no frame with that number in .*cat "
                 r"\(its 5 frames run 00000\.jpg\.\.00020\.jpg\)"):
        VideoDataset(ytvos / "train")


def test_frames_root_without_the_video(ytvos: Path) -> None:
    for path in (ytvos / "valid_all_frames/JPEGImages/late").iterdir():
        path.unlink()
    (ytvos / "valid_all_frames/JPEGImages/late").rmdir()
    with _raises(r"'late': frame folder .*valid_all_frames.JPEGImages.late does not exist"):
        VideoDataset(ytvos / "valid", frames_root=ytvos / "valid_all_frames")


def test_unreadable_annotation_png(ytvos: Path) -> None:
    bad = ytvos / "valid/Annotations/dog/00010.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with _raises(r"cannot read annotation .*dog.00010\.png"):
        VideoDataset(ytvos / "valid", frames_root=ytvos / "valid_all_frames")


def test_missing_separate_roots(ytvos: Path) -> None:
    with _raises(r"frames root .*nope does not exist"):
        VideoDataset(ytvos / "valid", frames_root=ytvos / "nope")
    with _raises(r"annotations root .*nope does not exist"):
        VideoDataset(ytvos / "valid", annotations_root=ytvos / "nope")
    with _raises(r"'dog' has no annotations: folder .*valid_all_frames.dog does not exist"):
        VideoDataset(ytvos / "valid", annotations_root=ytvos / "valid_all_frames")
