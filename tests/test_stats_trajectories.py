"""TrajectoryBuilder, mask shape, trackpy linking, drift and unit conversion."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.stats import (
    TrajectoryBuilder,
    compute_drift,
    link_detections,
    mask_shape,
    subtract_drift,
    to_physical,
)
from samem.stats.trajectories import frame_rows


def ellipse_mask(shape, centre, axes, angle_deg):
    """Pixels whose centres lie inside an ellipse (full axes, angle from +x towards +y)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    t = np.deg2rad(angle_deg)
    u = (xx - centre[0]) * np.cos(t) + (yy - centre[1]) * np.sin(t)
    v = -(xx - centre[0]) * np.sin(t) + (yy - centre[1]) * np.cos(t)
    return (u / (axes[0] / 2)) ** 2 + (v / (axes[1] / 2)) ** 2 <= 1


@pytest.mark.parametrize("angle", [0.0, 30.0, -60.0, 90.0])
def test_mask_shape_of_ellipse(angle):
    a, b = 60.0, 20.0  # full axes, px
    m = ellipse_mask((200, 240), (120.0, 100.0), (a, b), angle)
    area, orient, ecc = mask_shape(m)
    assert area == m.sum()
    assert area == pytest.approx(np.pi * a * b / 4, rel=0.03)
    assert ecc == pytest.approx(np.sqrt(1 - (b / a) ** 2), abs=0.01)
    # orientation is an axis: compare modulo pi
    diff = (orient - np.deg2rad(angle) + np.pi / 2) % np.pi - np.pi / 2
    assert abs(diff) < np.deg2rad(1.0)
    ys, xs = np.nonzero(m)
    box = (xs.min(), ys.min(), xs.max(), ys.max())
    assert mask_shape(m, box) == pytest.approx((area, orient, ecc))


def test_mask_shape_empty_and_round():
    assert mask_shape(np.zeros((10, 10), bool))[0] == 0
    assert np.isnan(mask_shape(np.zeros((10, 10), bool))[2])
    disk = ellipse_mask((64, 64), (32.0, 32.0), (40.0, 40.0), 0.0)
    assert mask_shape(disk)[2] < 0.15


def result(mask, x, y, present=True, score=0.9):
    ys, xs = np.nonzero(mask) if mask.any() else ([0], [0])
    return SimpleNamespace(
        mask=mask, score=score, present=present, centroid=(x, y), bbox=(min(xs), min(ys), max(xs), max(ys))
    )


def test_builder_rows_gaps_and_units():
    b = TrajectoryBuilder(pixel_size_nm=0.8, frame_interval_s=0.04)
    m1 = ellipse_mask((50, 60), (20.0, 25.0), (16.0, 8.0), 45.0)
    m2 = ellipse_mask((50, 60), (40.0, 10.0), (6.0, 6.0), 0.0)
    pos0 = b.add(0, {1: result(m1, 20.0, 25.0), 2: result(m2, 40.0, 10.0)})
    pos1 = b.add(1, {1: result(m1, 21.0, 25.5, present=False, score=0.1), 2: result(m2, 40.5, 10.0)})
    b.add(2, {1: result(m1, 22.0, 26.0), 2: result(m2, np.nan, np.nan)})
    assert pos0 == {1: (20.0, 25.0), 2: (40.0, 10.0)} and pos1 == {2: (40.5, 10.0)}
    df = b.table()
    assert list(df.columns) == [
        "frame",
        "particle",
        "x",
        "y",
        "area",
        "orientation",
        "eccentricity",
        "score",
        "present",
        "edge",
        "sigma",
    ]
    assert df.attrs == {"pixel_size_nm": 0.8, "frame_interval_s": 0.04}
    assert df["sigma"].isna().all()  # results without a localisation error estimate
    assert df["particle"].dtype == np.int64 and df["present"].dtype == bool
    lost = df[(df.frame == 1) & (df.particle == 1)].iloc[0]
    assert not lost.present and np.isnan(lost.x) and lost.area == 0 and lost.score == pytest.approx(0.1)
    back = df[(df.frame == 2) & (df.particle == 1)].iloc[0]
    assert back.present and back.x == 22.0  # same id after the loss
    assert not df[(df.frame == 2) & (df.particle == 2)].iloc[0].present  # no finite centroid -> absent
    first = df.iloc[0]
    assert first.area == m1.sum() and first.eccentricity > 0.8
    with pytest.raises(SamemError, match="increase"):
        b.add(2, {})
    with pytest.raises(SamemError, match="attribute"):
        b.add(3, {1: SimpleNamespace(present=True)})
    with pytest.raises(SamemError, match="pixel_size_nm"):
        TrajectoryBuilder(0, 1.0)


