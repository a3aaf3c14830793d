import numpy as np
import pandas as pd
import pytest

from samem.eval.metrics import (
    boundary_f,
    centroid_errors,
    identity_metrics,
    iou,
    mask_scores,
    match_ids,
    presence_accuracy,
    present_when_gone,
    sigma_calibration,
)


def disc(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def test_iou_known_overlap():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :6] = True
    b[:, 4:] = True
    assert iou(a, b) == pytest.approx(20 / 100)
    assert iou(a, a) == 1.0
    assert iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    assert iou(a, np.zeros_like(a)) == 0.0


def test_boundary_f_tolerance():
    shape = (200, 200)  # diagonal 283 px -> tolerance ceil(2.26) = 3 px
    t = disc(shape, 100, 100, 30)
    assert boundary_f(t, t) == 1.0
    assert boundary_f(disc(shape, 102, 100, 30), t) == pytest.approx(1.0)  # 2 px shift: within tolerance
    shifted = boundary_f(disc(shape, 110, 100, 30), t)
    assert 0.1 < shifted < 0.7
    assert boundary_f(np.zeros(shape, bool), t) == 0.0


def test_mask_scores_and_matching():
    shape = (64, 64)
    truth = np.zeros(shape, np.uint16)
    pred = np.zeros(shape, np.uint16)
    truth[disc(shape, 20, 20, 6)] = 3
    truth[disc(shape, 45, 40, 8)] = 7
    pred[disc(shape, 20, 20, 6)] = 1
    pred[disc(shape, 46, 40, 8)] = 2
    pairs = match_ids(pred, truth)
    assert pairs == {3: 1, 7: 2}
    s = mask_scores(pred, truth, pairs).set_index("particle")
    assert s.loc[3, "J"] == 1.0 and s.loc[3, "F"] == 1.0
    assert 0.8 < s.loc[7, "J"] < 1.0


def _tracks(n_frames, swap_at=None):
    rows_t, rows_p = [], []
    for f in range(n_frames):
        for pid, (x, y) in {1: (10.0 + f, 10.0), 2: (50.0, 40.0 - f)}.items():
            rows_t.append((f, pid, x, y))
            qid = pid if swap_at is None or f < swap_at else 3 - pid
            rows_p.append((f, 10 + qid, x + 0.5, y - 0.5, True))
    return (
        pd.DataFrame(rows_t, columns=["frame", "particle", "x", "y"]),
        pd.DataFrame(rows_p, columns=["frame", "particle", "x", "y", "present"]),
    )


def test_identity_metrics_perfect_and_switch():
    t, p = _tracks(20)
    m = identity_metrics(t, p, max_dist_px=5)
    assert m["id_switches"] == 0 and m["mota"] == pytest.approx(1.0) and m["recall_mot"] == pytest.approx(1.0)
    t, p = _tracks(20, swap_at=10)
    m = identity_metrics(t, p, max_dist_px=5)
    assert m["id_switches"] == 2 and m["idf1"] < 0.75


def test_centroid_errors_pairs_and_absent():
    t, p = _tracks(5)
    p.loc[p["frame"] == 2, "present"] = False
    err = centroid_errors(t, p, {1: 11, 2: 12})
    assert len(err) == 8
    assert np.allclose(err, np.hypot(0.5, 0.5))


def test_present_when_gone_counts_frames_followed_out_of_view():
    # particle 1 leaves the field after frame 5 (frames 6-9 gone); particle 2 stays in view
    truth = pd.DataFrame(
        [(f, p, not (p == 1 and f > 5)) for f in range(10) for p in (1, 2)],
        columns=["frame", "particle", "visible"],
    )
    tracked = pd.DataFrame(
        [(f, p, float(f), 1.0, p == 2 or f <= 7) for f in range(10) for p in (1, 2)],
        columns=["frame", "particle", "x", "y", "present"],
    )
    assert present_when_gone(truth, tracked) == pytest.approx(2 / 4)  # frames 6, 7 of 6-9
    tracked.loc[tracked["particle"] == 1, "present"] = tracked["frame"] <= 5
    assert present_when_gone(truth, tracked) == 0.0
    assert np.isnan(present_when_gone(truth.assign(visible=True), tracked))


