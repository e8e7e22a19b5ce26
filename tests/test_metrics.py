"""VOS metrics against hand-computed cases and a numpy transcription of the DAVIS reference (davis_toolkit)."""

from __future__ import annotations

import json
import math

import davis_toolkit as toolkit  # numpy transcription of the DAVIS 2017 toolkit (tests/davis_toolkit.py)
import numpy as np
import pytest
import torch

from sam2rl.metrics import (
    TrackScores,
    boundary_f,
    boundary_precision_recall,
    boundary_tolerance,
    dilate_disk,
    disk_kernel,
    iou,
    j_and_f,
    presence_accuracy,
    score_track,
    score_tracks,
    seg2bmap,
)


def square(h: int, w: int, r0: int, c0: int, side: int) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[r0 : r0 + side, c0 : c0 + side] = True
    return m


def grid(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row] for row in rows])


# ---------------------------------------------------------------- IoU


def test_iou_hand_computed() -> None:
    pred = grid(["1100", "1100", "0000", "0000"])  # 4 px
    gt = grid(["0110", "0110", "0110", "0000"])  # 6 px, overlap 2 -> union 8
    assert iou(pred, gt).item() == pytest.approx(2 / 8)
    assert iou(gt, pred).item() == pytest.approx(2 / 8)
    assert iou(pred, pred).item() == 1.0


def test_iou_empty_conventions() -> None:
    empty = torch.zeros(4, 4, dtype=torch.bool)
    full = torch.ones(4, 4, dtype=torch.bool)
    assert iou(empty, empty).item() == 1.0
    assert iou(empty, full).item() == 0.0
    assert iou(full, empty).item() == 0.0


