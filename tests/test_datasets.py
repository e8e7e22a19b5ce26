"""Tests for sam2rl.datasets: the VOS folder reader."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import PIL.ImageFile
from PIL import Image

import sam2rl.datasets.sequence as sequence_module
from sam2rl.datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetError,
    Track,
    VideoDataset,
    VideoSequence,
    group_by_prompt_frame,
)


W, H = 32, 24


# --------------------------------------------------------------------------- helpers


def _write_frame(path: Path, seed: int, size: tuple[int, int] = (W, H)) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGB").save(path, quality=90)


def _gray_mask(t: int, size: tuple[int, int] = (W, H)) -> Image.Image:
    arr = np.zeros((size[1], size[0]), np.uint8)
    arr[4 : 10 + t, 3:12] = 255
    return Image.fromarray(arr, "L")


def _palette_mask(ids: np.ndarray) -> Image.Image:
    im = Image.fromarray(ids.astype(np.uint8), "P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [255, 255, 255] * 253
    im.putpalette(palette)
    return im


def make_seq(
    root: Path,
    name: str,
    n: int = 5,
    *,
    resolution: str | None = "480p",
    masks: dict[int, Image.Image] | None = None,
    numbers: list[int] | None = None,
) -> tuple[Path, Path]:
    """Write a tiny sequence; by default a grayscale mask on every frame."""
    jdir = root / "JPEGImages"
    adir = root / "Annotations"
    if resolution:
        jdir, adir = jdir / resolution, adir / resolution
    jdir, adir = jdir / name, adir / name
    jdir.mkdir(parents=True, exist_ok=True)
    adir.mkdir(parents=True, exist_ok=True)
    numbers = list(range(n)) if numbers is None else numbers
    for k, num in enumerate(numbers):
        _write_frame(jdir / f"{num:05d}.jpg", seed=zlib.crc32(f"{name}/{k}".encode()))
    if masks is None:
        masks = {num: _gray_mask(k) for k, num in enumerate(numbers)}
    for num, im in masks.items():
        im.save(adir / f"{num:05d}.png")
    return jdir, adir


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    make_seq(tmp_path, "bb", 4)
    make_seq(tmp_path, "aa", 5)
    return tmp_path


def _raises(match: str):
    return pytest.raises(DatasetError, match=match)


# --------------------------------------------------------------------------- real footage


@pytest.fixture(scope="module")
def davis(davis_root: Path) -> VideoDataset:
    return VideoDataset(davis_root)


def test_davis2016_layout(davis: VideoDataset) -> None:
    assert len(davis) == 6
    assert [s.name for s in davis.sequences] == [
        "blackswan",
        "car-shadow",
        "dance-jump",
        "horsejump-high",
        "kite-surf",
        "scooter-gray",
    ]
    counts = {s.name: s.num_frames for s in davis.sequences}
    assert counts == {
        "blackswan": 50,
        "car-shadow": 40,
        "dance-jump": 60,
        "horsejump-high": 50,
        "kite-surf": 50,
        "scooter-gray": 75,
    }
    bs = davis["blackswan"]
    assert len(bs.mask_paths) == 50
    assert (bs.width, bs.height) == (854, 480)
    m = bs.mask(0)
    assert m is not None and m.shape == (480, 854)
    assert set(np.unique(m).tolist()) == {0, 1}
    assert bs.object_mask(0, 1).dtype == bool
    assert bs.object_mask(0, 1).sum() == (m == 1).sum() > 0


def test_davis2016_tracks(davis: VideoDataset) -> None:
    tracks = davis.tracks()
    assert len(tracks) == 6
    for seq, tr in zip(davis.sequences, tracks):
        assert tr == Track(seq.name, 1, 0)
        assert seq.object_ids == [1]


def test_davis2016_frames_match_sam2_loader(davis: VideoDataset, tmp_path: Path) -> None:
    from sam2.utils.misc import load_video_frames

    src = davis["blackswan"]
    clip, ann = tmp_path / "clip", tmp_path / "ann"
    clip.mkdir()
    ann.mkdir()
    for p, m in zip(src.frame_paths[:5], src.mask_paths[:5]):
        shutil.copy(p, clip / p.name)
        shutil.copy(m, ann / m.name)
    ours = VideoSequence("clip", clip, ann).frames(64)
    ref, h, w = load_video_frames(
        video_path=str(clip),
        image_size=64,
        offload_video_to_cpu=True,
        compute_device=torch.device("cpu"),
    )
    assert (h, w) == (480, 854)
    assert ours.dtype == torch.float32 and ours.shape == (5, 3, 64, 64)
    assert torch.equal(ours, ref)
    assert torch.equal(src.frame(3, 64), ref[3])


# --------------------------------------------------------------------------- happy paths


def test_tiny_dataset_basics(tiny: Path) -> None:
    ds = VideoDataset(tiny)
    assert ds.resolution == "480p"
    assert [s.name for s in ds.sequences] == ["aa", "bb"]
    assert len(ds) == 2 and "aa" in ds
    aa = ds["aa"]
    assert aa.num_frames == 5 and (aa.height, aa.width) == (H, W)
    assert [p.name for p in aa.frame_paths] == [f"{i:05d}.jpg" for i in range(5)]
    m = aa.mask(2)
    assert m is not None and m.shape == (H, W) and m.dtype == np.uint8
    assert set(np.unique(m).tolist()) == {0, 1}
    f = aa.frame(1, 16)
    assert f.dtype == torch.float32 and f.shape == (3, 16, 16)
    assert aa.frames(16).shape == (5, 3, 16, 16)
    assert ds.tracks() == [Track("aa", 1, 0), Track("bb", 1, 0)]
    with pytest.raises(KeyError, match="zz"):
        ds["zz"]
    with pytest.raises(IndexError):
        aa.frame(5, 16)


def test_frames_match_sam2_loader_tiny(tiny: Path) -> None:
    from sam2.utils.misc import load_video_frames

    seq = VideoDataset(tiny)["aa"]
    ref, _, _ = load_video_frames(
        video_path=str(seq.frame_dir),
        image_size=20,
        offload_video_to_cpu=True,
        img_mean=IMAGENET_MEAN,
        img_std=IMAGENET_STD,
        compute_device=torch.device("cpu"),
    )
    assert torch.equal(seq.frames(20), ref)


def test_no_resolution_level_and_explicit_resolution(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    make_seq(flat, "s1", 4, resolution=None)
    ds = VideoDataset(flat)
    assert ds.resolution is None and ds["s1"].num_frames == 4

    full = tmp_path / "full"
    make_seq(full, "s2", 3, resolution="Full-Resolution")
    assert VideoDataset(full, resolution="Full-Resolution")["s2"].num_frames == 3
    with _raises("1080p"):
        VideoDataset(full, resolution="1080p")


def test_frame_order_is_numeric(tmp_path: Path) -> None:
    jdir, adir = make_seq(tmp_path, "s", resolution=None, numbers=[8, 9, 10, 11])
    seq = VideoDataset(tmp_path)["s"]
    assert [p.name for p in seq.frame_paths] == [f"{i:05d}.jpg" for i in (8, 9, 10, 11)]
    assert seq.mask(0) is not None


def test_palette_multi_object(tmp_path: Path) -> None:
    masks = {}
    for t in range(5):
        ids = np.zeros((H, W), np.uint8)
        ids[2:8, 2:8] = 1
        if t >= 2:
            ids[12:20, 15:25] = 2
        ids[0, :] = 255  # DAVIS-2017 void border
        masks[t] = _palette_mask(ids)
    make_seq(tmp_path, "multi", 5, masks=masks)
    seq = VideoDataset(tmp_path)["multi"]
    assert seq.object_ids == [1, 2]
    assert seq.tracks() == [Track("multi", 1, 0), Track("multi", 2, 2)]
    m = seq.mask(3)
    assert m is not None and set(np.unique(m).tolist()) == {0, 1, 2}
    assert (m[0] == 0).all()  # void reads as background
    assert seq.object_mask(1, 2).sum() == 0
    assert seq.object_mask(2, 2).sum() == 80
    late, early = Track("multi", 2, 2), Track("multi", 1, 0)
    assert group_by_prompt_frame([late, early, late]) == [[early], [late, late]]
    prompts = seq.prompt_masks([early, late])
    assert prompts.dtype == torch.bool and prompts.shape == (2, H, W)
    assert prompts.sum((1, 2)).tolist() == [36, 80]


def test_sparse_annotations(tmp_path: Path) -> None:
    """MOSE/YouTube-VOS style: only some frames annotated; map by frame number."""
    ids0 = np.zeros((H, W), np.uint8)
    ids0[1:5, 1:5] = 3
    ids3 = ids0.copy()
    ids3[10:14, 10:14] = 7
    make_seq(tmp_path, "sp", 6, masks={0: _palette_mask(ids0), 3: _palette_mask(ids3)})
    seq = VideoDataset(tmp_path)["sp"]
    assert len(seq.mask_paths) == 2
    assert seq.mask(1) is None and seq.object_mask(1, 3) is None
    assert seq.mask(3) is not None
    assert seq.tracks() == [Track("sp", 3, 0), Track("sp", 7, 3)]
    with pytest.raises(DatasetError, match="sp: no annotation on the prompt frame of Track"):
        seq.prompt_masks([Track("sp", 3, 1)])


def test_split_file_and_list(tiny: Path) -> None:
    make_seq(tiny, "cc", 3)
    split = tiny / "val.txt"
    split.write_text("# validation\ncc\n\n  aa  # trailing comment\n")
    ds = VideoDataset(tiny, split=split)
    assert [s.name for s in ds.sequences] == ["cc", "aa"]
    assert [s.name for s in VideoDataset(tiny, split="val.txt").sequences] == ["cc", "aa"]
    assert [s.name for s in VideoDataset(tiny, split=["bb"]).sequences] == ["bb"]


def test_content_hash(tiny: Path) -> None:
    ds = VideoDataset(tiny)
    h = ds["aa"].content_hash()
    assert len(h) == 64 and h == ds["aa"].content_hash()
    assert h != ds["bb"].content_hash()
    assert VideoDataset(tiny)["aa"].content_hash() == h
    _write_frame(ds["aa"].frame_paths[2], seed=12345)
    assert VideoDataset(tiny)["aa"].content_hash() != h


def test_construction_is_lazy(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_loader = sequence_module._load_img_as_tensor

    def counting_loader(path, image_size):
        calls.append(str(path))
        return real_loader(path, image_size)

    decodes: list[str] = []
    real_file_load = PIL.ImageFile.ImageFile.load

    def counting_file_load(self):
        decodes.append(str(getattr(self, "filename", "")))
        return real_file_load(self)

    monkeypatch.setattr(sequence_module, "_load_img_as_tensor", counting_loader)
    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", counting_file_load)
    ds = VideoDataset(tiny)
    assert calls == [] and decodes == [], "construction must only read headers"
    ds["aa"].frame(2, 16)
    assert len(calls) == 1 and calls[0].endswith("00002.jpg")
    assert decodes, "the loader decodes, so the decode counter must see it"


# --------------------------------------------------------------------------- bad input


def test_missing_root(tmp_path: Path) -> None:
    with _raises("does not exist"):
        VideoDataset(tmp_path / "nope")


def test_no_jpegimages(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    with _raises(r"no JPEGImages folder"):
        VideoDataset(tmp_path)


def test_sequence_without_frames(tiny: Path) -> None:
    (tiny / "JPEGImages/480p/empty").mkdir()
    (tiny / "JPEGImages/480p/empty/notes.txt").write_text("hi")
    with _raises(r"'empty' has no frames"):
        VideoDataset(tiny)


def test_sequence_without_annotation_folder(tiny: Path) -> None:
    shutil.rmtree(tiny / "Annotations/480p/aa")
    with _raises(r"'aa' has no annotations: folder .*aa does not exist"):
        VideoDataset(tiny)


def test_sequence_with_empty_annotation_folder(tiny: Path) -> None:
    for p in (tiny / "Annotations/480p/aa").iterdir():
        p.unlink()
    with _raises(r"'aa' has no annotations: no \.png files"):
        VideoDataset(tiny)


def test_all_background_annotations(tmp_path: Path) -> None:
    blank = Image.fromarray(np.zeros((H, W), np.uint8), "L")
    make_seq(tmp_path, "void", 4, masks={t: blank for t in range(4)})
    ds = VideoDataset(tmp_path)  # cheap construction does not decode masks...
    with _raises(r"'void': no object appears in any annotation"):
        ds.tracks()  # ...the first object scan does


def test_all_void_palette_hint(tmp_path: Path) -> None:
    ids = np.full((H, W), 255, np.uint8)
    make_seq(tmp_path, "v", 3, masks={t: _palette_mask(ids) for t in range(3)})
    with _raises(r"no object appears.*255 is read as void"):
        VideoDataset(tmp_path)["v"].object_ids


def test_annotation_size_mismatch(tiny: Path) -> None:
    bad = tiny / "Annotations/480p/bb/00002.png"
    _gray_mask(0, size=(40, 30)).save(bad)
    with _raises(rf"{bad.name}.* is 40x30 .*frames are {W}x{H}"):
        VideoDataset(tiny)


def test_first_frame_not_an_image(tiny: Path) -> None:
    bad = tiny / "JPEGImages/480p/aa/00000.jpg"
    bad.write_text("this is not a jpeg")
    with _raises(rf"cannot read frame .*aa.{bad.name}"):
        VideoDataset(tiny)


def test_annotation_not_an_image(tiny: Path) -> None:
    bad = tiny / "Annotations/480p/aa/00003.png"
    bad.write_text("garbage")
    with _raises(rf"cannot read annotation .*aa.{bad.name}"):
        VideoDataset(tiny)


def test_later_frame_not_an_image(tiny: Path) -> None:
    bad = tiny / "JPEGImages/480p/aa/00003.jpg"
    bad.write_text("text, not pixels")
    seq = VideoDataset(tiny)["aa"]  # only the first frame's header is read up front
    seq.frame(2, 16)
    with _raises(rf"cannot read frame .*aa.{bad.name}"):
        seq.frame(3, 16)


def test_gap_in_frame_numbering_is_read(tmp_path: Path) -> None:
    """A gap is no error: frame index = position in numeric order, the name stays the file's."""
    from sam2.utils.misc import load_video_frames

    make_seq(tmp_path, "gappy", numbers=[0, 1, 3])
    seq = VideoDataset(tmp_path)["gappy"]
    assert seq.num_frames == 3 and seq.frame_names == ["00000", "00001", "00003"]
    assert seq.object_masks(1)[1].tolist() == [True, True, True]
    assert np.array_equal(seq.mask(2), np.array(_gray_mask(2)) > 127)  # 00003.png is index 2's
    ref, _, _ = load_video_frames(video_path=str(seq.frame_dir), image_size=16, offload_video_to_cpu=True,
                                  compute_device=torch.device("cpu"))
    assert torch.equal(seq.frames(16), ref)  # sam2 orders and indexes the frames the same way


def test_non_numeric_frame_name(tiny: Path) -> None:
    _write_frame(tiny / "JPEGImages/480p/aa/cover.jpg", seed=1)
    with _raises(r"cover\.jpg has a non-numeric name"):
        VideoDataset(tiny)


def test_annotation_without_frame(tiny: Path) -> None:
    _gray_mask(0).save(tiny / "Annotations/480p/bb/00009.png")
    with _raises(r"00009\.png has frame number 9, but sequence 'bb'"):
        VideoDataset(tiny)


def test_unknown_sequence_in_split(tiny: Path) -> None:
    split = tiny / "train.txt"
    split.write_text("aa\nghost\n")
    with _raises(r"split file .*train\.txt names sequence 'ghost'"):
        VideoDataset(tiny, split=split)
    with _raises(r"split list names sequence 'ghost'"):
        VideoDataset(tiny, split=["ghost"])


def test_missing_split_file(tiny: Path) -> None:
    with _raises(r"split file nope\.txt not found"):
        VideoDataset(tiny, split="nope.txt")
