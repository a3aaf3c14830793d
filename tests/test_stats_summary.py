"""Statistics summary: JSON, HDF5 /stats round trip, config, drift option, edge cases."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.stats import compute_statistics, read_stats, summarize, write_stats


def brownian_df(seed=0, P=6, T=150, D=30.0, dt=0.05, px=2.0, sigma_nm=2.0, drift_px=(0.0, 0.0)):
    rng = np.random.default_rng(seed)
    nm = (
        np.cumsum(rng.normal(size=(T, P, 2)) * np.sqrt(2 * D * dt), axis=0)
        + rng.normal(size=(T, P, 2)) * sigma_nm
    )
    px_xy = nm / px + rng.uniform(50, 400, (1, P, 2)) + np.arange(T)[:, None, None] * np.asarray(drift_px)
    df = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(T), P),
            "particle": np.tile(np.arange(P), T),
            "x": px_xy[..., 0].ravel(),
            "y": px_xy[..., 1].ravel(),
        }
    )
    df = df.sample(frac=0.9, random_state=seed).sort_values(["frame", "particle"])
    df.attrs.update(pixel_size_nm=px, frame_interval_s=dt)
    return df


def test_summary_is_strict_json_with_stated_lags_and_units():
    df = brownian_df()
    st = compute_statistics(df)
    text = st.to_json()
    s = json.loads(text)  # allow_nan=False inside: any NaN would have raised
    assert s["units"] == {"length": "nm", "time": "s", "pixel_size_nm": 2.0, "frame_interval_s": 0.05}
    assert s["n_particles"] == 6 and len(s["particles"]) == 6
    p0 = s["particles"][0]
    for key in ("D_nm2_s", "D_err_nm2_s", "alpha", "alpha_err", "lag_min_s", "lag_max_s", "n_lags"):
        assert p0[key] is not None
    assert p0["lag_min_s"] == 0.05 and p0["lag_max_s"] <= 0.25 * 150 * 0.05 + 1e-12
    ens = s["ensemble"]
    # 6 particles x ~135 positions: ensemble D within 4 of its standard errors of the truth
    assert abs(ens["D_nm2_s"] - 30.0) < 4 * ens["D_err_nm2_s"]
    assert abs(ens["offset_nm2"] - 4 * 2.0**2) < 4 * ens["offset_err_nm2"]
    assert [d["lag"] for d in s["displacements"]] == [1, 4, 16]
    assert len(s["vacf"]["lag_s"]) == 20
    assert summarize(df) == s


def test_hdf5_round_trip():
    st = compute_statistics(brownian_df(1))
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        write_stats(f, st)
        write_stats(f, st)  # replaces
        g = f["stats"]
        assert set(g) == {"particles", "msd", "emsd", "displacements", "vacf"}
        assert g.attrs["pixel_size_nm"] == 2.0
        back = read_stats(g)
        plain = pd.DataFrame(g["emsd"][()])  # readable without samem
        with pytest.raises(SamemError, match="not a samem statistics group"):
            read_stats(f.create_group("other"))
    assert back.summary == json.loads(st.to_json())
    pd.testing.assert_frame_equal(back.emsd, st.emsd, check_dtype=False)
    np.testing.assert_allclose(plain["msd_nm2"], st.emsd["msd_nm2"])
    pd.testing.assert_frame_equal(
        back.particles.drop(columns="message"), st.particles.drop(columns="message")
    )


def test_drift_option_removes_directed_motion():
    df = brownian_df(2, P=10, drift_px=(0.8, -0.5))
    plain = compute_statistics(df, config={"max_lag": 40})
    fixed = compute_statistics(df, config={"max_lag": 40, "drift": {"subtract": True}})
    assert fixed.summary["drift_subtracted"] and not plain.summary["drift_subtracted"]
    assert plain.summary["ensemble"]["alpha"] > 1.5  # ballistic-looking without correction
    ens = fixed.summary["ensemble"]
    assert abs(ens["alpha"] - 1.0) < 4 * ens["alpha_err"]


def test_edge_cases_give_nulls_not_crashes():
    single = pd.DataFrame({"frame": [0, 3], "particle": [1, 2], "x": [1.0, 2.0], "y": [1.0, 2.0]})
    s = summarize(single, 1.0, 1.0)
    assert s["n_particles"] == 2 and s["ensemble"]["D_nm2_s"] is None and not s["ensemble"]["fit_ok"]
    assert "min_track_frames" in s["particles"][0]["message"]
    json.dumps(s, allow_nan=False)
    absent = single.assign(present=False)
    s = summarize(absent, 1.0, 1.0)
    assert s["n_particles"] == 0 and s["frames"] is None and s["particles"] == []
    json.dumps(s, allow_nan=False)
    nan_pos = single.assign(x=np.nan)
    assert summarize(nan_pos, 1.0, 1.0)["n_particles"] == 0
    with pytest.raises(SamemError, match="frame_interval_s"):
        summarize(single, 1.0, 0.0)
    with pytest.raises(SamemError, match="frame interval missing"):
        summarize(single, 1.0)
    with pytest.raises(SamemError, match="unknown"):
        summarize(single, 1.0, 1.0, config={"fit": {"bogus": 1}})


def test_particles_state_their_localisation_error_and_it_matches_the_fitted_offset():
    """``sigma_nm`` is the root mean square of a particle's estimated localisation errors
    (the tracker's ``sigma`` column, px) in nm; with positions that really carry that error,
    the alpha = 1 fit's offset agrees with 4 sigma² (ground truth: Gaussian error added to
    Brownian walks; no motion blur in these walks)."""
    sig_nm = np.array([0.0, 1.0, 3.0, 6.0])
    rng = np.random.default_rng(11)
    T, D, dt, px = 2000, 30.0, 0.05, 2.0
    rows = []
    for p, s in enumerate(sig_nm):
        walk = np.cumsum(rng.normal(size=(T, 2)) * np.sqrt(2 * D * dt), axis=0) + rng.normal(size=(T, 2)) * s
        rows.append(
            pd.DataFrame(
                {
                    "frame": np.arange(T),
                    "particle": p,
                    "x": walk[:, 0] / px,
                    "y": walk[:, 1] / px,
                    "sigma": s / px,
                }
            )
        )
    df = pd.concat(rows, ignore_index=True)
    df.attrs.update(pixel_size_nm=px, frame_interval_s=dt)
    st = compute_statistics(df)
    p = st.particles.set_index("particle")
    np.testing.assert_allclose(p["sigma_nm"].to_numpy(), sig_nm, rtol=1e-12)
    offset_sigma = np.sqrt(np.clip(p["offset_nm2"].to_numpy(), 0, None) / 4)
    np.testing.assert_allclose(offset_sigma[1:], sig_nm[1:], rtol=0.25)  # 2000 frames: within 25 %
    assert offset_sigma[0] < 0.6  # no error: the offset is compatible with zero
    assert st.summary["ensemble"]["sigma_nm"] == pytest.approx(np.sqrt(np.mean(sig_nm**2)))
    json.loads(st.to_json())


def test_unknown_localisation_errors_are_left_out_of_sigma_nm():
    """NaN or negative errors count as unknown; a particle with none known, and tables
    without the column, report NaN (null in JSON), never 0."""
    df = brownian_df(P=3, T=60)
    df["sigma"] = np.where(df["particle"] == 0, 0.5, np.nan)
    df.loc[(df["particle"] == 0) & (df["frame"] % 2 == 0), "sigma"] = -1.0  # unknown, not squared
    df.loc[(df["particle"] == 1) & (df["frame"] % 3 == 0), "sigma"] = 1.5
    p = compute_statistics(df).particles.set_index("particle")["sigma_nm"]
    assert p[0] == pytest.approx(0.5 * 2.0) and p[1] == pytest.approx(1.5 * 2.0) and np.isnan(p[2])
    bare = compute_statistics(df.drop(columns="sigma"))
    assert bare.particles["sigma_nm"].isna().all()
    s = json.loads(bare.to_json())
    assert s["ensemble"]["sigma_nm"] is None and all(r["sigma_nm"] is None for r in s["particles"])
