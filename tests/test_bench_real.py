"""The pure helpers of bench/bench_real.py (metrics, matching, baselines, label-free checks).

Tiny synthetic arrays only: the real data in ../shared/realdata is never read here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import load_bench_script


@pytest.fixture(scope="module")
def real():
    return load_bench_script("bench_real")


def square(shape, x0, y0, x1, y1):
    """Boolean mask with pixels x0..x1-1, y0..y1-1 set."""
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def disc(shape, cx, cy, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


# --------------------------------------------------------------------------- metrics


def test_iou_of_overlapping_squares_and_of_empty_masks(real):
    a = square((10, 10), 0, 0, 4, 4)  # 16 px
    b = square((10, 10), 2, 0, 6, 4)  # 16 px, 8 shared
    assert real.iou(a, b) == pytest.approx(8 / 24)
    assert real.iou(a, a) == 1.0
    assert real.iou(a, ~a) == 0.0
    empty = np.zeros((10, 10), bool)
    assert real.iou(empty, empty) == 1.0


def test_iou_matrix_matches_pairwise_iou(real):
    rng = np.random.default_rng(1)
    preds = [rng.random((12, 9)) > 0.5 for _ in range(3)]
    truths = [rng.random((12, 9)) > 0.6 for _ in range(4)]
    m = real.iou_matrix(preds, truths)
    assert m.shape == (3, 4)
    for i, p in enumerate(preds):
        for j, t in enumerate(truths):
            assert m[i, j] == pytest.approx(real.iou(p, t))
    assert real.iou_matrix([], truths).shape == (0, 4)


def test_box_iou(real):
    m = real.box_iou_matrix([(0, 0, 4, 4), (10, 10, 12, 12)], [(2, 0, 6, 4), (0, 0, 4, 4)])
    np.testing.assert_allclose(m, [[8 / 24, 1.0], [0.0, 0.0]])


def test_match_maximises_the_summed_iou_and_handles_dont_care(real):
    ious = np.array([[0.9, 0.6], [0.7, 0.0], [0.1, 0.2], [0.0, 0.1]])
    ignore = np.array([[0.0], [0.0], [0.8], [0.3]])
    m = real.match(ious, 0.5, ignore)
    # greedy would take the 0.9 pair and leave one truth missed; one-to-one on the sum finds two hits
    assert sorted((r, c) for r, c, _ in m.pairs) == [(0, 1), (1, 0)]
    assert (m.tp, m.fp, m.fn, m.ignored) == (2, 1, 0, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == 1.0


def test_match_threshold_and_empty_cases(real):
    m = real.match(np.array([[0.49]]), 0.5)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    none = real.match(np.zeros((0, 3)))
    assert (none.tp, none.fp, none.fn) == (0, 0, 3)
    assert math.isnan(none.precision) and none.recall == 0.0
    with pytest.raises(ValueError):
        real.match(np.zeros(3))


def test_spread(real):
    s = real.spread(np.r_[np.arange(1.0, 11.0), np.nan])
    assert s["n"] == 10 and s["mean"] == pytest.approx(5.5) and s["median"] == pytest.approx(5.5)
    assert s["p10"] == pytest.approx(1.9) and s["min"] == 1.0
    assert real.spread([])["n"] == 0 and math.isnan(real.spread([])["mean"])


# --------------------------------------------------------------------------- ground truth


def test_instances_whole_edge_and_speck(real):
    label = square((40, 40), 5, 6, 15, 12)  # whole: 10 x 6 = 60 px
    label |= square((40, 40), 30, 0, 36, 8)  # touches the top edge
    label |= square((40, 40), 20, 30, 24, 33)  # 12 px speck
    inst = real.instances(label)
    assert len(inst) == 3
    by_area = {i.area: i for i in inst}
    assert by_area[60].whole and by_area[60].box == (5, 6, 14, 11)
    assert not by_area[48].whole  # edge
    assert not by_area[12].whole  # speck below MIN_AREA_PX
    assert by_area[60].prompt == (5.0, 6.0, 14.0, 11.0)
    thin = real.instances(square((20, 20), 5, 5, 6, 30))[0]  # one column, touching the bottom
    assert thin.prompt[2] > thin.prompt[0]


def test_read_label_mask_rgba(real, tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:5, 3:6, :3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "label_0.png")
    mask = real.read_label_mask(tmp_path / "label_0.png")
    assert mask.dtype == bool and mask.sum() == 9 and mask[2:5, 3:6].all()


def test_mask_box(real):
    assert real.mask_box(square((9, 9), 2, 3, 5, 8)) == (2, 3, 4, 7)
    with pytest.raises(ValueError):
        real.mask_box(np.zeros((3, 3), bool))


# --------------------------------------------------------------------------- baselines


def test_otsu_threshold_separates_two_levels(real):
    v = np.r_[np.full(50, 10.0), np.full(80, 200.0)]
    t = real.otsu_threshold(v)
    assert 10 <= t < 200
    assert np.all((v <= t) == (v == 10))
    assert real.otsu_threshold(np.full(5, 3.0)) == 3.0


def test_otsu_in_box_finds_a_dark_disc_and_stays_in_the_box(real):
    rng = np.random.default_rng(0)
    truth = disc((64, 64), 30, 28, 8)
    img = np.where(truth, 60.0, 180.0) + rng.normal(0, 15, truth.shape)
    x0, y0, x1, y1 = real.mask_box(truth)
    pred = real.otsu_in_box(img, (x0, y0, x1, y1), sigma_px=2.0)
    assert real.iou(pred, truth) > 0.85
    outside = np.ones_like(truth)
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert not pred[outside].any()


def test_largest_component(real):
    m = square((20, 20), 0, 0, 3, 3) | square((20, 20), 10, 10, 15, 15)
    assert real.largest_component(m).sum() == 25
    assert not real.largest_component(np.zeros((4, 4), bool)).any()


def test_refine_mask_pulls_a_too_wide_mask_onto_the_edge(real):
    rng = np.random.default_rng(3)
    truth = disc((80, 80), 40, 38, 12)
    img = np.where(truth, 60.0, 180.0) + rng.normal(0, 10, truth.shape)
    wide = disc((80, 80), 40, 38, 15)  # 3 px too wide, like samem's masks on real tiles
    before = real.iou(wide, truth)
    after = real.iou(real.refine_mask(img, wide, band_px=4, sigma_px=1.0, level=0.5), truth)
    assert before < 0.7 and after > 0.9
    assert np.array_equal(real.refine_mask(img, wide, band_px=0), wide)
    assert not real.refine_mask(img, np.zeros_like(wide)).any()


def test_erode(real):
    m = square((9, 9), 2, 2, 7, 7)
    assert real.erode(m, 1).sum() == 9
    assert np.array_equal(real.erode(m, 0), m)


# --------------------------------------------------------------------------- SHINE2 label-free check


def grating_patch(shape, cx, cy, radius=10, period=7.0, amplitude=1.0):
    """A round patch of fringes of ``period`` px centred on (cx, cy), zero elsewhere."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    fringes = np.cos(2 * np.pi * (xx + 0.6 * yy) / period)
    return amplitude * fringes * (((xx - cx) ** 2 + (yy - cy) ** 2) <= radius**2)


