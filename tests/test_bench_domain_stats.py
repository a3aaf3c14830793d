"""The image statistics of bench/bench_domain_stats.py on small synthetic images with known values.

Discs of known radius, contrast and blur on white or Gaussian-filtered noise of known sigma;
the real data in ../shared/realdata is never read here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import load_bench_script
from scipy import ndimage


@pytest.fixture(scope="module")
def ds():
    return load_bench_script("bench_domain_stats")


def disc_image(size=160, radius=20.0, contrast=-8.0, sigma=3.0, blur=1.5, level=100.0, seed=0, centre=None):
    """``(image, labels)``: a disc of ``contrast`` noise sigmas, Gaussian-blurred by ``blur`` px,
    on white Gaussian noise of ``sigma`` around ``level``; the label is the sharp disc."""
    cy, cx = centre or (size / 2 - 0.3, size / 2 + 0.2)
    yy, xx = np.mgrid[:size, :size]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    signal = ndimage.gaussian_filter(disc.astype(float), blur) * contrast * sigma
    noise = np.random.default_rng(seed).normal(0, sigma, (size, size))
    return level + signal + noise, disc.astype(np.int32)


def test_white_noise_sigma_is_recovered(ds):
    rng = np.random.default_rng(1)
    img = 50 + rng.normal(0, 4.0, (256, 256))
    bg = np.ones(img.shape, bool)
    assert ds.noise_sigma(img, bg) == pytest.approx(4.0, rel=0.03)
    assert ds.broadband_sigma(img, bg) == pytest.approx(4.0, rel=0.05)


def test_background_keeps_five_px_from_the_masks(ds):
    labels = np.zeros((40, 40), int)
    labels[18:22, 18:22] = 1
    bg = ds.background_mask(labels)
    d = ndimage.distance_transform_edt(labels == 0)
    assert not bg[d < 5].any() and bg[d >= 5].all()
    assert ds.background_mask(np.zeros((5, 5), int)).all()


def test_diameter_contrast_and_edge_of_a_blurred_disc(ds):
    radius, contrast, blur = 20.0, -8.0, 1.5
    img, labels = disc_image(radius=radius, contrast=contrast, blur=blur)
    s = ds.image_stats(img, labels)
    assert s["whole"] == 1
    # pixel-centre disc: area ~ pi r^2
    assert s["diameter_px"][0] == pytest.approx(2 * radius, abs=0.5)
    # the eroded core sits >= 2 px inside the edge: the blur costs < 1 % there
    assert s["contrast_sigma"][0] == pytest.approx(contrast, rel=0.05)
    # white noise: the broadband rms is the same sigma
    assert s["contrast_rms"][0] == pytest.approx(contrast, rel=0.08)
    # a blurred step: 10-90 % width 2 * 1.2816 * blur; 50 % point on the mask boundary
    assert s["edge_width_px"][0] == pytest.approx(2 * 1.2816 * blur, rel=0.2)
    assert abs(s["edge_mid_px"][0]) < 0.3
    assert s["noise_adu"] == pytest.approx(3.0, rel=0.05)
    assert s["particles_per_mpx"] == pytest.approx(1e6 / 160**2)
    assert s["coverage"] == pytest.approx(math.pi * radius**2 / 160**2, rel=0.03)


def test_edge_width_grows_with_blur_and_a_wider_mask_moves_the_mid_point_inside(ds):
    widths = []
    for blur in (1.0, 2.0):
        img, labels = disc_image(blur=blur, contrast=-15.0, seed=2)
        widths.append(ds.image_stats(img, labels)["edge_width_px"][0])
        # (at 2 px the +-6 px window starts to cut the tails: 4.7 px instead of 5.1)
        assert widths[-1] == pytest.approx(2 * 1.2816 * blur, rel=0.2)
    assert widths[1] > 1.5 * widths[0]
    # a mask drawn 2 px outside the visible edge: the 50 % point lies 2 px inside the mask
    img, _ = disc_image(radius=20.0, contrast=-15.0, blur=1.0, seed=3)
    _, wide = disc_image(radius=22.0)
    assert ds.image_stats(img, wide)["edge_mid_px"][0] == pytest.approx(-2.0, abs=0.35)


def test_bright_particle_keeps_its_sign_and_faint_edges_are_skipped(ds):
    img, labels = disc_image(contrast=6.0, seed=4)
    assert ds.image_stats(img, labels)["contrast_sigma"][0] == pytest.approx(6.0, rel=0.07)
    img, labels = disc_image(contrast=0.3, seed=5)
    s = ds.image_stats(img, labels)
    assert math.isnan(s["edge_width_px"][0]) and math.isnan(s["edge_mid_px"][0])


def test_edge_cut_particles_count_but_get_no_per_particle_figures(ds):
    img, labels = disc_image(centre=(10.0, 80.0), seed=6)
    s = ds.image_stats(img, labels)
    assert s["whole"] == 0 and s["diameter_px"] == []
    assert s["particles_per_mpx"] == pytest.approx(1e6 / 160**2)


def test_correlation_length_of_white_and_filtered_noise(ds):
    rng = np.random.default_rng(7)
    bg = np.ones((256, 256), bool)
    white = rng.normal(0, 1, bg.shape)
    assert ds.correlation_length(white, bg) < 1.0
    lengths = []
    for s in (1.0, 2.0, 3.0):
        filtered = ndimage.gaussian_filter(rng.normal(0, 1, bg.shape), s)
        lengths.append(ds.correlation_length(filtered, bg))
    # Gaussian-filtered white noise has autocorrelation exp(-r^2 / 4 s^2): 1/e at 2 s (for
    # larger s the 8-px background smoothing takes away part of the long-range correlation)
    assert lengths[0] == pytest.approx(2.0, rel=0.2)
    assert lengths[1] == pytest.approx(4.0, rel=0.2)
    assert lengths[0] < lengths[1] < lengths[2]


def test_background_gradient_of_a_known_plane(ds):
    h = w = 128
    yy, xx = np.mgrid[:h, :w]
    plane = 100.0 * (1 + 0.2 * (xx / (w - 1) - 0.5))  # 20 % across the columns
    img = plane + np.random.default_rng(8).normal(0, 2.0, (h, w))
    labels = np.zeros((h, w), int)
    labels[50:70, 50:70] = 1
    bg = ds.background_mask(labels)
    frac, in_sigma = ds.background_gradient(img, bg, 2.0)
    assert frac == pytest.approx(0.2, rel=0.05)
    assert in_sigma == pytest.approx(20.0 / 2.0, rel=0.05)


def test_table_and_outside_fractions(ds):
    real = {k: [1.0, 2.0, 3.0] for k in (*ds.PER_PARTICLE, *ds.PER_IMAGE)}
    synth = {k: list(np.linspace(1.5, 2.5, 101)) for k in real}
    o = ds.outside(real["diameter_px"], synth["diameter_px"])
    assert o["below"] == pytest.approx(1 / 3) and o["above"] == pytest.approx(1 / 3)
    assert o["median_rank"] == pytest.approx(0.5, abs=0.01)
    text = ds.table(real, synth)
    assert text.count("\n") == 2 + len(real) - 1
    assert "| 1. particle equivalent diameter (px) | 2.00 [1.20 - 2.80] (3) |" in text
