"""Matched-filter positions (samem.track.matched) and the tracker's centroid option "matched"."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from helpers import Oracle, disc_frame, sphere_frame

from samem.errors import SamemError
from samem.track import StreamingTracker
from samem.track.centroid import local_contrast, weighted_centroid
from samem.track.matched import MatchedFilter
from samem.track.options import parse_options
from samem.track.preprocess import denoise
from samem.track.roi import mask_geometry


def noise_following_mask(image, threshold):
    """The largest dark region of the lightly smoothed frame: a mask whose boundary follows the
    noise, as a segmentation model's does on a noisy frame."""
    dark = cv2.GaussianBlur(image, (0, 0), 1.5) < threshold
    n, labels = cv2.connectedComponents(dark.astype(np.uint8))
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))


def track_positions(seed, frames=60, noise=60.0, radius=14.0):
    """(truth, intensity centroid, matched) positions of a diffusing dark sphere (contrast 40,
    so per-pixel SNR 0.67 at noise 60) over frames smoothed as the tracker's ``denoise`` does."""
    rng = np.random.default_rng(seed)
    matched = MatchedFilter(rate=0.05, half_width=0.45)
    centre = np.array([60.0, 60.0])
    out = []
    for t in range(frames):
        centre = centre + rng.normal(0, 1.5, 2)
        image, _ = sphere_frame((120, 120), tuple(centre), radius, noise=noise, seed=seed * 1000 + t)
        image = denoise(image, 1.1)
        mask = noise_following_mask(image, 100 - 0.4 * 40)
        contrast = local_contrast(image, mask, mask_geometry(mask)[1], 2 * radius)
        start = weighted_centroid(contrast)
        out.append((tuple(centre), start, matched(contrast, start, 2 * radius)))
    return out


def test_the_matched_filter_is_less_noisy_than_the_intensity_centroid():
    """With masks whose boundary follows the noise, once the template has formed (frame 10 on)
    the matched position scatters less around the truth than the intensity centroid (here by
    15 %); on the template's first frame both are the same."""
    err = []
    for seed in (0, 1):
        rows = track_positions(seed)
        assert rows[0][1] == rows[0][2]
        err += [[math.dist(s, c), math.dist(m, c)] for c, s, m in rows[10:]]
    err = np.array(err)
    assert err[:, 1].mean() < 0.93 * err[:, 0].mean()


def test_the_matched_filter_is_unbiased_while_the_particle_moves():
    """No lag behind a moving particle and no drift of the template's reference point: the mean
    signed error stays near zero over 3 x 50 frames."""
    signed = []
    for seed in (1, 2, 3):
        for c, _, m in track_positions(seed)[10:]:
            signed.append((m[0] - c[0], m[1] - c[1]))
    assert np.abs(np.mean(signed, axis=0)).max() < 0.25


def test_the_frame_border_and_clear():
    """A patch that would leave the frame reports the intensity centroid and keeps the template;
    clear() forgets it; nbytes counts it."""
    image, truth = sphere_frame((120, 120), (60.0, 60.0), 12.0, noise=2.0, seed=5)
    f = MatchedFilter(0.05, 0.45)
    assert f.nbytes() == 0
    contrast = local_contrast(image, truth, mask_geometry(truth)[1], 24.0)
    start = weighted_centroid(contrast)
    f(contrast, start, 24.0)
    template = f.template.copy()
    assert f.nbytes() == template.nbytes == (2 * round(0.45 * 24) + 1) ** 2 * 4
    edge, etruth = sphere_frame((120, 120), (6.0, 60.0), 12.0, noise=2.0, seed=6)  # cut by the left edge
    c2 = local_contrast(edge, etruth, mask_geometry(etruth)[1], 24.0)
    s2 = weighted_centroid(c2)
    assert f(c2, s2, 24.0) == s2
    assert np.array_equal(f.template, template) and f.frames == 1
    f.clear()
    assert f.template is None and f.nbytes() == 0


def test_tracker_matched_option_moves_the_position_only(tiny, monkeypatch):
    """centroid="matched": masks, presence and windows as with "intensity"; positions differ once
    a template exists; the template is bounded, counted in state_nbytes and dropped when the
    object is absent."""
    Oracle(monkeypatch)
    shape, r, (x, y) = (120, 200), 9, (60.0, 60.0)
    box = (x - r, y - r, x + r + 1, y + r + 1)
    out = {}
    for how in ("intensity", "matched"):
        tracker = StreamingTracker(tiny, mode="roi", crop_size_px=48, centroid=how, mask_to_centroid=False)
        res = [tracker.start(disc_frame(shape, (x, y), r, seed=0)[0], {1: box})[1]]
        for t in (1, 2, 3):
            res.append(tracker.step(disc_frame(shape, (x + 2.3 * t, y - t), r, seed=t)[0])[1])
        out[how] = (tracker, res)
    for a, b in zip(out["intensity"][1], out["matched"][1]):
        assert np.array_equal(a.mask, b.mask) and a.present == b.present
    assert out["intensity"][1][0].centroid == out["matched"][1][0].centroid  # the template's first frame
    assert out["intensity"][1][-1].centroid != out["matched"][1][-1].centroid
    truth = (x + 6.9, y - 3)
    got = out["matched"][1][-1].centroid
    assert math.dist(got, truth) < 1.0
    tracker = out["matched"][0]
    assert tracker._objects[1].centre == out["intensity"][0]._objects[1].centre
    filt = tracker._objects[1].matched
    assert filt.frames == 4
    assert tracker.state_nbytes() == out["intensity"][0].state_nbytes() + filt.nbytes() > 0
    gone = disc_frame(shape, (x, y), r, seed=9, visible=False)[0]  # the particle is gone
    assert not tracker.step(gone)[1].present
    assert filt.template is None


def test_matched_option_errors():
    with pytest.raises(SamemError, match="matched_rate 0 must be in"):
        parse_options(["centroid=matched", "matched_rate=0"])
    with pytest.raises(SamemError, match="matched_half 5 must be from 0.2 to 2"):
        parse_options(["matched_half=5"])
