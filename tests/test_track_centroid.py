"""Intensity-weighted centroids (samem.track.centroid) and the tracker's centroid option."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import Oracle, disc_frame, sphere_frame

from samem.errors import SamemError
from samem.track import StreamingTracker
from samem.track.centroid import intensity_centroid
from samem.track.options import parse_options
from samem.track.roi import mask_geometry, shift_mask


@pytest.mark.parametrize("dark", [True, False])
def test_a_mask_that_misses_one_side_of_the_rim_is_corrected(dark):
    centre, r = (40.3, 37.6), 15.0
    image, truth = sphere_frame((80, 80), centre, r, noise=4.0, seed=0, dark=dark)
    mask = truth.copy()
    mask[:, int(centre[0] + 0.8 * r) :] = False  # the model lost 3 px of the right-hand rim
    (mx, my), bbox = mask_geometry(mask)
    ix, iy = intensity_centroid(image, mask, bbox, box_side=2 * r)
    mask_err = math.hypot(mx - centre[0], my - centre[1])
    assert mask_err > 1.0
    assert math.hypot(ix - centre[0], iy - centre[1]) < 0.4 * mask_err


def test_noisy_masks_give_a_less_noisy_position():
    """Random boundary errors of 1-2 px (what the noisy mask boundary does): over 40 frames the
    intensity centroid scatters less around the truth than the mask centroid does."""
    rng = np.random.default_rng(1)
    mask_err, int_err = [], []
    for t in range(40):
        centre = (40 + rng.uniform(-1, 1), 40 + rng.uniform(-1, 1))
        image, truth = sphere_frame((80, 80), centre, 14.0, noise=6.0, seed=t)
        yy, xx = np.mgrid[:80, :80]
        angle = np.arctan2(yy - centre[1], xx - centre[0])
        wobble = (
            14.0
            - 1.0
            + sum(  # mask radius 11-15 px: the boundary off by up to 2 px, any side
                rng.uniform(0, 0.7) * np.sin(k * angle + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3)
            )
        )
        mask = np.hypot(xx - centre[0], yy - centre[1]) <= wobble
        (mx, my), bbox = mask_geometry(mask)
        ix, iy = intensity_centroid(image, mask, bbox, box_side=28.0)
        mask_err.append(math.hypot(mx - centre[0], my - centre[1]))
        int_err.append(math.hypot(ix - centre[0], iy - centre[1]))
    assert np.mean(int_err) < 0.6 * np.mean(mask_err)


def test_a_background_gradient_does_not_pull_the_centroid():
    centre = (40.0, 40.0)
    image, truth = sphere_frame((80, 80), centre, 12.0, noise=0.0, seed=0, ramp=1.0)  # 80 levels across
    (_, _), bbox = mask_geometry(truth)
    ix, iy = intensity_centroid(image, truth, bbox, box_side=24.0)
    assert math.hypot(ix - centre[0], iy - centre[1]) < 0.5


def test_no_contrast_gives_none_and_the_frame_edge_is_handled():
    flat = np.full((40, 40), 7.0, np.float32)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    assert intensity_centroid(flat, mask, (10, 10, 20, 20), box_side=10.0) is None
    image, truth = sphere_frame((60, 60), (3.0, 30.0), 10.0, noise=1.0, seed=2)  # cut by the left edge
    (mx, my), bbox = mask_geometry(truth)
    ix, iy = intensity_centroid(image, truth, bbox, box_side=20.0)
    assert 0 <= ix < 10 and abs(iy - 30.0) < 1.0 and abs(ix - mx) < 2.0


def test_tracker_centroid_option_moves_the_position_only(tiny, monkeypatch):
    Oracle(monkeypatch)
    shape, r, (x, y) = (120, 200), 9, (60.0, 60.0)
    box = (x - r, y - r, x + r + 1, y + r + 1)
    out = {}
    for how in ("mask", "intensity"):
        tracker = StreamingTracker(tiny, mode="roi", crop_size_px=48, centroid=how, mask_to_centroid=False)
        res = [tracker.start(disc_frame(shape, (x, y), r, seed=0)[0], {1: box})[1]]
        for t in (1, 2):
            res.append(tracker.step(disc_frame(shape, (x + 2.3 * t, y - t), r, seed=t)[0])[1])
        out[how] = (tracker, res)
    for a, b in zip(out["mask"][1], out["intensity"][1]):
        assert np.array_equal(a.mask, b.mask) and a.bbox == b.bbox and a.present == b.present
        assert a.centroid == pytest.approx(mask_geometry(a.mask)[0])
    truth = (x + 4.6, y - 2)
    last = out["intensity"][1][-1].centroid
    assert last != out["mask"][1][-1].centroid and math.hypot(last[0] - truth[0], last[1] - truth[1]) < 1.0
    assert out["mask"][0]._objects[1].centre == out["intensity"][0]._objects[1].centre
    with pytest.raises(SamemError, match="centroid 'mass' is not one of mask, intensity, matched"):
        parse_options(["centroid=mass"])
    with pytest.raises(SamemError, match="centroid_ring 0 must be from 0.05 to 5"):
        parse_options(["centroid_ring=0"])


def test_a_wider_background_ring_gives_a_less_noisy_position():
    """The background plane fitted on more pixels is less noisy, and so is the contrast it
    leaves: over 60 noisy frames with the true mask, the default ring (0.8 box sides) scatters
    less than the narrow one (0.25) the tracker used before (here by about 4 %)."""
    rng = np.random.default_rng(3)
    err = {0.25: [], 0.8: []}
    for t in range(60):
        centre = (60 + rng.uniform(-1, 1), 60 + rng.uniform(-1, 1))
        image, truth = sphere_frame((120, 120), centre, 12.0, noise=20.0, seed=100 + t)
        (_, _), bbox = mask_geometry(truth)
        for ring in err:
            ix, iy = intensity_centroid(image, truth, bbox, box_side=24.0, ring=ring)
            err[ring].append(math.hypot(ix - centre[0], iy - centre[1]))
    assert np.mean(err[0.8]) < 0.98 * np.mean(err[0.25])


def test_shift_mask_moves_a_mask_sub_pixel_and_keeps_its_box():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 25) ** 2 <= 100
    (cx, cy), bbox = mask_geometry(mask)
    moved, box = shift_mask(mask, bbox, 2.4, -1.6)
    (mx, my), exact = mask_geometry(moved)
    assert box == exact
    assert mx - cx == pytest.approx(2.4, abs=0.2) and my - cy == pytest.approx(-1.6, abs=0.2)
    assert abs(int(moved.sum()) - int(mask.sum())) <= 0.05 * mask.sum()  # the shape is kept
    edge = np.zeros((20, 20), bool)
    edge[5:10, 0:2] = True  # moved out of the frame: nothing left
    assert shift_mask(edge, (0, 5, 2, 10), -4.0, 0.0) is None


def test_tracker_moves_the_reported_mask_onto_the_intensity_centroid(tiny, monkeypatch):
    """The mask is placed on the reported position; the window and memory do not move."""
    import samem.track.tracker as tracker_module

    Oracle(monkeypatch)
    real = tracker_module.weighted_centroid

    def off_by(*args, **kwargs):  # a particle whose contrast sits 2 px right, 1.5 px up of its mask
        cx, cy = real(*args, **kwargs)
        return cx + 2.0, cy - 1.5

    monkeypatch.setattr(tracker_module, "weighted_centroid", off_by)
    shape, r, (x, y) = (120, 200), 9, (60.0, 60.0)
    box = (x - r, y - r, x + r + 1, y + r + 1)
    out = {}
    for move in (False, True):
        tracker = StreamingTracker(
            tiny, mode="roi", crop_size_px=48, centroid="intensity", mask_to_centroid=move
        )
        res = [tracker.start(disc_frame(shape, (x, y), r, seed=0)[0], {1: box})[1]]
        for t in (1, 2):
            res.append(tracker.step(disc_frame(shape, (x + 2.3 * t, y - t), r, seed=t)[0])[1])
        out[move] = (tracker, res)
    for a, b in zip(out[False][1], out[True][1]):
        assert a.centroid == b.centroid and a.present == b.present
        (ax, ay), _ = mask_geometry(a.mask)
        (bx, by), box_b = mask_geometry(b.mask)
        assert box_b == b.bbox and abs(int(a.mask.sum()) - int(b.mask.sum())) <= 0.1 * a.mask.sum()
        assert math.hypot(ax - a.centroid[0], ay - a.centroid[1]) > 2.0  # unmoved: off the position
        assert math.hypot(bx - b.centroid[0], by - b.centroid[1]) < 0.6  # moved onto it
    assert out[False][0]._objects[1].centre == out[True][0]._objects[1].centre