def test_frame_rows_sigma_column_and_cut():
    m = ellipse_mask((50, 60), (20.0, 25.0), (6.0, 6.0), 0.0)
    precise = SimpleNamespace(**vars(result(m, 20.0, 25.0)), sigma=0.4)
    vague = SimpleNamespace(**vars(result(m, 30.0, 25.0)), sigma=3.0)
    unknown = result(m, 40.0, 25.0)  # no sigma attribute: NaN, and kept
    gone = SimpleNamespace(**vars(result(m, 1.0, 1.0, present=False)), sigma=0.1)
    results = {1: precise, 2: vague, 3: unknown, 4: gone}
    rows, positions = frame_rows(5, results)
    assert [r[-1] for r in rows[:2]] == [0.4, 3.0] and np.isnan(rows[2][-1])
    assert np.isnan(rows[3][-1])  # an absent object has no error estimate
    assert set(positions) == {1, 2, 3}
    _, cut = frame_rows(5, results, max_sigma_px=1.0)
    assert set(cut) == {1, 3}  # the vague position stays in the table, out of the statistics


def test_statistics_leave_out_positions_less_precise_than_max_sigma_nm():
    """Rows whose ``sigma`` (px) times the pixel size exceeds ``max_sigma_nm`` are left out of
    the statistics; rows without an estimate, and every row by default, are kept."""
    from samem.stats import compute_statistics

    rng = np.random.default_rng(3)
    n = 60
    frames = np.arange(n)
    rows = []
    for pid, sig in ((1, 0.2), (2, 6.0), (3, np.nan)):
        walk = np.cumsum(rng.normal(0, 1.0, (n, 2)), axis=0) + 100 * pid
        rows.append(
            pd.DataFrame({"frame": frames, "particle": pid, "x": walk[:, 0], "y": walk[:, 1], "sigma": sig})
        )
    df = pd.concat(rows, ignore_index=True)
    df.attrs.update({"pixel_size_nm": 0.5, "frame_interval_s": 0.05})
    everyone = set(compute_statistics(df).particles["particle"])
    assert everyone == {1, 2, 3}
    cut = compute_statistics(df, config={"max_sigma_nm": 1.0})  # 6 px x 0.5 nm/px = 3 nm > 1 nm
    assert set(cut.particles["particle"]) == {1, 3}
    same = compute_statistics(df[df.particle != 2]).particles
    pd.testing.assert_frame_equal(cut.particles.reset_index(drop=True), same.reset_index(drop=True))
    assert set(compute_statistics(df, config={"max_sigma_nm": 4.0}).particles["particle"]) == everyone
    for bad in (0, -1.0, "big", float("nan")):
        with pytest.raises(SamemError, match="max_sigma_nm"):
            compute_statistics(df, config={"max_sigma_nm": bad})


def test_to_physical():
    df = pd.DataFrame(
        {"frame": [0, 2], "particle": [1, 1], "x": [1.0, 2.0], "y": [3.0, 4.0], "area": [10, 12]}
    )
    df.attrs.update(pixel_size_nm=0.5, frame_interval_s=0.1)
    out = to_physical(df)
    assert out["t_s"].tolist() == [0.0, 0.2] and out["x_nm"].tolist() == [0.5, 1.0]
    assert out["area_nm2"].tolist() == [2.5, 3.0]
    with pytest.raises(SamemError, match="frame_interval_s"):
        to_physical(df, frame_interval_s=0.0)
    bare = df.copy()
    bare.attrs = {}
    with pytest.raises(SamemError, match="pixel size missing"):
        to_physical(bare)


def test_link_detections_memory_and_predictor():
    rng = np.random.default_rng(31)
    rows = []
    starts = np.array([[20.0, 20.0], [80.0, 30.0], [50.0, 90.0]])
    for f in range(30):
        for p in range(3):
            if p == 1 and 10 <= f < 12:
                continue  # detector misses particle 1 for two frames
            xy = starts[p] + [1.5 * f, 0.5 * f] + rng.normal(size=2) * 0.2
            rows.append((f, xy[0], xy[1], p))
    feats = pd.DataFrame(rows, columns=["frame", "x", "y", "truth"])
    feats.attrs.update(pixel_size_nm=1.0, frame_interval_s=1.0)
    # particles move 1.6 px/frame: 3 px links consecutive frames but not across the 3-frame gap ...
    plain = link_detections(feats, search_range_px=3.0, memory_frames=3)
    assert plain.attrs == feats.attrs
    assert plain.groupby("truth")["particle"].nunique().tolist() == [1, 2, 1]
    # ... unless a trackpy predictor extrapolates the motion; memory then keeps the id through the gap
    for predictor in ("nearest_velocity", "drift"):
        linked = link_detections(feats, search_range_px=3.0, memory_frames=3, predictor=predictor)
        assert linked.groupby("truth")["particle"].nunique().tolist() == [1, 1, 1]
        assert linked.groupby("particle")["truth"].nunique().max() == 1
    wide = link_detections(feats, search_range_px=6.0, memory_frames=3)
    assert wide.groupby("truth")["particle"].nunique().tolist() == [1, 1, 1]
    no_memory = link_detections(feats, search_range_px=6.0, memory_frames=0)
    assert no_memory[no_memory.truth == 1]["particle"].nunique() == 2
    with pytest.raises(SamemError, match="predictor"):
        link_detections(feats, 5.0, predictor="kalman")
    with pytest.raises(SamemError, match="search_range_px"):
        link_detections(feats, -1.0)


