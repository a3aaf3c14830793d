"""Van Hove distributions, non-Gaussian parameter and VACF against closed forms."""

import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.stats import displacements, non_gaussian, vacf, van_hove


def brownian_table(rng, D_per_particle, n_frames, dt=1.0, sigma=0.0):
    """2D Brownian tracks (nm, pixel size 1 nm) with per-axis step variance 2 D dt plus static noise."""
    rows = []
    for p, D in enumerate(D_per_particle):
        xy = np.cumsum(rng.normal(size=(n_frames, 2)) * np.sqrt(2 * D * dt), axis=0)
        xy += rng.normal(size=xy.shape) * sigma
        rows.append(pd.DataFrame({"frame": np.arange(n_frames), "particle": p, "x": xy[:, 0], "y": xy[:, 1]}))
    df = pd.concat(rows, ignore_index=True)
    df.attrs.update(pixel_size_nm=1.0, frame_interval_s=dt)
    return df


def test_ngp_zero_for_brownian_and_known_for_mixture():
    rng = np.random.default_rng(21)
    df = brownian_table(rng, [3.0] * 20, 500)
    m = non_gaussian(df, [1])
    n = int(m["n_pairs"].iloc[0])
    # for independent 2D Gaussian displacements the estimator's standard error is 1/sqrt(n)
    assert abs(m["ngp"].iloc[0]) < 4 / np.sqrt(n)
    assert m["msd"].iloc[0] == pytest.approx(4 * 3.0, rel=4 * np.sqrt(1 / n))
    mix = brownian_table(rng, [1.0] * 10 + [9.0] * 10, 500)
    truth = np.mean(np.array([1.0, 9.0]) ** 2) / np.mean([1.0, 9.0]) ** 2 - 1  # <D²>/<D>² - 1 = 0.64
    got = non_gaussian(mix, [1])["ngp"].iloc[0]
    # the estimator's spread for this mixture and size is 0.027 (40 seeds): 0.1 is about 4 SE
    assert abs(got - truth) < 0.1


def test_van_hove_is_normalised_with_matching_gaussian():
    rng = np.random.default_rng(22)
    df = brownian_table(rng, [2.0] * 10, 400)
    vh = van_hove(df, [1, 4], bins=31)
    for k, g in vh.groupby("lag"):
        area = np.sum(g["density_per_nm"] * g["bin_width_nm"])
        assert area == pytest.approx(1.0, rel=1e-12)
        d = displacements(df, k)
        assert g["count"].sum() == 2 * len(d)  # x and y components pooled
        var = np.var(np.r_[d["dx_nm"], d["dy_nm"]])
        assert var == pytest.approx(2 * 2.0 * k, rel=0.1)  # per-axis variance 2 D t
        centre = g["bin_center_nm"].to_numpy()
        peak = 1 / np.sqrt(2 * np.pi * var)
        assert g["gaussian_per_nm"].iloc[np.argmin(np.abs(centre))] == pytest.approx(peak, rel=0.05)
    assert set(vh["lag_s"]) == {1.0, 4.0}


def test_vacf_localisation_error_closed_form():
    rng = np.random.default_rng(23)
    D, sigma, dt = 5.0, 2.0, 0.5
    df = brownian_table(rng, [D] * 30, 300, dt=dt, sigma=sigma)
    v = vacf(df, max_lag=5)
    n1 = v["n_pairs"].iloc[1]
    expected = -(sigma**2) / (2 * D * dt + 2 * sigma**2)
    assert v["vacf_norm"].iloc[0] == 1.0
    # a correlation coefficient from n pairs has SE <= 1/sqrt(n)
    assert abs(v["vacf_norm"].iloc[1] - expected) < 4 / np.sqrt(n1)
    assert np.all(np.abs(v["vacf_norm"].iloc[2:]) < 4 / np.sqrt(v["n_pairs"].iloc[2:]))
    assert v["vacf"].iloc[0] == pytest.approx(2 * (2 * D * dt + 2 * sigma**2) / dt**2, rel=0.05)
    # a gap removes the velocities that touch it
    gappy = df[~((df["particle"] == 0) & (df["frame"] == 10))]
    assert vacf(gappy, max_lag=2)["n_pairs"].iloc[0] == v["n_pairs"].iloc[0] - 2


def test_errors_and_empty():
    df = brownian_table(np.random.default_rng(0), [1.0], 3)
    assert len(van_hove(df, [5])) == 0
    assert non_gaussian(df, [5])["n_pairs"].iloc[0] == 0 and np.isnan(non_gaussian(df, [5])["ngp"].iloc[0])
    with pytest.raises(SamemError, match="lag"):
        van_hove(df, [])
    with pytest.raises(SamemError, match="bins"):
        van_hove(df, [1], bins=1)
    with pytest.raises(SamemError):
        vacf(df, max_lag=0)