def test_iou_batch_shape_and_numpy() -> None:
    pred = grid(["1100", "1100", "0000", "0000"])
    gt = grid(["0110", "0110", "0110", "0000"])
    empty = torch.zeros(4, 4, dtype=torch.bool)
    p = torch.stack([torch.stack([pred, empty, pred]), torch.stack([empty, pred, gt])])
    g = torch.stack([torch.stack([gt, empty, pred]), torch.stack([gt, empty, gt])])
    out = iou(p, g)
    assert out.shape == (2, 3)
    assert out.dtype == torch.float32
    expected = torch.tensor([[0.25, 1.0, 1.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(out, expected)
    # numpy (uint8) input gives the same numbers
    torch.testing.assert_close(iou(p.numpy().astype(np.uint8), g.numpy()), expected)


def test_presence_accuracy() -> None:
    empty = torch.zeros(4, 4, dtype=torch.bool)
    some = square(4, 4, 1, 1, 2)
    other = square(4, 4, 0, 0, 1)
    p = torch.stack([empty, some, empty, some])
    g = torch.stack([empty, other, some, empty])
    torch.testing.assert_close(presence_accuracy(p, g), torch.tensor([1.0, 1.0, 0.0, 0.0]))


# ---------------------------------------------------------------- boundary maps


def test_seg2bmap_interior_square() -> None:
    seg = square(5, 5, 1, 1, 2)  # rows/cols 1..2
    expected = grid(["11100", "10100", "11100", "00000", "00000"])
    assert torch.equal(seg2bmap(seg), expected)


def test_seg2bmap_square_in_bottom_right_corner() -> None:
    # Last row compares only with E, last column only with S, corner pixel never boundary.
    seg = square(5, 5, 3, 3, 2)  # rows/cols 3..4
    expected = grid(["00000", "00000", "00111", "00100", "00100"])
    assert torch.equal(seg2bmap(seg), expected)


def test_seg2bmap_full_and_empty_frame_have_no_boundary() -> None:
    assert not seg2bmap(torch.ones(6, 7, dtype=torch.bool)).any()
    assert not seg2bmap(torch.zeros(6, 7, dtype=torch.bool)).any()


def test_seg2bmap_matches_reference_on_random_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 4, 9, 11, generator=gen) > 0.5
    out = seg2bmap(masks)
    assert out.shape == masks.shape
    for idx in np.ndindex(3, 4):
        assert np.array_equal(out[idx].numpy(), toolkit.seg2bmap(masks[idx].numpy())), idx
    # degenerate 1-pixel-high image exercises the overwrite order
    row = torch.tensor([[True, False, True, True, False]])
    assert np.array_equal(seg2bmap(row).numpy(), toolkit.seg2bmap(row.numpy()))


# ---------------------------------------------------------------- disk and dilation


def test_disk_kernel_matches_skimage_pattern() -> None:
    expected = torch.tensor(
        [
            [0, 0, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 0, 0],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(disk_kernel(2), expected)
    assert torch.equal(disk_kernel(0), torch.ones(1, 1, dtype=torch.bool))
    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.bool)
    assert torch.equal(disk_kernel(1), cross)
    # r=8 (the 480p tolerance): 17x17, 197 pixels (Gauss circle count N(8) = 197)
    assert disk_kernel(8).shape == (17, 17) and int(disk_kernel(8).sum()) == 197


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8])
def test_dilate_disk_equals_conv_with_disk_kernel(radius: int) -> None:
    gen = torch.Generator().manual_seed(radius)
    masks = torch.rand(2, 3, 23, 31, generator=gen) > 0.97
    kernel = disk_kernel(radius).float()[None, None]
    conv = torch.nn.functional.conv2d(
        masks.reshape(-1, 1, 23, 31).float(), kernel, padding=radius
    ).reshape(masks.shape)
    assert torch.equal(dilate_disk(masks, radius), conv > 0)
    assert np.array_equal(dilate_disk(masks[0, 0], radius).numpy(), toolkit.dilate(masks[0, 0].numpy(), radius))


def test_dilate_single_pixel_gives_the_disk() -> None:
    m = torch.zeros(9, 9, dtype=torch.bool)
    m[4, 4] = True
    out = dilate_disk(m, 3)
    assert torch.equal(out[1:8, 1:8], disk_kernel(3))
    assert int(out.sum()) == int(disk_kernel(3).sum())


# ---------------------------------------------------------------- F measure


def test_boundary_tolerance_480p() -> None:
    assert math.ceil(0.008 * math.sqrt(480**2 + 854**2)) == 8
    assert boundary_tolerance(480, 854) == 8
    assert boundary_tolerance(480, 854, bound_th=3) == 3
    assert boundary_tolerance(20, 20, 0.008) == 1  # ceil(0.226)


def test_f_identical_masks_is_one() -> None:
    m = square(20, 20, 5, 5, 4)
    assert boundary_f(m, m).item() == 1.0
    assert j_and_f(m, m).item() == 1.0


def test_f_square_shifted_by_one_pixel() -> None:
    # gt 4x4 at rows/cols 5..8 -> boundary = outline of rows/cols 4..8 (16 px);
    # pred shifted right by 1 -> outline rows 4..8, cols 5..9. Shared pixels: rows 4 and 8,
    # cols 5..8 = 8 px. bound_pix 0: P = R = 8/16. bound_pix 1: every pixel has a 4-neighbour
    # on the other outline -> P = R = 1.
    gt = square(20, 20, 5, 5, 4)
    pred = square(20, 20, 5, 6, 4)
    p, r = boundary_precision_recall(pred, gt, bound_th=0)
    assert (p.item(), r.item()) == (0.5, 0.5)
    assert boundary_f(pred, gt, bound_th=0).item() == pytest.approx(0.5)
    assert boundary_f(pred, gt, bound_th=1).item() == 1.0
    # default bound_th at 20x20: ceil(0.008 * 28.28) = 1 -> also fully matched
    assert boundary_f(pred, gt).item() == 1.0
    # J for comparison: overlap 4x3 = 12, union 20
    assert iou(pred, gt).item() == pytest.approx(12 / 20)
    assert j_and_f(pred, gt, bound_th=0).item() == pytest.approx((0.6 + 0.5) / 2)


def test_f_square_shifted_by_two_pixels() -> None:
    # pred outline rows 4..8, cols 6..10. bound_pix 0: shared = rows 4, 8 x cols 6..8 = 6.
    # bound_pix 1 (cross): matched pred px = rows 4/8 cols 6..9 (8) + (5,6), (7,6) (2) = 10.
    gt = square(20, 20, 5, 5, 4)
    pred = square(20, 20, 5, 7, 4)
    p0, r0 = boundary_precision_recall(pred, gt, bound_th=0)
    assert p0.item() == pytest.approx(6 / 16) and r0.item() == pytest.approx(6 / 16)
    p1, r1 = boundary_precision_recall(pred, gt, bound_th=1)
    assert p1.item() == pytest.approx(10 / 16) and r1.item() == pytest.approx(10 / 16)
    assert boundary_f(pred, gt, bound_th=1).item() == pytest.approx(10 / 16)


def test_f_nested_squares_asymmetric_precision_recall() -> None:
    # gt 4x4 at 5..8 (outline 4..8, 16 px), pred 2x2 at 6..7 (outline 5..7, 8 px).
    gt = square(20, 20, 5, 5, 4)
    pred = square(20, 20, 6, 6, 2)
    # bound_pix 0: outlines disjoint -> P = R = 0 -> F = 0 (the P + R == 0 branch)
    p, r = boundary_precision_recall(pred, gt, bound_th=0)
    assert (p.item(), r.item()) == (0.0, 0.0)
    assert boundary_f(pred, gt, bound_th=0).item() == 0.0
    # bound_pix 1: all pred px touch the gt outline (P = 1); the 4 gt corners are only
    # diagonally adjacent -> R = 12/16; F = 2 * 0.75 / 1.75 = 6/7
    p, r = boundary_precision_recall(pred, gt, bound_th=1)
    assert p.item() == 1.0 and r.item() == pytest.approx(0.75)
    assert boundary_f(pred, gt, bound_th=1).item() == pytest.approx(6 / 7)
    # bound_pix 2: the disk includes the diagonal -> everything matched
    assert boundary_f(pred, gt, bound_th=2).item() == 1.0


def test_f_far_apart_squares_is_zero() -> None:
    gt = square(40, 40, 2, 2, 5)
    pred = square(40, 40, 30, 30, 5)
    assert boundary_f(pred, gt).item() == 0.0
    assert boundary_f(pred, gt, bound_th=5).item() == 0.0


def test_f_empty_boundary_edge_cases() -> None:
    empty = torch.zeros(12, 12, dtype=torch.bool)
    full = torch.ones(12, 12, dtype=torch.bool)  # non-empty mask, but empty boundary map
    sq = square(12, 12, 3, 3, 4)
    p, r = boundary_precision_recall(empty, sq)
    assert (p.item(), r.item()) == (1.0, 0.0)
    assert boundary_f(empty, sq).item() == 0.0
    p, r = boundary_precision_recall(sq, empty)
    assert (p.item(), r.item()) == (0.0, 1.0)
    assert boundary_f(sq, empty).item() == 0.0
    p, r = boundary_precision_recall(empty, empty)
    assert (p.item(), r.item()) == (1.0, 1.0)
    assert boundary_f(empty, empty).item() == 1.0
    # reference quirk: boundaries are judged, not areas -> full vs empty frame scores F = 1
    assert boundary_f(full, empty).item() == 1.0
    assert iou(full, empty).item() == 0.0


def test_f_uses_diagonal_tolerance_at_480p() -> None:
    # 480x854 -> bound_pix 8. A shift of 8 px is fully matched (8^2 <= 8^2), 9 px is not
    # (the far side of the shifted square is 9 px from any gt boundary pixel).
    gt = square(480, 854, 100, 200, 100)
    batch = torch.stack([square(480, 854, 100, 200 + s, 100) for s in (1, 8, 9, 20)])
    f = boundary_f(batch, gt)
    assert f.shape == (4,)
    assert f[0].item() == 1.0
    assert f[1].item() == 1.0
    assert f[2].item() < 1.0
    assert f[3].item() < f[2].item()
    # at 7 px tolerance the 8 px shift is no longer fully matched
    assert boundary_f(batch[1], gt, bound_th=7).item() < 1.0


def test_f_matches_reference_transcription_on_random_shapes() -> None:
    gen = torch.Generator().manual_seed(1)
    h, w = 40, 57
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    preds, gts = [], []
    for _ in range(12):
        cy, cx, ry, rx = (torch.rand(4, generator=gen) * torch.tensor([h, w, 15, 20])).tolist()
        gt = ((yy - cy) / (ry + 2)) ** 2 + ((xx - cx) / (rx + 2)) ** 2 <= 1
        noise = torch.rand(h, w, generator=gen) > 0.93
        pred = gt ^ (noise & dilate_disk(seg2bmap(gt), 2))  # ragged boundary
        preds.append(pred)
        gts.append(gt)
    pred, gt = torch.stack(preds).reshape(3, 4, h, w), torch.stack(gts).reshape(3, 4, h, w)
    for bound_th in (0.008, 0.05, 1, 3):
        f = boundary_f(pred, gt, bound_th)
        assert f.shape == (3, 4)
        ref = [toolkit.f_measure(pred[i].numpy(), gt[i].numpy(), bound_th) for i in np.ndindex(3, 4)]
        np.testing.assert_allclose(f.reshape(-1).numpy(), ref, rtol=1e-6, atol=1e-7)
    assert 0.0 < float(f.min()) < 1.0  # the case set is not trivial


def test_batched_btHW_equals_per_frame() -> None:
    gen = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 3, 16, 18, generator=gen) > 0.6
    gt = torch.rand(2, 3, 16, 18, generator=gen) > 0.6
    gt[1, 2] = False  # an empty gt frame in the batch
    jf = j_and_f(pred, gt)
    assert jf.shape == (2, 3)
    for b in range(2):
        for t in range(3):
            j1 = iou(pred[b, t], gt[b, t])
            f1 = boundary_f(pred[b, t], gt[b, t])
            assert j1.shape == ()
            assert jf[b, t].item() == pytest.approx(((j1 + f1) / 2).item())
            assert f1.item() == pytest.approx(toolkit.f_measure(pred[b, t].numpy(), gt[b, t].numpy()))


