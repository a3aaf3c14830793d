"""Statistics of the exact trajectory samplers and of ground-truth tracks (no rendering).

Tolerances are derived from the sampling distribution of each estimator (k standard
errors, k = 4 unless stated), never tuned to the seed.
"""

import numpy as np
import pytest

from samem.errors import SamemError
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


# ---------------------------------------------------------------------- CTRW (pinning)
def test_ctrw_waiting_times_follow_the_stated_power_law():
    from scipy import stats

    rng = np.random.default_rng(21)
    t0, a, n = 0.01, 0.6, 20000
    waits = motion.ctrw_waiting_times(n, t0, a, rng)
    assert waits.min() >= t0

    def cdf(exponent, cutoff=None):
        return lambda t: 1.0 - motion.ctrw_wait_survival(t, t0, exponent, cutoff)

    assert stats.kstest(waits, cdf(a)).pvalue > 1e-3
    assert stats.kstest(waits, cdf(1.1 * a)).pvalue < 1e-6  # the KS test resolves a 10 % error
    # tail exponent: maximum-likelihood (Hill) estimate over all waits, standard error a / sqrt(n)
    a_hat = n / np.log(waits / t0).sum()
    assert abs(a_hat - a) < K * a / np.sqrt(n)
    # survival function's log-log slope over two decades of the tail
    tail = np.array([(waits > t).mean() for t in (0.1, 10.0)])
    slope = -np.log(tail[1] / tail[0]) / np.log(100.0)
    se = np.sqrt(np.sum((1 - tail) / (tail * n))) / np.log(100.0)  # binomial, delta method
    assert abs(slope - a) < K * se
    # a cutoff truncates the law: every wait below it, distributed as the conditioned law
    cut = 1.0
    cutw = motion.ctrw_waiting_times(n, t0, a, rng, cut)
    assert t0 <= cutw.min() and cutw.max() <= cut
    assert stats.kstest(cutw, cdf(a, cut)).pvalue > 1e-3
    assert stats.kstest(cutw, cdf(a)).pvalue < 1e-6
    assert abs(cutw.mean() - motion.ctrw_mean_wait_s(t0, a, cut)) < K * cutw.std() / np.sqrt(n)
    assert motion.ctrw_mean_wait_s(t0, 1.5) == pytest.approx(3 * t0)
    assert np.isinf(motion.ctrw_mean_wait_s(t0, 0.9))
    with pytest.raises(ValueError):
        motion.ctrw_waiting_times(3, t0, a, rng, wait_max_s=t0 / 2)


def test_ctrw_paths_stay_pinned_as_long_as_the_first_wait():
    # a path leaves the origin at its first jump, after one waiting time: P(still at 0 at t) = S(t)
    rng = np.random.default_rng(22)
    dt, n, paths = 0.05, 41, 3000
    for t0, a, cut in ((0.01, 0.6, None), (0.02, 1.5, 0.4)):
        x = np.array([motion.ctrw(n, 5.0, t0, a, dt, rng, cut) for _ in range(paths)])
        still = np.all(x == 0, axis=2).mean(axis=0)
        s = motion.ctrw_wait_survival(np.arange(n) * dt, t0, a, cut)
        assert np.all(np.abs(still - s) <= K * np.sqrt(s * (1 - s) / paths) + 1e-12), (a, cut)
        # between jumps the particle sits exactly still: many zero steps, as many as S(dt) at least
        steps_still = np.all(np.diff(x, axis=1) == 0, axis=2).mean()
        assert steps_still > (0.3 if cut is None else 0.05)
        if cut is not None:
            assert still[int(np.ceil(cut / dt)) :].max() == 0.0


def test_ctrw_subdiffusive_ensemble_msd_grows_as_t_to_the_a():
    rng = np.random.default_rng(23)
    t0, a, jump, dt, paths = 1e-5, 0.5, 3.0, 0.05, 4000
    idx = np.array([10, 200])  # t = 0.5 s and 10 s, >> t0
    t = idx * dt
    r2 = np.array([(motion.ctrw(201, jump, t0, a, dt, rng)[idx] ** 2).sum(axis=1) for _ in range(paths)])
    msd = r2.mean(axis=0)
    D, alpha = motion.ctrw_coefficients(jump, t0, a)
    assert alpha == a
    theory = motion.msd_theory("ctrw", t, D, alpha=alpha)
    rel_se = r2.std(axis=0) / msd / np.sqrt(paths)
    # next asymptotic term for a = 1/2: relative (1/pi - 1) / ((2/pi) sqrt(t/t0)), <= 0.5 % here
    bias = 1.1 * np.sqrt(t0 / t)
    assert np.all(np.abs(msd / theory - 1) < K * rel_se + bias)
    # the exponent from the two lags, se by the delta method with the paths' covariance
    alpha_hat = np.log(msd[1] / msd[0]) / np.log(t[1] / t[0])
    c = np.cov(r2.T) / np.outer(msd, msd) / paths
    se = np.sqrt(c[0, 0] + c[1, 1] - 2 * c[0, 1]) / np.log(t[1] / t[0])
    assert abs(alpha_hat - a) < K * se + bias[0]
    assert abs(alpha_hat - 1.0) > 10 * se  # far from diffusive


