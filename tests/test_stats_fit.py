"""MSD fits on seeded simulations with known D, alpha and localisation error."""

import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.stats import compute_statistics, fit_msd, select_lags
from samem.stats.fit import msd_covariance
from samem.stats.msd import particle_msd
from samem.stats.sums import lag_sums
from samem.stats.units import Scale

DT = 0.1  # s


def fbm_paths(rng, n_particles, n_frames, D, alpha, sigma):
    """Exact fractional Brownian paths (Cholesky of the position covariance) plus static noise, nm.

    Per axis: Var(x(t)) = 2 D t^alpha, so the 2D MSD is 4 D t^alpha; noise sigma per axis.
    """
    t = np.arange(1, n_frames) * DT
    cov = D * (t[:, None] ** alpha + t[None, :] ** alpha - np.abs(t[:, None] - t[None, :]) ** alpha)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(t)))
    z = rng.normal(size=(n_particles, 2, n_frames - 1))
    path = np.concatenate([np.zeros((n_particles, 2, 1)), z @ chol.T], axis=2)
    return path + rng.normal(size=path.shape) * sigma


def table(paths):
    P, _, N = paths.shape
    return pd.DataFrame(
        {
            "frame": np.tile(np.arange(N), P),
            "particle": np.repeat(np.arange(P), N),
            "x": paths[:, 0].ravel(),
            "y": paths[:, 1].ravel(),
        }
    )


def per_particle_fits(paths, fixed_alpha=None):
    P, _, N = paths.shape
    sums = lag_sums(table(paths), 50, quartic_lags=(), vacf_lags=0)
    msd = particle_msd(sums, Scale(1.0, "nm", DT))
    lags = select_lags(N, 50)
    return [fit_msd(lags, msd[p, lags - 1], DT, N, fixed_alpha=fixed_alpha) for p in range(P)]


def test_brownian_D_and_offset_unbiased_with_calibrated_errors():
    rng = np.random.default_rng(11)
    D, sigma = 50.0, 3.0
    fits = per_particle_fits(fbm_paths(rng, 80, 120, D, 1.0, sigma), fixed_alpha=1.0)
    zD = np.array([(f.D - D) / f.D_err for f in fits])
    zo = np.array([(f.offset - 4 * sigma**2) / f.offset_err for f in fits])
    for z in (zD, zo):
        # for 80 standard normal z: |mean| < 4/sqrt(80) = 0.45, std within ~±30 % (4σ of a sample std)
        assert abs(z.mean()) < 0.45, z.mean()
        assert 0.7 < z.std() < 1.3, z.std()
    assert all(f.ok and f.lag_min_s == DT and f.n_lags == len(select_lags(120, 50)) for f in fits)


@pytest.mark.parametrize("alpha", [0.5, 1.4])
def test_alpha_recovered_for_fractional_motion(alpha):
    rng = np.random.default_rng(12)
    fits = per_particle_fits(fbm_paths(rng, 60, 120, 40.0, alpha, 2.0))
    a = np.array([f.alpha for f in fits])
    err = np.array([f.alpha_err for f in fits])
    # mean of 60 estimates within 4 standard errors (from their own scatter) of the truth
    assert abs(a.mean() - alpha) < 4 * a.std(ddof=1) / np.sqrt(len(a))
    # reported errors describe the scatter: median |z| of a unit normal is 0.674
    assert 0.45 < np.median(np.abs(a - alpha) / err) < 0.95


def test_confined_motion_shows_plateau():
    rng = np.random.default_rng(13)
    P, N, var, a = 30, 400, 25.0, np.exp(-0.5)  # OU per axis: stationary variance 25 nm², relaxation 2 frames
    x = np.empty((P, 2, N))
    x[..., 0] = rng.normal(size=(P, 2)) * np.sqrt(var)
    for i in range(1, N):
        x[..., i] = a * x[..., i - 1] + rng.normal(size=(P, 2)) * np.sqrt(var * (1 - a * a))
    st = compute_statistics(table(x), 1.0, DT, {"max_lag": 60})
    e = st.emsd.set_index("lag")
    plateau = 4 * var  # 2 axes x 2 var
    long = e.loc[30:60]
    assert np.all(np.abs(long["msd_nm2"] - plateau) < 4 * long["sem_nm2"] + 0.05 * plateau)
    assert st.summary["ensemble"]["alpha"] < 0.5  # flattening: strongly subdiffusive over the fit range