def test_lattice_energy_and_find_crystal_locate_fringes_in_noise(real):
    rng = np.random.default_rng(5)
    img = grating_patch((128, 128), 80, 50, radius=12) + rng.normal(0, 0.5, (128, 128))
    e = real.lattice_energy(img)
    py, px = np.unravel_index(np.argmax(e), e.shape)
    assert abs(px - 80) <= 4 and abs(py - 50) <= 4
    box, peak = real.find_crystal(e)
    x0, y0, x1, y1 = box
    assert x0 < 80 < x1 and y0 < 50 < y1
    assert 12 <= x1 - x0 <= 50 and 12 <= y1 - y0 <= 50
    # a coarse texture outside the band does not count
    coarse = grating_patch((128, 128), 30, 90, radius=12, period=30.0, amplitude=3.0)
    e2 = real.lattice_energy(img + coarse)
    py2, px2 = np.unravel_index(np.argmax(e2), e2.shape)
    assert abs(px2 - 80) <= 4 and abs(py2 - 50) <= 4


def test_sliding_mean_centred_and_trailing(real):
    stack = np.arange(10, dtype=float)[:, None, None] * np.ones((10, 2, 3))
    c = real.sliding_mean(stack, 4, centred=True)
    assert c[5, 0, 0] == pytest.approx(np.mean([3, 4, 5, 6]))
    assert c[0, 0, 0] == pytest.approx(np.mean([0, 1]))
    assert c[9, 0, 0] == pytest.approx(np.mean([7, 8, 9]))
    t = real.sliding_mean(stack, 4, centred=False)
    assert t[0, 0, 0] == 0 and t[5, 0, 0] == pytest.approx(np.mean([2, 3, 4, 5]))


