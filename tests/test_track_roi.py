"""ROI geometry and tracking behaviour with a known segmenter.

The geometry functions are checked directly. The tracker's own loop (windows that follow
the object, crops past the frame edge, scaled windows for large objects, pasting masks back,
centroids, absence and re-acquisition) is checked with an *oracle*: the real SAM 2 step runs
(memory included) but its mask logits are replaced by "dark pixels of the model input", so
the tracker must find a dark disc exactly where the frame has it. Random weights alone
could not tell a correct window mapping from a wrong one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import Oracle, disc_frame

from samem.eval.metrics import iou
from samem.track import StreamingTracker
from samem.track.preprocess import Levels, apply_levels
from samem.track.roi import Window, cut, cut_normalized, mask_geometry, paste, window_side


# ---------------------------------------------------------------------- geometry
def test_window_around_centres_and_maps_boxes():
    win = Window.around(50.0, 20.0, 32)
    assert (win.x0, win.y0, win.side) == (34, 4, 32)  # covers [34, 66) x [4, 36), centre (50, 20)
    box = win.box_to_input([40, 10, 60, 30], size=64)  # twice the resolution of the window
    np.testing.assert_allclose(box, [12, 12, 52, 52])


def test_window_side_policy():
    assert window_side(np.array([0, 0, 10, 12]), crop_size_px=64, context=3.0) == 64
    assert window_side(np.array([0, 0, 40, 30]), crop_size_px=64, context=3.0) == 120


def test_cut_pads_outside_the_frame_and_paste_clips():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    win = Window(-3, 6, 8)  # 3 columns left of the frame, 4 rows below it
    crop = cut(image, win, 8, fill=-1.0)
    assert (crop[:, :3] == -1).all() and (crop[4:] == -1).all()
    np.testing.assert_array_equal(crop[:4, 3:], image[6:10, 0:5])
    mask = np.ones((8, 8), bool)
    full = paste(mask, win, (10, 10))
    assert full.sum() == 4 * 5 and full[6:10, 0:5].all()


def test_cut_normalized_equals_cut_of_normalized_frame():
    rng = np.random.default_rng(0)
    gray = rng.normal(100, 20, (40, 50)).astype(np.float32)
    levels = Levels(low=70.0, high=130.0, median=100.0)
    win = Window(30, -10, 32)
    expected = cut(apply_levels(gray, levels), win, 16, levels.background)
    np.testing.assert_allclose(cut_normalized(gray, win, 16, levels), expected, atol=1e-6)


def test_mask_geometry_of_a_rectangle():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:20] = True
    (cx, cy), bbox = mask_geometry(mask)
    assert (cx, cy) == (14.5, 6.5) and bbox == (10, 5, 20, 9)
    assert mask_geometry(np.zeros((4, 4), bool)) is None


# ---------------------------------------------------------------------- oracle tracking
def visible_centroid(truth):
    yy, xx = np.nonzero(truth)
    return xx.mean(), yy.mean()


# ROI: crops at native resolution. Full: the tiny model's 64 px input squeezes the frame
# anisotropically (160 -> 64, 96 -> 64), so the disc is larger to stay a few low-res cells wide.
SCENES = {
    "roi": dict(shape=(120, 200), radius=9, start=(60, 60), velocity=(3.1, -1.7), max_err=1, anchor=True),
    "full": dict(shape=(96, 160), radius=14, start=(40, 60), velocity=(2.5, -1.6), max_err=2, anchor=False),
}


@pytest.mark.parametrize("mode", list(SCENES))
def test_tracker_follows_a_disc_to_the_frame_edge(tiny, monkeypatch, mode):
    Oracle(monkeypatch)
    scene = SCENES[mode]
    shape, radius, (x, y), (vx, vy) = scene["shape"], scene["radius"], scene["start"], scene["velocity"]
    path = [(x + vx * t, y + vy * t) for t in range(35)]
    # windows follow the tracked centroid only: this checks the window mapping and the edge
    # reconstruction to 1 px, which the detector's peak of a border-cut disc (inward of its
    # centre) would blur (window_peak: tests/test_track_window_peak.py)
    tracker = StreamingTracker(tiny, mode=mode, crop_size_px=48, window_peak=False)
    for t, centre in enumerate(path):
        frame, truth = disc_frame(shape, centre, radius, seed=t, anchor=scene["anchor"])
        if t == 0:
            box = (centre[0] - radius, centre[1] - radius, centre[0] + radius + 1, centre[1] + radius + 1)
            res = tracker.start(frame, {"p": box})["p"]
        else:
            res = tracker.step(frame)["p"]
        assert res.present and res.mask.shape == shape
        # masks come from logits at 1/4 of the model input, so edges are coarse
        assert iou(res.mask, truth) >= 0.75, t
        # the disc's own centre, also while the border cuts it (edge_centre, samem.track.edge)
        tx, ty = centre  # pixel indices (disc_frame)
        assert math.hypot(res.centroid[0] - tx, res.centroid[1] - ty) <= scene["max_err"], t
        x0, y0, x1, y1 = res.bbox
        assert res.mask[y0:y1, x0:x1].sum() == res.mask.sum()
    assert path[-1][1] - radius < 0  # the disc really ended cut by the frame edge


def test_large_object_gets_a_scaled_window(tiny, monkeypatch):
    Oracle(monkeypatch)
    shape, radius, centre = (160, 160), 30, (80.0, 85.0)
    frame, truth = disc_frame(shape, centre, radius, seed=1)
    tracker = StreamingTracker(tiny, mode="roi", crop_size_px=48, context=2.0, denoise=0.0)  # sharp oracle
    res = tracker.start(frame, {1: (50, 55, 111, 116)})[1]
    assert tracker._objects[1].side == 122  # 2 x box side > 48: a 122 px window resized to 64
    for t in range(1, 4):
        res = tracker.step(disc_frame(shape, centre, radius, seed=t + 1)[0])[1]
    assert iou(res.mask, truth) >= 0.9
    assert math.hypot(res.centroid[0] - centre[0], res.centroid[1] - centre[1]) <= 1.0


def test_absent_object_keeps_memory_and_window_then_is_reacquired(tiny, monkeypatch):
    Oracle(monkeypatch)
    shape, radius = (100, 100), 6
    tracker = StreamingTracker(
        tiny, mode="roi", crop_size_px=48, verify=False
    )  # SAM 2's own rules under test (no position check)
    tracker.start(disc_frame(shape, (50, 50), radius, 0)[0], {1: (44, 44, 57, 57)})
    for t in range(1, 5):
        assert tracker.step(disc_frame(shape, (50 + t, 50), radius, t)[0])[1].present
    centre = tracker._objects[1].centre
    for t in range(5, 10):  # the particle leaves the focal plane: not drawn
        res = tracker.step(disc_frame(shape, (55, 50), radius, t, visible=False)[0])[1]
        assert not res.present and res.score < 0.5 and not res.mask.any()
        assert res.bbox is None and all(math.isnan(c) for c in res.centroid)
        assert tracker._objects[1].centre == centre  # the window waits where it was last seen
    memory = tracker._objects[1].memory
    assert {5, 6, 7, 8, 9} <= set(memory.non_cond)  # absent frames stay in memory
    frame, truth = disc_frame(shape, (62, 46), radius, 10)  # back, displaced but inside the window
    res = tracker.step(frame)[1]
    assert res.present and iou(res.mask, truth) >= 0.75


def test_velocity_gain_leads_the_window(tiny, monkeypatch):
    Oracle(monkeypatch)
    shape = (100, 160)
    # smooth_frames=1, centroid=mask: the window follows the model's own centroid, which is then
    # the reported one
    opts = dict(crop_size_px=48, velocity_gain=1.0, smooth_frames=1, centroid="mask")
    tracker = StreamingTracker(tiny, mode="roi", **opts)
    tracker.start(disc_frame(shape, (40, 50), 6, 0)[0], {1: (34, 44, 47, 57)})
    r1 = tracker.step(disc_frame(shape, (48, 50), 6, 1)[0])[1]
    r2 = tracker.step(disc_frame(shape, (56, 50), 6, 2)[0])[1]
    step_x = r2.centroid[0] - r1.centroid[0]
    assert abs(step_x - 8) <= 0.5
    assert tracker._objects[1].centre[0] == pytest.approx(r2.centroid[0] + 0.5 + step_x)


@pytest.mark.parametrize("mode", ["roi", "full"])
def test_denoise_smooths_what_the_encoder_sees_and_tracking_still_follows(tiny, monkeypatch, mode):
    """denoise smooths the frame before it is normalised (sigma scaled by the box): in what the
    encoder sees, the background noise relative to the disc's contrast drops (white noise by
    about the Gaussian's factor 1 / (2 sigma sqrt(pi)), less after the area resize of full
    mode), and the disc is still tracked (the oracle's threshold draws a slightly smaller
    mask: the check is on the centroid)."""
    oracle = Oracle(monkeypatch)
    scene = SCENES[mode]
    shape, radius, (x, y) = scene["shape"], scene["radius"], scene["start"]
    box = (x - radius, y - radius, x + radius + 1, y + radius + 1)
    noise = {}
    for sigma in (0.0, 0.08):  # sigma 0.08 x the 2r + 1 px box: 1.5 px (ROI scene), 2.3 px (full)
        tracker = StreamingTracker(tiny, mode=mode, crop_size_px=48, denoise=sigma)
        assert tracker.denoise_sigma_px == 0.0  # no objects yet
        tracker.start(disc_frame(shape, (x, y), radius, seed=0, anchor=scene["anchor"])[0], {1: box})
        frame, truth = disc_frame(shape, (x + 2, y + 1), radius, seed=1, anchor=scene["anchor"])
        res = tracker.step(frame)[1]
        assert tracker.denoise_sigma_px == pytest.approx(sigma * (2 * radius + 1))
        assert res.present and iou(res.mask, truth) >= 0.6
        tx, ty = visible_centroid(truth)
        assert math.hypot(res.centroid[0] - tx, res.centroid[1] - ty) <= scene["max_err"]
        image = oracle.inputs[0, 0]
        contrast = float(image.quantile(0.95) - image.quantile(0.02))  # background - disc
        noise[sigma] = float(image[:8, :8].std()) / contrast  # corner: background, away from the disc
    assert noise[0.08] < 0.5 * noise[0.0]
