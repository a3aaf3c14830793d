"""The localisation bounds of bench/bench_crlb.py (the model card's noise-floor claims rest on them)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import load_bench_script


@pytest.fixture(scope="module")
def crlb():
    return load_bench_script("bench_crlb")


def test_fisher_in_white_noise_is_the_sum_of_squared_derivatives(crlb):
    rng = np.random.default_rng(0)
    d = [rng.standard_normal((32, 32)), rng.standard_normal((32, 32))]
    d = [x - x.mean() for x in d]  # the bound leaves out the mean (spectrum bin 0)
    sigma2 = 2.5
    spectrum = np.full((32, 32), sigma2)
    spectrum[0, 0] = np.inf
    info = crlb.fisher(d, spectrum)
    expected = np.array([[np.sum(a * b) for b in d] for a in d]) / sigma2
    np.testing.assert_allclose(info, expected, rtol=1e-10)


def test_mean_error_of_an_isotropic_normal(crlb):
    sigma = 1.7
    # mean length of a 2D normal vector with per-axis sigma: sigma * sqrt(pi / 2)
    assert crlb.mean_error(np.eye(2) * sigma**2) == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.02)
    assert crlb.mean_error(np.diag([4.0, 0.0])) == pytest.approx(2.0 * np.sqrt(2 / np.pi), rel=0.03)


def test_kalman_bounds_of_a_still_particle_average_all_frames(crlb):
    info = np.eye(2) * 0.5  # each frame alone: variance 2 px² per axis
    frames = 10
    filtered, smoothed = crlb.kalman([info] * frames, q=0.0)
    assert filtered[0][0, 0] == pytest.approx(2.0, rel=1e-6)
    assert filtered[-1][0, 0] == pytest.approx(2.0 / frames, rel=1e-6)
    for cov in smoothed:  # a particle that never moves: every frame knows all of them
        assert cov[0, 0] == pytest.approx(2.0 / frames, rel=1e-6)


def test_kalman_of_a_fast_walk_is_the_single_frame_bound(crlb):
    info = np.eye(2)
    filtered, smoothed = crlb.kalman([info, None, info, info], q=1e6)
    for t in (0, 2, 3):
        assert smoothed[t][0, 0] == pytest.approx(1.0, rel=1e-3)
    assert filtered[1][0, 0] > 1e5  # unobserved frame: nothing known beyond the walk


def test_bound_against_a_known_shape_fit_on_a_small_scene(crlb):
    """The maximum-likelihood fit that knows everything but the position cannot beat the bound
    (beyond Monte-Carlo noise) and, on a blurred (thick-liquid) frame, comes close to it."""
    rows = crlb.check_efficiency("thick", 7, reps=12, frames=2, size=256, particles=2, n=128, times=(0,))
    assert rows, "no particle fully inside the field"
    for row in rows:
        assert row["bound_px"] > 0.05
        assert 0.75 * row["bound_px"] < row["ml_px"] < 2.0 * row["bound_px"]


def test_d_error_floor_grows_with_localisation_noise(crlb):
    from samem.synthetic import SynthParams
    from samem.synthetic.render import Renderer

    params = SynthParams.from_preset("thin", frames=120, size=256, n_particles=1, seed=3)
    r = Renderer(params)
    small = [[np.eye(2) * 100.0] * params.frames]  # 0.1 px per axis
    large = [[np.eye(2) * 0.04] * params.frames]  # 5 px per axis
    lo = crlb.d_error_floor(r, small, draws=4)[1]
    hi = crlb.d_error_floor(r, large, draws=4)[1]
    assert lo < 0.02 < hi