@pytest.mark.parametrize("a, t0, cut, paths", [(1.5, 1e-3, None, 1000), (0.7, 1e-3, 0.1, 2000)])
def test_ctrw_with_finite_mean_wait_is_diffusive_with_the_effective_D(a, t0, cut, paths):
    rng = np.random.default_rng(24)
    jump, dt, n = 2.0, 0.05, 401
    i1, i2 = 40, 400  # 2 s and 20 s, >> mean wait and cutoff
    ends = np.array([motion.ctrw(n, jump, t0, a, dt, rng, cut)[[i1, i2]] for _ in range(paths)])
    gain = (ends[:, 1] ** 2).sum(axis=1) - (ends[:, 0] ** 2).sum(axis=1)
    span = (i2 - i1) * dt
    D_hat = gain.mean() / (4 * span)  # the renewal constant cancels in the difference
    D, alpha = motion.ctrw_coefficients(jump, t0, a, cut)
    assert alpha == 1.0
    assert D == pytest.approx(jump**2 / (2 * motion.ctrw_mean_wait_s(t0, a, cut)))
    rel_se = gain.std() / gain.mean() / np.sqrt(paths)
    # renewal correction: for a = 1.5 a term in t^(2 - a), 0.7 % of the slope here; negligible with the cutoff
    assert abs(D_hat / D - 1) < K * rel_se + 0.01
    if cut is not None:  # without the cutoff the same walk would be subdiffusive with a far smaller D
        D_free, alpha_free = motion.ctrw_coefficients(jump, t0, a)
        assert alpha_free == a and D_free * span ** (a - 1) < 0.5 * D


def test_ctrw_particles_in_a_scene():
    params, sc = _scene(
        frames=200,
        size=512,
        n_particles=5,
        allow_overlap=True,
        stage_drift_nm_s=(0.0, 0.0),
        models={"ctrw": 1},
        jump_nm=(3.0, 6.0),
        wait_exponent=(0.5, 0.8),
        wait_min_s=0.02,
        seed=5,
    )
    parts = sc.particles
    assert list(parts["motion"]) == ["ctrw"] * 5
    still = []
    for i, row in parts.iterrows():
        assert 3.0 <= row["jump_nm"] <= 6.0 and 0.5 <= row["wait_exponent"] <= 0.8
        D, a = motion.ctrw_coefficients(row["jump_nm"], 0.02, row["wait_exponent"])
        assert row["alpha"] == a == row["wait_exponent"] and row["D_nm2_s"] == pytest.approx(D)
        still.append(np.all(np.diff(sc.xy_px[:, i], axis=0) == 0, axis=1).mean())
    # P(no jump in a frame) is at least S(dt) = (0.02 / 0.05)^a >= 0.48 and grows with age
    assert np.mean(still) > 0.4
    _, brownian = _scene(frames=50, size=512, n_particles=2, allow_overlap=True, seed=5)
    assert (brownian.particles[["jump_nm", "wait_exponent"]] == 0).all().all()


def test_ctrw_recipe_and_parameters():
    p = SynthParams.from_recipe("ctrw").validate()
    assert p.motion.models == {"ctrw": 1.0} and p.motion.wait_max_s is None
    assert p.imaging.thickness_nm == 50  # the rest is medium
    q = p.replace(wait_max_s=2.0, wait_exponent=(1.2, 1.8))
    assert SynthParams.from_dict(q.to_dict()) == q and q.motion.wait_max_s == 2.0
    for over, message in (
        (dict(wait_min_s=0.0), "wait_min_s"),
        (dict(wait_max_s=0.001), "wait_max_s"),
        (dict(wait_exponent=(0.0, 0.5)), "wait_exponent"),
        (dict(jump_nm=(-1.0, 2.0)), "jump_nm"),
        (dict(models={"ctrw": 1, "levy": 1}), "levy"),
    ):
        with pytest.raises(SamemError, match=message):
            p.replace(**over).validate()
