"""Temporal mask smoothing: MaskSmoother alone, then inside the tracker (smooth_frames)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import Oracle, disc_frame

from samem.errors import SamemError
from samem.eval.metrics import iou
from samem.track import StreamingTracker
from samem.track.options import parse_options
from samem.track.roi import mask_geometry
from samem.track.smooth import MaskSmoother


def disc(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r**2).astype(np.float32)


def test_one_frame_is_the_plain_threshold():
    prob = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    smoother = MaskSmoother(1)
    for _ in range(3):
        assert np.array_equal(smoother(prob, (5, 7), (10.0, 10.0)), prob > 0.5)
    assert smoother.nbytes() == 0


def test_a_rigid_shape_moving_between_windows_is_unchanged():
    """Each past mask is moved so its centroid lies on the current one: a rigid, asymmetric
    shape seen through windows at different origins comes back exactly."""
    shape = np.zeros((80, 80), np.float32)
    shape[30:34, 28:50] = 1  # an L: bar plus foot
    shape[34:46, 28:33] = 1
    smoother = MaskSmoother(5)
    for t, (ox, oy) in enumerate([(0, 0), (7, -3), (12, 4), (-5, 9), (3, 3), (20, 1)]):
        step = (2 * t, -t)  # frame displacement of the shape
        prob = np.roll(shape, (step[1] - oy, step[0] - ox), axis=(0, 1))  # seen from window (ox, oy)
        (cx, cy), _ = mask_geometry(prob > 0.5)
        out = smoother(prob, (ox, oy), (cx + ox, cy + oy))
        assert np.array_equal(out, prob > 0.5), t
    assert smoother.nbytes() == 4 * shape.nbytes  # the current frame and 4 past ones


def test_noisy_boundaries_average_out():
    rng = np.random.default_rng(1)
    shape, r = (80, 80), 15.0
    raw_iou, smooth_iou = [], []
    smoother = MaskSmoother(5)
    for t in range(30):
        cx, cy = 40 + 3 * np.sin(t / 3), 40 + 0.7 * t - 10
        truth = disc(shape, cx, cy, r) > 0
        prob = np.clip(disc(shape, cx, cy, r) + rng.normal(0, 0.45, shape), 0, 1).astype(np.float32)
        prob[np.hypot(*np.mgrid[-40:40, -40:40]) > 32] = 0  # the noise is near the particle only
        raw = prob > 0.5
        (mx, my), _ = mask_geometry(raw)
        out = smoother(prob, (0, 0), (mx, my))
        if t >= 4:
            raw_iou.append(iou(raw, truth))
            smooth_iou.append(iou(out, truth))
    assert np.mean(smooth_iou) > np.mean(raw_iou) + 0.1
    assert np.mean(smooth_iou) > 0.85


def test_smooth_frames_is_checked():
    with pytest.raises(SamemError, match="smooth_frames 0 must be from 1 to 64"):
        parse_options(["smooth_frames=0"])
    with pytest.raises(SamemError, match="smooth_frames must be a whole number, got 2.5"):
        parse_options(["smooth_frames=2.5"])
    with pytest.raises(SamemError, match="not of the form name=value"):
        parse_options(["smooth_frames"])
    want = {"smooth_frames": 5, "reappear_score": 0.8}
    assert parse_options(["smooth_frames=5", "reappear_score=0.8"]) == want


SCENES = {  # as in test_track_roi: the full-mode disc is larger (64 px model input)
    "roi": dict(shape=(120, 200), small=8, large=11, start=(60.0, 60.0), anchor=True),
    "full": dict(shape=(96, 160), small=14, large=19, start=(50.0, 50.0), anchor=False),
}


@pytest.mark.parametrize("mode", list(SCENES))
def test_tracker_reports_smoothed_masks_and_keeps_sam2_memory(tiny, monkeypatch, mode):
    """Two frames of a small disc, then one of a larger one: with smooth_frames=3 the ring
    the larger disc adds is in 1 of 3 aligned masks, so the reported mask stays the small disc;
    SAM 2's memory is the same as without smoothing; an absence clears the history."""
    Oracle(monkeypatch)
    scene = SCENES[mode]
    shape, small, large, (x, y) = scene["shape"], scene["small"], scene["large"], scene["start"]
    anchor = scene["anchor"]
    plan = [(small, (x, y)), (small, (x + 3, y - 2)), (large, (x + 6, y - 1))]
    box = (x - small, y - small, x + small + 1, y + small + 1)
    out = {}
    for k in (1, 3):
        opts = dict(crop_size_px=48, smooth_frames=k, reappear_score=0.5, centroid="mask", verify=False)
        tracker = StreamingTracker(tiny, mode=mode, **opts)
        res = []
        for t, (r, c) in enumerate(plan):
            frame = disc_frame(shape, c, r, seed=t, anchor=anchor)[0]
            res.append((tracker.start(frame, {1: box}) if t == 0 else tracker.step(frame))[1])
        out[k] = (tracker, res)
    _, last = disc_frame(shape, plan[-1][1], large, seed=2, anchor=anchor)
    small_there = disc_frame(shape, plan[-1][1], small, seed=2, anchor=anchor)[1]
    plain, smoothed = out[1][1][-1], out[3][1][-1]
    assert iou(plain.mask, last) > 0.8 and iou(plain.mask, small_there) < 0.75
    assert iou(smoothed.mask, small_there) > 0.8
    assert smoothed.present and smoothed.mask.sum() < 0.8 * plain.mask.sum()
    # the reported centroid and box are those of the reported mask
    (cx, cy), bbox = mask_geometry(smoothed.mask)
    assert smoothed.centroid == pytest.approx((cx, cy)) and smoothed.bbox == bbox
    # the model's own mask steers the ROI window, so tracking itself does not change
    assert out[1][0]._objects[1].centre == out[3][0]._objects[1].centre
    mem = {k: out[k][0]._objects[1].memory.non_cond for k in (1, 3)}
    assert set(mem[1]) == set(mem[3]) == {1, 2}
    for t in (1, 2):  # memory is encoded from the model's own masks either way
        assert torch.equal(mem[1][t].maskmem_features, mem[3][t].maskmem_features)
    tracker = out[3][0]
    assert tracker._objects[1].smoother.nbytes() > 0
    gone = tracker.step(disc_frame(shape, plan[-1][1], large, seed=3, visible=False, anchor=anchor)[0])[1]
    assert not gone.present and tracker._objects[1].smoother.nbytes() == 0
    back_frame, back = disc_frame(shape, plan[-1][1], large, seed=4, anchor=anchor)
    assert iou(tracker.step(back_frame)[1].mask, back) > 0.8  # no stale history after an absence