def test_leading_dims_broadcast_and_size_mismatch_rejected() -> None:
    gt = square(10, 10, 2, 2, 4)
    preds = torch.stack([gt, torch.zeros_like(gt)])
    torch.testing.assert_close(iou(preds, gt), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError):
        iou(torch.zeros(10, 11, dtype=torch.bool), gt)


# ---------------------------------------------------------------- per track


def _track(T: int = 10, wrong: range = range(7)) -> tuple[torch.Tensor, torch.Tensor]:
    gt = square(16, 16, 4, 4, 6).expand(T, 16, 16).clone()
    pred = gt.clone()
    for t in wrong:
        pred[t] = False
    return pred, gt


def test_score_track_skip_first() -> None:
    pred, gt = _track(10, range(7))  # frames 0..6 lost, 7..9 perfect
    s = score_track(pred, gt)
    assert isinstance(s, TrackScores)
    assert s.num_frames == 10
    assert s.quality == 1.0
    assert s.j_mean == pytest.approx(3 / 9)  # frames 1..9
    assert s.f_mean == pytest.approx(3 / 9)  # empty pred vs object -> F = 0
    assert s.jf_mean == pytest.approx(3 / 9)
    assert s.presence == pytest.approx(3 / 10)
    torch.testing.assert_close(s.iou, torch.tensor([0.0] * 7 + [1.0] * 3))
    assert s.f.shape == s.jf.shape == (10,)
    # skip_first=6 lets one wrong frame into the quality mean
    assert score_track(pred, gt, skip_first=6).quality == pytest.approx(3 / 4)