def test_covariance_matches_monte_carlo():
    """The model covariance of MSD estimates equals the empirical one of simulated tracks."""
    rng = np.random.default_rng(14)
    D, sigma, N, lags = 20.0, 2.0, 40, np.array([1, 3, 8])
    paths = fbm_paths(rng, 3000, N, D, 1.0, sigma)
    sums = lag_sums(table(paths), 8, quartic_lags=(), vacf_lags=0)
    msd = particle_msd(sums, Scale(1.0, "nm", DT))[:, lags - 1]
    emp = np.cov(msd.T)
    model = msd_covariance(lags, N, D, 1.0, 4 * sigma**2, DT)
    # a variance from 3000 samples of a skewed variable is known to ~±10 %
    np.testing.assert_allclose(np.diag(emp), np.diag(model), rtol=0.15)
    corr = emp / np.sqrt(np.outer(np.diag(emp), np.diag(emp)))
    mcorr = model / np.sqrt(np.outer(np.diag(model), np.diag(model)))
    np.testing.assert_allclose(corr, mcorr, atol=0.06)


def test_too_few_lags_and_bad_config():
    f = fit_msd([1, 2], [1.0, 2.0], DT, 3)
    assert not f.ok and np.isnan(f.D) and "too few" in f.message
    f = fit_msd([1, 2, 3, 4], [np.nan] * 4, DT, 5, fixed_alpha=1.0)
    assert not f.ok
    assert list(select_lags(1, 100)) == []
    assert list(select_lags(10, 100)) == [1, 2, 3, 4]
    with pytest.raises(SamemError, match="fraction"):
        compute_statistics(table(np.zeros((1, 2, 5))), 1.0, 1.0, {"fit": {"fraction": 2}})
    with pytest.raises(SamemError, match="unknown"):
        compute_statistics(table(np.zeros((1, 2, 5))), 1.0, 1.0, {"bogus": 1})


def _repro_track():
    """A plausible live track (``[seq, x_px, y_px]``, 0.5 nm/px, 0.05 s) whose fit once raised."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "msd_fit_nan_track.json").read_text())


def test_degenerate_fit_is_unknown_with_a_reason_not_an_exception():
    """Issue 23 (1): the free fit went to D -> 0 with a negative offset, the model covariance
    became zero and least_squares raised 'array must not contain infs or NaNs'."""
    import json

    from samem.stats.live import LiveStats

    live = LiveStats(pixel_size_nm=0.5, frame_interval_s=0.05)
    for seq, x, y in _repro_track():
        live.update(seq, {1: (x, y)})
    st = live.statistics()  # raised before the fix
    (row,) = st.summary["particles"]
    json.dumps(st.summary, allow_nan=False)  # strict JSON: unknown values are null
    # whatever could not be fitted is null and says why; what could be fitted is finite
    for key in ("alpha", "D_alpha_nm2_s_alpha"):
        assert row[key] is None or np.isfinite(row[key])
    if not row["fit_ok"]:
        assert row["message"]
    assert row["alpha"] is None and "no reliable fit" in row["message"]
    # the same track through the batch path agrees
    tr = np.array(_repro_track(), dtype=float)  # null positions (absent frames) become NaN
    df = pd.DataFrame({"frame": tr[:, 0].astype(int), "particle": 1, "x": tr[:, 1], "y": tr[:, 2]})
    batch = compute_statistics(df, 0.5, 0.05).summary["particles"][0]
    assert batch["fit_ok"] is False and "no reliable fit" in batch["message"]


def test_fit_never_raises_on_degenerate_curves():
    """Curves no model fits (negative, flat, huge, tiny) give ok=False with a message or a finite fit."""
    lags = np.arange(1, 9)
    curves = [
        np.array([96.7, 206.2, 297.6, 455.9, 655.1, 1226.6, 1696.6, 1495.8]),
        np.full(8, 1e-300),
        np.full(8, 1e300),
        np.array([5.0, -3.0, 4.0, -2.0, 6.0, -1.0, 3.0, 0.5]),
        np.array([1e-12, 1e12, 1e-12, 1e12, 1e-12, 1e12, 1e-12, 1e12]),
    ]
    for y in curves:
        for fixed in (None, 1.0):
            f = fit_msd(lags, y, DT, 30, fixed_alpha=fixed)
            assert (f.ok and np.isfinite(f.D)) or (not f.ok and f.message), (y, fixed, f)


def test_plot_of_the_repro_track_writes_figures(tmp_path, capsys):
    """Issue 23 (1): `samem plot` on the recording of this track exited 1 with a traceback."""
    import h5py

    from samem.cli.main import main
    from samem.io.table import write_table

    tr = np.array(_repro_track(), dtype=float)  # null positions (absent frames) become NaN
    df = pd.DataFrame(
        {"frame": tr[:, 0].astype(np.int64), "particle": np.int64(1), "x": tr[:, 1], "y": tr[:, 2]}
    )
    path = tmp_path / "results.h5"
    with h5py.File(path, "w") as f:
        f.attrs["pixel_size_nm"], f.attrs["frame_interval_s"] = 0.5, 0.05
        write_table(f, "tracks", df)
    assert main(["plot", str(path), "--out", str(tmp_path / "fig"), "--format", "png"]) == 0
    assert (tmp_path / "fig" / "msd.png").stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err