def test_mask_threshold_reads_the_probability_lower_or_higher():
    yy, xx = np.mgrid[:60, :60]
    prob = np.clip(1.2 - np.hypot(xx - 30, yy - 30) / 15, 0, 1).astype(np.float32)  # soft rim
    areas = {}
    for thr in (0.3, 0.5, 0.7):
        for frames in (1, 3):
            smoother = MaskSmoother(frames, thr)
            assert smoother.active == (frames > 1 or thr != 0.5)
            for _ in range(frames):  # a still object: the mean is the probability itself
                out = smoother(prob, (0, 0), (30.0, 30.0))
            assert np.array_equal(out, prob > thr)
            areas[thr] = int(out.sum())
    assert areas[0.3] > areas[0.5] > areas[0.7]
    with pytest.raises(ValueError, match="threshold"):
        MaskSmoother(1, 1.0)
    with pytest.raises(SamemError, match="mask_threshold 0.99 must be from 0.05 to 0.95"):
        parse_options(["mask_threshold=0.99"])


@pytest.mark.parametrize("smooth", [1, 3])
def test_tracker_mask_threshold_changes_reported_masks_only(tiny, monkeypatch, smooth):
    """A lower mask_threshold reports a larger mask (the oracle's logits have a soft rim);
    presence, the ROI window and SAM 2's memory are those of threshold 0.5."""
    Oracle(monkeypatch)
    shape, r, (x, y) = (120, 200), 9, (60.0, 60.0)
    box = (x - r, y - r, x + r + 1, y + r + 1)
    out = {}
    for thr in (0.5, 0.05):
        opts = dict(mode="roi", crop_size_px=48, smooth_frames=smooth, mask_threshold=thr, centroid="mask")
        tracker = StreamingTracker(tiny, **opts)
        res = [tracker.start(disc_frame(shape, (x, y), r, seed=0)[0], {1: box})[1]]
        for t in (1, 2):
            res.append(tracker.step(disc_frame(shape, (x + 2 * t, y - t), r, seed=t)[0])[1])
        out[thr] = (tracker, res)
    low, plain = out[0.05][1][-1], out[0.5][1][-1]
    assert low.present and plain.present
    assert low.mask.sum() > plain.mask.sum() and not (plain.mask & ~low.mask).any()
    (cx, cy), bbox = mask_geometry(low.mask)
    assert low.centroid == pytest.approx((cx, cy)) and low.bbox == bbox
    assert out[0.05][0]._objects[1].centre == out[0.5][0]._objects[1].centre
    for t in (1, 2):
        a, b = (out[k][0]._objects[1].memory.non_cond[t].maskmem_features for k in (0.05, 0.5))
        assert torch.equal(a, b)