def test_drift_estimated_and_removed():
    rng = np.random.default_rng(32)
    T, P = 200, 15
    drift = np.cumsum(np.tile([0.3, -0.2], (T, 1)) + 0.05 * np.sin(np.arange(T))[:, None], axis=0)
    walk = np.cumsum(rng.normal(size=(T, P, 2)) * 0.5, axis=0)
    xy = walk + drift[:, None, :] + rng.uniform(0, 300, (1, P, 2))
    df = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(T), P),
            "particle": np.tile(np.arange(P), T),
            "x": xy[..., 0].ravel(),
            "y": xy[..., 1].ravel(),
            "present": True,
        }
    )
    df.loc[df.sample(frac=0.05, random_state=1).index, "present"] = False
    df.attrs.update(pixel_size_nm=1.0, frame_interval_s=1.0)
    est = compute_drift(df)
    truth = drift[est.index] - drift[0]
    # each step is the mean of ~14 displacements (sd 0.5·√2/√14 per axis); the sum over t steps grows as √t
    tol = 4 * 0.5 * np.sqrt(2 / 14) * np.sqrt(est.index.to_numpy())[:, None]
    assert np.all(np.abs(est[["x", "y"]].to_numpy() - truth) < tol)
    out = subtract_drift(df)
    assert out.index.equals(df.index) and out.attrs == df.attrs
    step = out[out.present].sort_values(["particle", "frame"]).groupby("particle")[["x", "y"]].diff().mean()
    assert np.all(np.abs(step.to_numpy()) < 0.05)
    before = df[df.present].sort_values(["particle", "frame"]).groupby("particle")[["x", "y"]].diff().mean()
    assert before.to_numpy() == pytest.approx([0.3, -0.2], abs=0.05)


def test_rows_cut_by_the_frame_border_are_flagged_and_can_be_left_out_of_statistics():
    """A particle leaving through the border: its mask centroid is pulled inside while it is
    cut (the ``edge`` rows). With ``exclude_edge`` positions for live statistics skip those
    rows and the MSD of the table equals that of the same table without them; by default
    they are used like any other row."""
    from samem.stats import compute_statistics
    from samem.stats.trajectories import touches_border

    shape, r = (60, 80), 6.0
    b = TrajectoryBuilder(pixel_size_nm=1.0, frame_interval_s=0.1, exclude_edge=True)
    rng = np.random.default_rng(0)
    still = (40.0, 30.0)
    x = 30.0
    for t in range(40):
        x += 1.5 + rng.normal(0, 0.8)  # drifts right, out of the 80 px field
        m_out = ellipse_mask(shape, (x, 20.0), (2 * r, 2 * r), 0.0)
        m_in = ellipse_mask(shape, still, (2 * r, 2 * r), 0.0)
        res = {1: result(m_in, *still)}
        if m_out.any():
            ys, xs = np.nonzero(m_out)
            res[2] = result(m_out, float(xs.mean()), float(ys.mean()))  # centroid of the visible part
        pos = b.add(t, res)
        assert (2 in pos) == (2 in res and not touches_border(m_out))
    df = b.table()
    cut = df[df.edge]
    assert len(cut) > 3 and set(cut.particle) == {2} and cut.present.all() and cut.x.notna().all()
    assert not touches_border(ellipse_mask(shape, still, (2 * r, 2 * r), 0.0))
    with_flag = compute_statistics(df, config={"exclude_edge": True}).msd
    without = compute_statistics(df[~df.edge].drop(columns="edge")).msd
    pd.testing.assert_frame_equal(with_flag.reset_index(drop=True), without.reset_index(drop=True))
    ignored = compute_statistics(df.drop(columns="edge")).msd  # what the biased rows do
    assert not with_flag.equals(ignored)
    pd.testing.assert_frame_equal(compute_statistics(df).msd, ignored)  # the default keeps them
    at_border = np.zeros(shape, bool)
    at_border[20:30, :4] = True
    rows, kept = frame_rows(0, {2: result(at_border, 1.5, 24.5)})
    assert rows[0][-2] is True and 2 in kept  # flagged; without exclude_edge live positions keep it
    assert 2 not in frame_rows(0, {2: result(at_border, 1.5, 24.5)}, exclude_edge=True)[1]
    with pytest.raises(SamemError, match="exclude_edge"):
        compute_statistics(df, config={"exclude_edge": "yes"})
