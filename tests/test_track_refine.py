"""Boundary refinement of the reported mask (samem.track.refine, TrackerOptions.refine_*)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from samem.errors import SamemError
from samem.eval.metrics import iou
from samem.track import StreamingTracker, TrackerOptions
from samem.track.options import parse_options
from samem.track.refine import refine_mask

SHAPE = (72, 72)
CENTRE = (36.0, 35.0)  # x, y
RADIUS = 12.0


def disc(radius: float, centre=CENTRE, shape=SHAPE) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def image_of(mask: np.ndarray, inside: float, outside: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(mask, inside, outside) + rng.normal(0, noise, mask.shape)


# half-contrast settings: the edge of a sharp disc lies half-way between core and ring
HALF = {"band_px": 4, "sigma_px": 1.0, "level": 0.5}


@pytest.mark.parametrize("dark", [True, False])
def test_a_mask_3px_too_large_is_pulled_onto_a_sharp_disc(dark):
    truth = disc(RADIUS)
    image = image_of(truth, 60, 160, 8) if dark else image_of(truth, 200, 90, 8)
    large = disc(RADIUS + 3)
    before = iou(large, truth)
    refined, contrast = refine_mask(image, large, **HALF)
    after = iou(refined, truth)
    assert before < 0.65 and after > 0.97, (before, after)  # measured: 0.62 -> 0.99
    assert contrast > 5
    assert refined.sum() < large.sum()


def test_a_correct_mask_stays_nearly_unchanged():
    truth = disc(RADIUS)
    image = image_of(truth, 60, 160, 8)
    refined, _ = refine_mask(image, truth, **HALF)
    assert iou(refined, truth) > 0.95
    assert np.count_nonzero(refined ^ truth) <= 0.05 * truth.sum()


def test_a_mask_3px_too_large_with_the_real_data_settings_moves_inwards():
    opts = TrackerOptions(refine_band_px=5)  # blur and level: the defaults, chosen on real train tiles
    truth = disc(RADIUS)
    image = image_of(truth, 60, 160, 8)
    large = disc(RADIUS + 3)
    refined, _ = refine_mask(image, large, opts.refine_band_px, opts.refine_sigma_px, opts.refine_level)
    assert iou(refined, truth) > iou(large, truth) + 0.1
    assert TrackerOptions().refine_band_px == 0  # off by default: it costs synthetic IoU


def test_noise_only_surroundings_do_not_explode_the_mask():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 20, SHAPE)  # no particle at all
    mask = disc(10)
    for level in (0.1, 0.5, 0.9):
        refined, contrast = refine_mask(image, mask, 4, 2.0, level)
        assert refined.sum() <= ndimage.binary_dilation(mask, iterations=5).sum()
        assert not (refined & ~ndimage.binary_dilation(mask, iterations=5)).any()  # never past the band
        assert refined[disc(6)].all()  # the core stays
        assert contrast < 2
    # with an edge-contrast gate nothing changes on noise
    refined, _ = refine_mask(image, mask, 4, 2.0, 0.1, min_contrast=3.0)
    assert np.array_equal(refined, mask)


def test_the_gate_keeps_low_contrast_masks_and_degenerate_cases():
    truth = disc(RADIUS)
    faint = image_of(truth, 150, 160, 20)
    large = disc(RADIUS + 3)
    refined, contrast = refine_mask(faint, large, 4, 2.0, 0.1, min_contrast=3.0)
    assert contrast < 3 and np.array_equal(refined, large)
    tiny = disc(2.5)  # no core deeper than the band
    same, c = refine_mask(faint, tiny, 4, 2.0, 0.1)
    assert np.array_equal(same, tiny) and math.isnan(c)
    empty = np.zeros(SHAPE, bool)
    assert not refine_mask(faint, empty, 4)[0].any()
    assert np.array_equal(refine_mask(faint, large, 0)[0], large)


def test_options_validate_refine_values():
    assert TrackerOptions(refine_band_px=3, refine_sigma_px=1, refine_level=0.3).refine_band_px == 3
    for bad, message in (
        ({"refine_band_px": -1}, "refine_band_px"),
        ({"refine_band_px": 100}, "refine_band_px"),
        ({"refine_sigma_px": -0.5}, "refine_sigma_px"),
        ({"refine_level": 1.5}, "refine_level"),
        ({"refine_min_contrast": -1}, "refine_min_contrast"),
    ):
        with pytest.raises(SamemError, match=message):
            TrackerOptions(**bad)
    with pytest.raises(SamemError, match="refine_level must be a number"):
        parse_options(["refine_level=high"])
    assert parse_options(["refine_band_px=3"]) == {"refine_band_px": 3}


def test_the_tracker_refines_the_reported_mask_only(tiny, drifting_discs):
    boxes = {1: (13, 23, 28, 38), "b": (63, 43, 78, 58)}
    common = {"mode": "roi", "centroid": "matched", "verify": False}
    plain = StreamingTracker(tiny, **common, refine_band_px=0)
    snapped = StreamingTracker(tiny, **common, refine_band_px=3, refine_sigma_px=1.0, refine_level=0.5)
    frames = drifting_discs[:8]
    for t, frame in enumerate(frames):
        a = plain.start(frame, boxes) if t == 0 else plain.step(frame)
        b = snapped.start(frame, boxes) if t == 0 else snapped.step(frame)
        for oid in boxes:
            ra, rb = a[oid], b[oid]
            # the model, its memory and presence, and the contrast-based position are untouched
            assert ra.present == rb.present and ra.score == rb.score and ra.iou == rb.iou
            if not ra.present:
                continue
            assert ra.centroid == rb.centroid
            # the mask changes only within the band around the model's own mask
            assert not (rb.mask & ~ndimage.binary_dilation(ra.mask, np.ones((3, 3), bool), 3)).any()
            x0, y0, x1, y1 = rb.bbox
            assert rb.mask[y0:y1, x0:x1].sum() == rb.mask.sum() > 0