def test_score_track_short_track_uses_all_frames() -> None:
    pred, gt = _track(5, range(1))  # 5 frames <= skip_first=7
    s = score_track(pred, gt)
    assert s.quality == pytest.approx(4 / 5)
    assert s.j_mean == 1.0


def test_score_track_davis_means_exclude_prompt_frame() -> None:
    pred, gt = _track(10, range(1))  # only frame 0 wrong
    s = score_track(pred, gt, skip_first=0)
    assert s.iou[0].item() == 0.0
    assert s.j_mean == 1.0 and s.f_mean == 1.0 and s.jf_mean == 1.0
    assert s.quality == pytest.approx(9 / 10)


def test_score_track_annotated_frames_only() -> None:
    pred, gt = _track(10, [3, 4, 8])
    annotated = torch.ones(10, dtype=torch.bool)
    annotated[[3, 8]] = False
    s = score_track(pred, gt, annotated=annotated)
    assert s.j_mean == pytest.approx(6 / 7)  # frames 1,2,4,5,6,7,9 -> frame 4 wrong
    assert s.quality == pytest.approx(1.0)  # frames 7, 9
    assert s.presence == pytest.approx(7 / 8)
    s_np = score_track(pred.numpy(), gt.numpy(), annotated=annotated.numpy().astype(np.uint8))
    assert s_np.to_dict() == s.to_dict()
    # a track with no annotated frame after the prompt has undefined DAVIS means
    only_first = torch.zeros(10, dtype=torch.bool)
    only_first[0] = True
    assert math.isnan(score_track(pred, gt, annotated=only_first).j_mean)


