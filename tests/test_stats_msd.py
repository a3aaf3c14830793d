"""Batch MSD: equality with trackpy, exact gap handling, units, SE, and edge cases."""

import numpy as np
import pandas as pd
import pytest
import trackpy

from samem.errors import SamemError
from samem.stats import emsd, ensemble_msd, imsd
from samem.stats.sums import lag_sums


def random_tracks(seed, n_particles=12, max_len=150, gap_prob=0.2, offset=500.0, drift=(0.0, 0.0)):
    """Brownian tracks (1 px² per step per axis) of random lengths and starts, some with gaps."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_particles):
        n = int(rng.integers(1, max_len))
        start = int(rng.integers(0, 40))
        xy = np.cumsum(rng.normal(size=(n, 2)) + np.asarray(drift), axis=0) + rng.uniform(0, offset, 2)
        keep = rng.random(n) > gap_prob if p % 2 else np.ones(n, bool)
        keep[0] = True
        for i in np.flatnonzero(keep):
            rows.append((start + i, 3 * p + 1, xy[i, 0], xy[i, 1]))
    return pd.DataFrame(rows, columns=["frame", "particle", "x", "y"])


def naive_msd(df, max_lag):
    """Per-particle MSD by explicit pair search (the definition), px²."""
    out = {}
    for pid, g in df.groupby("particle"):
        pos = dict(zip(g["frame"], g[["x", "y"]].to_numpy()))
        vals = []
        for k in range(1, max_lag + 1):
            d = [np.sum((pos[f + k] - pos[f]) ** 2) for f in pos if f + k in pos]
            vals.append(np.mean(d) if d else np.nan)
        out[pid] = np.array(vals)
    return out


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
def test_imsd_matches_trackpy_and_definition(method):
    df = random_tracks(1)
    mine = imsd(df, 0.1, 20.0, max_lagtime=40, method=method)
    ref = trackpy.imsd(df, 0.1, 20.0, max_lagtime=40)
    assert mine.shape == ref.shape
    assert mine.index.name == ref.index.name == "lag time [s]"
    assert list(mine.columns) == list(ref.columns)
    np.testing.assert_allclose(mine.index, ref.index, rtol=1e-15)
    # trackpy's own FFT path loses ~1e-8 on positions ~500 px; the definition is matched to 1e-12
    np.testing.assert_allclose(mine.to_numpy(), ref.to_numpy(), rtol=1e-7, equal_nan=True)
    exact = naive_msd(df, 40)
    for pid in mine.columns:
        col = mine[pid].to_numpy()
        np.testing.assert_allclose(col, exact[pid][: len(col)] * 0.01, rtol=1e-12, equal_nan=True)


def test_emsd_matches_trackpy_weighting():
    df = random_tracks(2)
    mine = emsd(df, 0.1, 20.0, max_lagtime=40)
    ref = trackpy.emsd(df, 0.1, 20.0, max_lagtime=40)
    assert isinstance(mine, pd.Series) and mine.name == ref.name == "msd"
    assert mine.index.name == ref.index.name == "lagt"
    np.testing.assert_allclose(mine.index, ref.index, rtol=1e-12)
    np.testing.assert_allclose(mine.to_numpy(), ref.to_numpy(), rtol=1e-7)
    # detail=True on gapless tracks (trackpy's detailed means are skewed by gaps, see emsd docstring)
    gapless = random_tracks(3, gap_prob=0.0)
    d_mine = emsd(gapless, 0.1, 20.0, max_lagtime=30, detail=True)
    d_ref = trackpy.emsd(gapless, 0.1, 20.0, max_lagtime=30, detail=True)
    assert d_mine.index.name == d_ref.index.name
    assert list(d_mine.columns) == list(d_ref.columns)
    np.testing.assert_allclose(d_mine.to_numpy(), d_ref.to_numpy(), rtol=1e-7, atol=1e-12)


def test_fft_path_is_exact_for_directed_long_track():
    rng = np.random.default_rng(4)
    n = 6000
    xy = np.cumsum(rng.normal(size=(n, 2)) * 0.5 + [1.0, 0.4], axis=0) + 800
    keep = rng.random(n) > 0.05
    df = pd.DataFrame({"frame": np.arange(n)[keep], "particle": 7, "x": xy[keep, 0], "y": xy[keep, 1]})
    a = lag_sums(df, 64, method="direct", quartic_lags=(), vacf_lags=0)
    b = lag_sums(df, 64, method="fft", quartic_lags=(), vacf_lags=0)
    np.testing.assert_array_equal(a.n, b.n)
    np.testing.assert_allclose(b.s2, a.s2, rtol=1e-10)
    np.testing.assert_allclose(b.s1, a.s1, rtol=1e-9, atol=1e-6)


def test_units_nm_from_attrs_and_keywords():
    df = random_tracks(5)
    df.attrs.update(pixel_size_nm=2.0, frame_interval_s=0.05)
    um = imsd(df, mpp=0.002, fps=20.0, max_lagtime=10)
    nm = imsd(df, max_lagtime=10)  # from attrs
    nm_kw = imsd(df, max_lagtime=10, pixel_size_nm=2.0, frame_interval_s=0.05)
    np.testing.assert_allclose(nm.to_numpy(), um.to_numpy() * 1e6, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(nm_kw.to_numpy(), nm.to_numpy(), rtol=0, equal_nan=True)
    np.testing.assert_allclose(nm.index, np.arange(1, 11) * 0.05, rtol=1e-15)


def test_absent_rows_and_nan_positions_are_gaps():
    df = random_tracks(6, gap_prob=0.0)
    ref = imsd(df, 1.0, 1.0, max_lagtime=20)
    noisy = df.copy()
    noisy["present"] = True
    extra = noisy.iloc[::7].copy()
    extra["frame"] += 1000
    extra["present"] = False  # absent rows far away must be ignored
    nan_rows = noisy.iloc[::5].copy()
    nan_rows["frame"] += 2000
    nan_rows[["x", "y"]] = np.nan
    got = imsd(pd.concat([noisy, extra, nan_rows]), 1.0, 1.0, max_lagtime=20)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, equal_nan=True)


def test_ensemble_sem_matches_spread_between_repeats():
    """The reported SE equals the scatter of the ensemble MSD over independent repeats."""
    est, sem = [], []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        n, P = 60, 15
        xy = np.cumsum(rng.normal(size=(P, n, 2)), axis=1)
        df = pd.DataFrame(
            {
                "frame": np.tile(np.arange(n), P),
                "particle": np.repeat(np.arange(P), n),
                "x": xy[..., 0].ravel(),
                "y": xy[..., 1].ravel(),
            }
        )
        e = ensemble_msd(df, 1.0, 1.0, max_lag=5)
        est.append(e["msd_nm2"].to_numpy())
        sem.append(e["sem_nm2"].to_numpy())
    est, sem = np.array(est), np.array(sem)
    np.testing.assert_allclose(est.mean(axis=0), 2 * np.arange(1, 6), rtol=0.05)  # 4 D t, D = 0.5 px²/frame
    ratio = est.std(axis=0, ddof=1) / np.sqrt(np.mean(sem**2, axis=0))
    # with 40 repeats the sample std is within ~±25 % (4σ) of the truth
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio


def test_edge_cases():
    single = pd.DataFrame({"frame": [0, 5, 9], "particle": [1, 2, 3], "x": [1.0, 2, 3], "y": [1.0, 2, 3]})
    out = imsd(single, 1.0, 1.0)
    assert out.shape == (0, 3) and out.index.name == "lag time [s]"
    assert len(emsd(single, 1.0, 1.0)) == 0
    absent = single.assign(present=False)
    assert imsd(absent, 1.0, 1.0).shape == (0, 0)
    assert len(ensemble_msd(absent, 1.0, 1.0)) == 0
    # a particle seen only at frames 0 and 200 has no pairs within 100 lags: NaN, and drops out of emsd
    far = pd.DataFrame(
        {
            "frame": [0, 200, 0, 1, 2],
            "particle": [1, 1, 2, 2, 2],
            "x": [0.0, 5, 0, 1, 2],
            "y": [0.0, 0, 0, 0, 0],
        }
    )
    m = imsd(far, 1.0, 1.0)
    assert m[1].isna().all() and m[2].iloc[0] == 1.0
    np.testing.assert_allclose(emsd(far, 1.0, 1.0).iloc[:2], [1.0, 4.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mpp": 0.1, "fps": 0.0}, "fps"),
        ({"mpp": 0.1}, "frame interval missing"),
        ({"pixel_size_nm": 1.0, "frame_interval_s": float("nan")}, "frame_interval_s"),
        ({"pixel_size_nm": -1.0, "frame_interval_s": 1.0}, "pixel_size_nm"),
        ({"mpp": 0.1, "pixel_size_nm": 1.0, "fps": 1.0}, "not both"),
        ({"mpp": 0.1, "fps": 1.0, "max_lagtime": 0}, "max_lagtime"),
        ({"mpp": 0.1, "fps": 1.0, "max_lagtime": 2.5}, "max_lagtime"),
    ],
)
def test_bad_units_raise(kwargs, match):
    with pytest.raises(SamemError, match=match):
        imsd(random_tracks(7, n_particles=2), **kwargs)


def test_bad_tables_raise():
    df = random_tracks(8, n_particles=2)
    with pytest.raises(SamemError, match="lacks column"):
        imsd(df.drop(columns="particle"), 1.0, 1.0)
    with pytest.raises(SamemError, match="more than one row"):
        imsd(pd.concat([df, df.iloc[:1]]), 1.0, 1.0)
    with pytest.raises(SamemError, match="whole frame"):
        imsd(df.assign(frame=df["frame"] + 0.5), 1.0, 1.0)
    with pytest.raises(SamemError, match="statistic"):
        imsd(df, 1.0, 1.0, statistic="bogus")