def test_reference_track_follows_a_moving_grating(real):
    rng = np.random.default_rng(7)
    frames = 12
    true = np.array([(40.0 + t, 50.0 - 0.5 * t) for t in range(frames)])
    stack = np.stack(
        [grating_patch((96, 96), x, y, radius=11) + rng.normal(0, 0.6, (96, 96)) for x, y in true]
    )
    ref = real.reference_track(stack, (40.0, 50.0), window=3, radius_px=8.0)
    assert ref.shape == (frames, 2)
    assert np.max(real.distances(ref, true)) < 3.0


def test_energy_peak_stays_within_the_search_radius(real):
    e = np.zeros((50, 50))
    e[10, 10] = 5.0  # stronger, but far away
    e[30, 32] = 1.0
    x, y = real.energy_peak(e, (30.0, 30.0), radius_px=6.0, centroid_px=2.0)
    assert (x, y) == pytest.approx((32.0, 30.0))


def test_step_rms_moving_average_and_distances(real):
    xy = np.column_stack([np.arange(8.0), np.zeros(8)])
    assert real.step_rms(xy) == pytest.approx(1.0)
    gap = xy.copy()
    gap[3] = np.nan
    assert real.step_rms(gap) == pytest.approx(1.0)  # only consecutive present frames count
    assert math.isnan(real.step_rms(np.full((4, 2), np.nan)))
    jittery = xy + np.array([[0, 1], [0, -1]] * 4)
    smooth = real.moving_average(jittery, 2)
    assert real.step_rms(smooth) < real.step_rms(jittery)
    d = real.distances(xy, gap)
    assert np.isnan(d[3]) and np.nansum(d) == 0


def test_shine_check_fractions(real):
    xy = np.array([[10.0, 10.0], [np.nan, np.nan], [14.0, 10.0], [30.0, 10.0]])
    run = {
        "xy": xy,
        "present": np.array([True, False, True, True]),
        "score": np.array([0.9, 0.2, 0.8, 0.7]),
        "area": np.array([50, 0, 40, 60]),
        "seconds": 2.0,
    }
    ref = np.full((4, 2), 10.0)
    out = real.shine_check(run, ref, window=2, radius_px=5.0)
    assert out["present_fraction"] == 0.75
    assert out["within_radius_of_all_frames"] == 0.5  # frames 0 and 2 of 4
    assert out["within_radius_fraction"] == pytest.approx(2 / 3)
    assert out["distance_px"]["median"] == pytest.approx(4.0)
    assert out["frames_per_s"] == 2.0


# --------------------------------------------------------------------------- MoNet


def test_load_monet_numbers_frames_within_each_track(real, tmp_path):
    from scipy.io import savemat

    tr = np.array([[1.0, 2.0, 1], [1.5, 2.5, 1], [2.0, 3.0, 1], [7.0, 8.0, 2], [7.5, 8.0, 2]])
    savemat(tmp_path / "t.mat", {"tr": tr})
    df = real.load_monet(tmp_path / "t.mat")
    assert list(df.columns) == ["frame", "particle", "x", "y"]
    assert df["frame"].tolist() == [0, 1, 2, 0, 1]
    assert df["particle"].tolist() == [1, 1, 1, 2, 2]
    assert df["x"].iloc[3] == 7.0


def test_powerlaw_fit_recovers_exponent_and_prefactor(real):
    lag = np.array([1, 2, 4, 8, 16, 32.0])
    alpha, A = real.powerlaw_fit(lag, 3.0 * lag**0.7)
    assert alpha == pytest.approx(0.7) and A == pytest.approx(3.0)
    alpha2, _ = real.powerlaw_fit(lag, np.r_[-1.0, 3.0 * lag[1:] ** 0.7])  # non-positive point left out
    assert alpha2 == pytest.approx(0.7)
    assert all(math.isnan(v) for v in real.powerlaw_fit(lag[:1], lag[:1]))


def test_relative_difference(real):
    np.testing.assert_allclose(real.relative_difference([1.1, 2.0, 5.0], [1.0, 4.0, 0.0])[:2], [0.1, 0.5])
    assert np.isnan(real.relative_difference([5.0], [0.0])[0])