def test_score_tracks_batched_and_to_dict() -> None:
    p1, g1 = _track(10, range(7))
    p2, g2 = _track(10, range(1))
    batch = score_tracks(torch.stack([p1, p2]), torch.stack([g1, g2]))
    assert len(batch) == 2
    assert batch[0].to_dict() == score_track(p1, g1).to_dict()
    assert batch[1].to_dict() == score_track(p2, g2).to_dict()
    d = batch[0].to_dict()
    assert set(d) == {"iou", "f", "jf", "quality", "j_mean", "f_mean", "jf_mean", "presence", "num_frames"}
    assert isinstance(d["iou"], list) and all(type(v) is float for v in d["iou"])
    assert type(d["quality"]) is float and type(d["num_frames"]) is int
    assert json.loads(json.dumps(d))["quality"] == 1.0


def test_f_matches_reference_on_real_davis_annotations(davis_root) -> None:
    from PIL import Image

    folder = davis_root / "Annotations" / "480p" / "blackswan"
    masks = [np.array(Image.open(folder / f"{t:05d}.png")) > 0 for t in (0, 5, 20)]
    assert masks[0].shape == (480, 854)
    gt = torch.from_numpy(np.stack([masks[0], masks[0]]))
    pred = torch.from_numpy(np.stack([masks[1], masks[2]]))
    f = boundary_f(pred, gt)
    ref = [toolkit.f_measure(masks[k], masks[0]) for k in (1, 2)]
    np.testing.assert_allclose(f.numpy(), ref, rtol=1e-6)
    assert f[1].item() < f[0].item() < 1.0  # the swan drifts away from its first-frame mask


def test_a_track_with_no_frame_to_score_is_left_out_of_the_means() -> None:
    from sam2rl.evaluation.evaluate import _summarize

    masks = torch.zeros(5, 8, 8, dtype=torch.bool)
    masks[:, 2:5, 2:5] = True
    whole = score_track(masks, masks).to_dict()
    late = score_track(masks[:1], masks[:1]).to_dict()  # object first seen on the video's last frame
    assert math.isnan(late["j_mean"])
    rows = [{"sequence": "s", "object_id": i, "fps": 1.0, **scores} for i, scores in enumerate([whole, late])]
    overall = _summarize({"controllers": {"fifo": {"tracks": rows}}})["controllers"]["fifo"]["overall"]
    assert overall["j_mean"] == overall["jf_mean"] == 1.0  # the scored track's, not NaN
