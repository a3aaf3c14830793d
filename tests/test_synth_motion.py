"""Statistics of the exact trajectory samplers and of ground-truth tracks (no rendering).

Tolerances are derived from the sampling distribution of each estimator (k standard
errors, k = 4 unless stated), never tuned to the seed.
"""

import numpy as np
import pytest

from samem.synthetic import SynthParams, motion
from samem.synthetic.scene import build_scene

K = 4.0  # standard errors allowed


def fgn_cov(k, hurst):
    k = np.abs(np.asarray(k, float))
    return 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))


def rel_sd_mean_square(n, hurst):
    """Relative sd of (1/n) sum x_i^2 for n consecutive unit-variance fGn samples (Gaussian)."""
    lags = np.arange(n)
    rho = fgn_cov(lags, hurst)
    weights = np.where(lags == 0, n, 2.0 * (n - lags))  # pairs (i, j) with |i - j| = lag
    return np.sqrt(2.0 * np.sum(weights * rho**2)) / n


def test_brownian_recovers_D():
    rng = np.random.default_rng(1)
    D, dt, n, paths = 250.0, 0.05, 2001, 20
    sq = np.concatenate([np.diff(motion.brownian(n, D, dt, rng), axis=0) ** 2 for _ in range(paths)])
    D_hat = sq.mean() / (2 * dt)  # per-axis variance 2 D dt
    rel_se = np.sqrt(2.0 / sq.size)  # squared N(0, s^2) has variance 2 s^4
    assert abs(D_hat / D - 1) < K * rel_se
    assert motion.brownian(n, D, dt, rng).shape == (n, 2)
    assert np.all(motion.brownian(5, D, dt, rng)[0] == 0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_fractional_brownian_ensemble_msd(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    D, dt, n, paths = 80.0, 0.05, 129, 1500
    end = np.array([motion.fractional_brownian(n, D, alpha, dt, rng)[[1, 128]] for _ in range(paths)])
    msd = (end**2).sum(axis=2).mean(axis=0)  # ensemble MSD at t = dt and 128 dt
    t = np.array([1, 128]) * dt
    # |x(t)|^2 / E = chi2_2 / 2 per path: relative se of the mean 1/sqrt(paths)
    rel_se = 1 / np.sqrt(paths)
    assert np.all(np.abs(msd / (4 * D * t**alpha) - 1) < K * rel_se)
    alpha_hat = np.log(msd[1] / msd[0]) / np.log(128)
    assert abs(alpha_hat - alpha) < K * 2 * rel_se / np.log(128)  # worst case: errors add


def test_fractional_gaussian_noise_has_exact_covariance():
    rng = np.random.default_rng(3)
    hurst, n, reps = 0.3, 64, 400
    series = np.concatenate([motion.fractional_gaussian_noise(n, hurst, rng) for _ in range(reps)], axis=1).T
    for lag in (1, 2, 5):
        c = np.mean(series[:, :-lag] * series[:, lag:])
        # exact variance of one series' sum of products (Isserlis), then of the mean over series
        m = n - lag
        d = np.subtract.outer(np.arange(m), np.arange(m))
        var_sum = np.sum(fgn_cov(d, hurst) ** 2 + fgn_cov(d + lag, hurst) * fgn_cov(d - lag, hurst))
        se = np.sqrt(var_sum / len(series)) / m
        assert abs(c - fgn_cov(lag, hurst)) < K * se
    assert fgn_cov(1, hurst) < 0  # anti-persistent steps for H < 1/2
    with pytest.raises(ValueError):
        motion.fractional_brownian(10, 1.0, 2.0, 0.1, rng)


def test_confined_variance_and_relaxation():
    rng = np.random.default_rng(4)
    D, dt, k, T = 400.0, 0.05, 0.01, 298.15
    var = motion.trap_variance_nm2(k, T)
    rate = motion.trap_relaxation_rate(D, k, T)
    paths = 3000
    x = np.array([motion.confined(3, D, dt, k, rng, T)[[0, 2]] for _ in range(paths)])  # stationary start
    rel_se = np.sqrt(2.0 / (2 * paths))
    assert abs(x[:, 0].var() / var - 1) < K * rel_se
    msd = ((x[:, 1] - x[:, 0]) ** 2).mean() / 2  # per axis
    expect = motion.msd_theory("confined", 2 * dt, D, ndim=1, stiffness_pN_nm=k, temperature_K=T) / 2
    assert abs(msd / expect - 1) < K * rel_se
    assert expect < 2 * D * 2 * dt  # confinement slows spreading below free diffusion
    assert rate > 0


def test_directed_motion_mean_and_ballistic_msd():
    rng = np.random.default_rng(5)
    D, dt, v, n, paths = 50.0, 0.05, np.array([30.0, -10.0]), 41, 800
    ends = np.array([motion.directed(n, D, dt, v, rng)[-1] for _ in range(paths)])
    t = (n - 1) * dt
    se = np.sqrt(2 * D * t / paths)
    assert np.all(np.abs(ends.mean(axis=0) - v * t) < K * se)
    msd = (ends**2).sum(axis=1).mean()
    expect = motion.msd_theory("directed", t, D, speed_nm_s=np.hypot(*v))
    speed2 = v @ v
    # |v t + B|^2 = v^2 t^2 + 2 v.B + |B|^2: variance 8 v^2 D t + 16 D^2 t^2 per path
    se = np.sqrt((8 * speed2 * D * t + 16 * D**2 * t**2) / paths)
    assert abs(msd - expect) < K * se


def _scene(**over):
    params = SynthParams.from_preset("medium", **over).validate()
    return params, build_scene(params, np.random.default_rng(params.seed))


def test_ground_truth_tracks_recover_each_particles_D_and_alpha():
    n = 4096
    params, sc = _scene(
        frames=n,
        size=512,
        n_particles=6,
        allow_overlap=True,
        stage_drift_nm_s=(0.0, 0.0),
        models={"brownian": 1, "anomalous": 1},
        alpha=(0.6, 1.4),
        D_nm2_s=(50.0, 500.0),
        seed=11,
    )
    dt, px = params.frame_interval_s, params.pixel_size_nm
    for i, row in sc.particles.iterrows():
        xy_nm = sc.xy_px[:, i] * px
        a, D = row["alpha"], row["D_nm2_s"]
        h = a / 2
        est = {}
        for lag in (1, 16):
            inc = xy_nm[lag::lag] - xy_nm[:-lag:lag]  # non-overlapping increments: fGn at scale lag
            est[lag] = (inc**2).mean()  # per-axis variance (both axes pooled): 2 D (lag dt)^a
            rel = rel_sd_mean_square(len(inc), h) / np.sqrt(2)  # two independent axes
            assert abs(est[lag] / (2 * D * (lag * dt) ** a) - 1) < K * rel, (row["motion"], lag)
        alpha_hat = np.log(est[16] / est[1]) / np.log(16)
        bound = (
            K
            * (rel_sd_mean_square(n - 1, h) + rel_sd_mean_square((n - 1) // 16, h))
            / np.sqrt(2)
            / np.log(16)
        )
        assert abs(alpha_hat - a) < bound, (row["motion"], a, alpha_hat)


def test_stage_drift_shows_as_ballistic_msd():
    v = np.array([40.0, -30.0])  # nm/s
    D, n_frames, n_particles = 5.0, 400, 3
    common = dict(
        frames=n_frames,
        size=512,
        n_particles=n_particles,
        allow_overlap=True,
        models={"brownian": 1},
        D_nm2_s=(D, D),
        seed=2,
    )
    params, sc = _scene(stage_drift_nm_s=tuple(v), **common)
    _, still = _scene(stage_drift_nm_s=(0.0, 0.0), **common)
    dt, px = params.frame_interval_s, params.pixel_size_nm
    lags = np.arange(1, 80)
    tau = lags * dt
    duration = (n_frames - 1) * dt
    speed = np.hypot(*v)
    for xy, expect in ((sc.xy_px, speed**2), (still.xy_px, 0.0)):
        msd = np.array([((xy[lag:] - xy[:-lag]) ** 2).sum(axis=2).mean() for lag in lags]) * px**2
        (a, b), *_ = np.linalg.lstsq(np.stack([tau, tau**2], 1), msd, rcond=None)  # 4 D tau + v^2 tau^2
        # time-averaged displacements carry 2 v.(B(T) - B(0)) / T of the Brownian part into
        # the tau^2 term: sd 2 |v| sqrt(2 D T) / T per particle; plus at most the whole
        # diffusive MSD 4 D tau_max misread as ballistic
        se = 2 * speed * np.sqrt(2 * D * duration) / duration / np.sqrt(n_particles)
        assert abs(b - expect) < 4 * se + 4 * D / tau[-1], (expect, b)
    assert np.allclose(sc.stage_px[1] - sc.stage_px[0], v * dt / px)
