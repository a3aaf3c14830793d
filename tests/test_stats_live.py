"""LiveStats equals the batch computation after every frame; bounded per-frame state."""

import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.stats import LiveStats, emsd, ensemble_msd, imsd
from samem.stats.summary import compute_statistics
from samem.stats.vacf import vacf
from samem.stats.vanhove import non_gaussian


def _scenario(seed, T=110, P=10):
    """Random walks that appear, disappear, return (same id) and have random gaps."""
    rng = np.random.default_rng(seed)
    present = np.zeros((T, P), bool)
    for p in range(P):
        for _ in range(rng.integers(1, 3)):  # one or two visits
            a = int(rng.integers(0, T))
            b = int(rng.integers(a, T + 1))
            present[a:b, p] = rng.random(b - a) > 0.3
    xy = np.cumsum(rng.normal(size=(T, P, 2)), axis=0) + rng.uniform(100, 900, (1, P, 2))
    return present, xy


def _relclose(a, b, rtol=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = np.isfinite(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=1e-12 * np.max(np.abs(b[ok]), initial=1.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_live_equals_batch_after_every_frame(seed):
    present, xy = _scenario(seed)
    T, P = present.shape
    L = 12
    live = LiveStats(pixel_size_nm=1.5, frame_interval_s=0.04, max_lagtime=L)
    rows = []
    for f in range(T):
        pos = {p: tuple(xy[f, p]) for p in range(P) if present[f, p]}
        if f % 5 == 0:
            pos[P] = None  # an announced but absent object
            pos[P + 1] = (np.nan, np.nan)
        live.update(f, pos)
        rows += [(f, p, *v) for p, v in pos.items() if v is not None and np.isfinite(v[0])]
        df = pd.DataFrame(rows, columns=["frame", "particle", "x", "y"])
        df.attrs.update(pixel_size_nm=1.5, frame_interval_s=0.04)
        if len(df) == 0:
            assert live.imsd().shape == (0, 0)
            continue
        a, b = live.imsd(), imsd(df, max_lagtime=L)
        assert list(a.columns) == list(b.columns) and a.index.equals(b.index)
        _relclose(a, b)
        a, b = live.emsd(), emsd(df, max_lagtime=L)
        assert a.index.equals(b.index)
        _relclose(a, b)
        _relclose(live.ensemble_msd(), ensemble_msd(df, max_lag=L))
        if f == T - 1:  # the FFT path agrees too (round-off ~1e-13)
            _relclose(live.imsd(), imsd(df, max_lagtime=L, method="fft"))
        if f % 20 == 19:
            _relclose(live.vacf(6).drop(columns="n_pairs"), vacf(df, max_lag=6).drop(columns="n_pairs"))
            _relclose(live.displacement_moments([1, 3]), non_gaussian(df, [1, 3]))


def test_live_statistics_equal_batch_summary():
    present, xy = _scenario(3, T=200, P=6)
    live = LiveStats(pixel_size_nm=2.0, frame_interval_s=0.1, max_lagtime=30)
    rows = []
    for f in range(present.shape[0]):
        pos = {p: tuple(xy[f, p]) for p in range(present.shape[1]) if present[f, p]}
        live.update(f, pos)
        rows += [(f, p, *v) for p, v in pos.items()]
    df = pd.DataFrame(rows, columns=["frame", "particle", "x", "y"])
    cfg = {"max_lag": 30, "vacf": {"max_lag": 8}, "vanhove": {"lags": [1, 5]}}
    batch = compute_statistics(df, 2.0, 0.1, cfg)
    assert live.statistics(cfg).to_json() == batch.to_json()


def test_state_is_bounded_and_update_cost_independent_of_history():
    live = LiveStats(pixel_size_nm=1.0, frame_interval_s=1.0, max_lagtime=8)
    rng = np.random.default_rng(0)
    for f in range(500):
        live.update(f, {i: tuple(rng.normal(size=2)) for i in range(3)})
    shapes = {k: getattr(live, k).shape for k in ("_pos", "_vel", "_n", "_s2")}
    for f in range(500, 3000):
        live.update(f, {i: tuple(rng.normal(size=2)) for i in range(3)})
    assert shapes == {k: getattr(live, k).shape for k in ("_pos", "_vel", "_n", "_s2")}
    assert shapes["_pos"][1] == 9  # ring buffer of max_lag + 1 positions per particle
    assert live.n_frames == 3000 and live.particles == [0, 1, 2]


def test_live_trackpy_units_and_errors():
    live = LiveStats(0.002, 25.0, 5)  # mpp µm/px, fps, max_lagtime: MSD in µm²
    live.update(0, {"a": (0.0, 0.0)})
    live.update(1, {"a": (3.0, 4.0)})
    assert live.imsd()["a"].iloc[0] == pytest.approx(25 * 0.002**2)
    assert live.imsd().index[0] == pytest.approx(1 / 25.0)
    with pytest.raises(SamemError, match="increase"):
        live.update(1, {})
    with pytest.raises(SamemError, match="2 values"):
        live.update(2, {"a": (1.0, 2.0, 3.0)})
    with pytest.raises(SamemError, match="map"):
        live.update(3, [(1.0, 2.0)])
    with pytest.raises(SamemError, match="frame interval"):
        LiveStats(pixel_size_nm=1.0)
    with pytest.raises(SamemError, match="frame_interval_s"):
        LiveStats(pixel_size_nm=1.0, frame_interval_s=0)


def test_live_localisation_error_equals_batch():
    """``LiveStats.update(..., sigmas)`` gives the particles table's ``sigma_nm`` exactly as the
    batch statistics of the same table with a ``sigma`` column; bad input is an error."""
    rng = np.random.default_rng(5)
    rows = []
    for f in range(80):
        for p in range(3):
            if rng.random() < 0.2:
                continue
            s = np.nan if (p == 2 or f % 5 == 0) else rng.uniform(0.2, 3.0)
            rows.append((f, p, 50 * p + rng.normal(0, 2), 30 + rng.normal(0, 2), s))
    df = pd.DataFrame(rows, columns=["frame", "particle", "x", "y", "sigma"])
    live = LiveStats(pixel_size_nm=0.5, frame_interval_s=0.05, max_lagtime=20)
    for f, g in df.groupby("frame"):
        live.update(
            f, {r.particle: (r.x, r.y) for r in g.itertuples()}, {r.particle: r.sigma for r in g.itertuples()}
        )
    got = live.statistics().particles["sigma_nm"].to_numpy()
    want = compute_statistics(df, 0.5, 0.05, {"max_lag": 20}).particles["sigma_nm"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(got[2]) and np.all(np.isfinite(got[:2]))
    with pytest.raises(SamemError, match="sigmas must map"):
        live.update(100, {0: (1.0, 2.0)}, [0.5])