def test_presence_accuracy_counts_wrong_positions_and_gaps():
    # one particle, radius 10 px (area 100 pi), visible on frames 0-9, gone on 10-11
    t = pd.DataFrame(
        {
            "frame": range(12),
            "particle": 1,
            "x": 50.0,
            "y": 50.0,
            "visible": [True] * 10 + [False] * 2,
            "area_px": [100 * np.pi] * 12,
        }
    )
    # frames 0-5 right (off by 3 px), 6-7 absent (a gap), 8-9 wandered 25 px, 10-11 shown while gone
    x = [53.0] * 6 + [np.nan] * 2 + [75.0] * 2 + [50.0] * 2
    p = pd.DataFrame(
        {
            "frame": range(12),
            "particle": 1,
            "x": x,
            "y": 50.0,
            "present": [True] * 6 + [False] * 2 + [True] * 4,
        }
    )
    m = presence_accuracy(t, p)
    assert m["reported"] == 10 and m["wrong"] == 4
    assert m["wrong_while_present"] == pytest.approx(0.4)
    assert m["coverage"] == pytest.approx(6 / 10)
    assert m["wrong_per_particle"]["1"] == pytest.approx(0.4)
    # a gap instead of the wandering frames: coverage unchanged, nothing wrong while present
    p.loc[8:11, "present"] = False
    m = presence_accuracy(t, p)
    assert m["wrong_while_present"] == 0 and m["coverage"] == pytest.approx(0.6)


def test_presence_accuracy_radius_is_the_equivalent_radius():
    t = pd.DataFrame(
        {"frame": [0, 1], "particle": 2, "x": 0.0, "y": 0.0, "visible": True, "area_px": 400 * np.pi}
    )
    p = pd.DataFrame({"frame": [0, 1], "particle": 2, "x": [19.9, 20.1], "y": 0.0, "present": True})
    m = presence_accuracy(t, p)  # radius 20 px: 19.9 px is right, 20.1 px wrong
    assert m["wrong"] == 1 and m["coverage"] == pytest.approx(0.5)


def test_presence_accuracy_scores_only_evaluated_frames():
    t = pd.DataFrame({"frame": [1, 2], "particle": 1, "x": 0.0, "y": 0.0, "visible": True, "area_px": 100.0})
    p = pd.DataFrame({"frame": [0, 1, 2], "particle": 1, "x": 0.0, "y": 0.0, "present": True})
    m = presence_accuracy(t, p)  # frame 0 (the prompt frame) is not in the truth: not scored
    assert m["reported"] == 2 and m["wrong"] == 0 and m["coverage"] == 1.0


def test_presence_accuracy_leaves_out_partly_visible_frames():
    t = pd.DataFrame(
        {"frame": [1, 2, 3], "particle": 1, "x": [5.0, -3.0, -30.0], "y": 0.0, "area_px": 100.0}
    ).assign(visible=[True, True, False], inside=[True, False, False])
    p = pd.DataFrame({"frame": [1, 2, 3], "particle": 1, "x": [5.0, 4.0, 2.0], "y": 0.0, "present": True})
    m = presence_accuracy(t, p)  # frame 2: centre off the field, not scored; frame 3: gone, wrong
    assert m["partial"] == 1 and m["reported"] == 2 and m["wrong"] == 1 and m["coverage"] == 1.0


def test_sigma_calibration_recognises_an_honest_estimate():
    rng = np.random.default_rng(7)
    sig = rng.uniform(0.5, 4.0, 20000)
    err = np.hypot(rng.normal(0, sig), rng.normal(0, sig))
    honest = sigma_calibration(err, sig)
    assert honest["sigma_within_95"] == pytest.approx(0.95, abs=0.01)
    assert honest["sigma_ratio"] == pytest.approx(1.0, abs=0.03)
    bold = sigma_calibration(err, sig / 2)  # claims twice the precision it has
    assert bold["sigma_within_95"] < 0.6 and bold["sigma_ratio"] == pytest.approx(2.0, abs=0.1)
    assert np.isnan(sigma_calibration(err, np.full_like(err, np.nan))["sigma_ratio"])
