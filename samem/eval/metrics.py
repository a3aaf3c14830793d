"""Accuracy of tracked masks and trajectories against ground truth.

Mask metrics follow the DAVIS benchmark: region similarity J (intersection over union)
and boundary accuracy F (F-measure of boundary pixels matched within a tolerance of
0.008 x the image diagonal); an object absent in both truth and prediction scores 1.
Identity metrics (MOTA, IDF1, ID switches) come from ``motmetrics`` on centroids.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pandas as pd

#: DAVIS boundary tolerance as a fraction of the image diagonal
BOUNDARY_TOLERANCE = 0.008


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    union = np.count_nonzero(pred | truth)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & truth) / union


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide inner boundary of a boolean mask."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (m - eroded).astype(bool)


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """DAVIS boundary F-measure of two boolean masks of the same shape.

    Parameters
    ----------
    pred, truth : ndarray of bool, shape (H, W)
    tolerance : float
        Matching distance as a fraction of the image diagonal (pixels = ceil(tol * diag)).
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    bp, bt = _boundary(pred), _boundary(truth)
    n_p, n_t = np.count_nonzero(bp), np.count_nonzero(bt)
    if n_p == 0 and n_t == 0:
        return 1.0
    if n_p == 0 or n_t == 0:
        return 0.0
    radius = max(1, math.ceil(tolerance * math.hypot(*pred.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    bt_dil = cv2.dilate(bt.astype(np.uint8), disk).astype(bool)
    bp_dil = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(bp & bt_dil) / n_p
    recall = np.count_nonzero(bt & bp_dil) / n_t
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def mask_scores(pred_labels: np.ndarray, truth_labels: np.ndarray, pairs: dict[int, int]) -> pd.DataFrame:
    """Per-object J and F on one frame.

    Parameters
    ----------
    pred_labels, truth_labels : ndarray of int, shape (H, W)
        Instance label images (0 = background).
    pairs : dict
        Truth particle id -> predicted object id.

    Returns
    -------
    DataFrame with columns particle, J, F.
    """
    rows = []
    for truth_id, pred_id in pairs.items():
        t = truth_labels == truth_id
        p = pred_labels == pred_id
        rows.append((truth_id, iou(p, t), boundary_f(p, t)))
    return pd.DataFrame(rows, columns=["particle", "J", "F"])


def match_ids(pred_labels: np.ndarray, truth_labels: np.ndarray) -> dict[int, int]:
    """Truth id -> predicted id with the largest overlap (on a prompt frame), or 0 when none overlaps."""
    out = {}
    for truth_id in np.unique(truth_labels):
        if truth_id == 0:
            continue
        under = pred_labels[truth_labels == truth_id]
        under = under[under > 0]
        out[int(truth_id)] = int(np.bincount(under).argmax()) if under.size else 0
    return out


def identity_metrics(truth: pd.DataFrame, tracked: pd.DataFrame, max_dist_px: float) -> dict[str, float]:
    """MOTA, IDF1, ID switches and recall of tracked centroids against truth centroids.

    Parameters
    ----------
    truth, tracked : DataFrame
        Columns frame, particle, x, y (pixels). Rows with NaN x/y (or ``present`` False in
        ``tracked``) count as no detection.
    max_dist_px : float
        A tracked centroid farther than this from a truth centroid cannot match it.
    """
    import motmetrics as mm

    if "present" in tracked:
        tracked = tracked[tracked["present"].astype(bool)]
    tracked = tracked.dropna(subset=["x", "y"])
    truth = truth.dropna(subset=["x", "y"])
    acc = mm.MOTAccumulator(auto_id=False)
    tg = dict(tuple(truth.groupby("frame")))
    pg = dict(tuple(tracked.groupby("frame")))
    for frame in sorted(set(tg) | set(pg)):
        t = tg.get(frame, truth.iloc[:0])
        p = pg.get(frame, tracked.iloc[:0])
        d2 = mm.distances.norm2squared_matrix(
            t[["x", "y"]].to_numpy(float), p[["x", "y"]].to_numpy(float), max_d2=max_dist_px**2
        )
        acc.update(t["particle"].tolist(), p["particle"].tolist(), d2, frameid=int(frame))
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["mota", "idf1", "num_switches", "recall", "num_matches"], name="x")
    return {
        "mota": float(s["mota"].iloc[0]),
        "idf1": float(s["idf1"].iloc[0]),
        "id_switches": int(s["num_switches"].iloc[0]),
        "recall_mot": float(s["recall"].iloc[0]),
    }


def centroid_errors(truth: pd.DataFrame, tracked: pd.DataFrame, pairs: dict[int, int]) -> pd.Series:
    """Euclidean centroid error (pixels) for every (frame, truth particle) tracked as present.

    ``pairs`` maps truth particle id -> tracked particle id. Truth rows with an ``inside``
    column set False (particle partly outside the field) are skipped: their truth
    centre of mass is not visible in the image.
    """
    if "inside" in truth:
        truth = truth[truth["inside"].astype(bool)]
    if "present" in tracked:
        tracked = tracked[tracked["present"].astype(bool)]
    inv = {v: k for k, v in pairs.items() if v}
    tr = tracked[tracked["particle"].isin(inv)].assign(particle=lambda d: d["particle"].map(inv))
    m = truth.merge(tr, on=["frame", "particle"], suffixes=("_t", "_p"))
    err = np.hypot(m["x_t"] - m["x_p"], m["y_t"] - m["y_p"])
    return pd.Series(err.to_numpy(), index=pd.MultiIndex.from_frame(m[["frame", "particle"]]), name="err_px")


#: distance holding 95 % of a 2-D Gaussian error, in per-coordinate spreads: sqrt(-2 ln 0.05)
R95 = math.sqrt(-2 * math.log(0.05))
#: median distance of a 2-D Gaussian error, in per-coordinate spreads: sqrt(2 ln 2)
MEDIAN_R = math.sqrt(2 * math.log(2))


def sigma_calibration(err_px, sigma_px) -> dict[str, float]:
    """How honest the tracker's localisation error estimate is on positions with a known error.

    Parameters
    ----------
    err_px : array_like
        Distance of each reported position from the truth, px.
    sigma_px : array_like
        The tracker's ``sigma`` for the same positions (px per coordinate); NaN ones are skipped.

    Returns
    -------
    dict
        ``sigma_within_95``: share of positions within ``2.45 sigma`` (0.95 for an honest sigma
        and a Gaussian error); ``sigma_ratio``: the median of error / sigma over positions
        divided by :data:`MEDIAN_R`, 1 for an honest sigma. NaN when no position has a sigma.
    """
    err = np.asarray(err_px, float)
    sig = np.asarray(sigma_px, float)
    ok = np.isfinite(err) & np.isfinite(sig) & (sig > 0)
    if not ok.any():
        return {"sigma_within_95": math.nan, "sigma_ratio": math.nan}
    err, sig = err[ok], sig[ok]
    return {
        "sigma_within_95": float(np.mean(err <= R95 * sig)),
        "sigma_ratio": float(np.median(err / sig) / MEDIAN_R),
    }


def present_when_gone(truth: pd.DataFrame, tracked: pd.DataFrame) -> float:
    """Fraction of (frame, particle) with the particle out of view on which it is reported present.

    Parameters
    ----------
    truth : DataFrame
        Columns frame, particle, visible (all frames of every evaluated particle).
    tracked : DataFrame
        Columns frame, particle and ``present`` (or NaN x/y for absent rows).

    Returns
    -------
    float
        NaN when no evaluated particle is ever out of view. A tracker that follows a particle
        out of the field of view onto a noise blob scores near 1; one that reports it gone, 0.
    """
    gone = truth.loc[~truth["visible"].astype(bool), ["frame", "particle"]]
    if gone.empty:
        return float("nan")
    shown = tracked.dropna(subset=["x", "y"])
    if "present" in shown:
        shown = shown[shown["present"].astype(bool)]
    hit = gone.merge(shown[["frame", "particle"]].drop_duplicates(), on=["frame", "particle"])
    return len(hit) / len(gone)


def presence_accuracy(truth: pd.DataFrame, tracked: pd.DataFrame) -> dict[str, Any]:
    """How far "present" can be trusted: wrong-while-present frames and coverage.

    A (frame, particle) reported present is *correct* when the particle is in view on that
    frame and the reported centroid lies within one equivalent radius (``sqrt(area / pi)``,
    px, of the true particle on that frame) of the true centre; otherwise it is *wrong*: a
    position that would silently corrupt the particle's MSD. Frames on which the particle is
    only partly in the field (``inside`` False, ``visible`` True) are not scored, as in
    :func:`centroid_errors`: its true centre of mass is not in the image (samem flags such
    rows ``edge``); their number is returned as ``partial``.

    Parameters
    ----------
    truth : DataFrame
        Columns frame, particle, x, y (px), ``visible`` and ``area_px``: every evaluated frame
        of every evaluated particle (other tracked rows are not scored).
    tracked : DataFrame
        Columns frame, particle, x, y (px) and optionally ``present``; absent rows have
        ``present`` False or NaN x/y.

    Returns
    -------
    dict
        ``wrong_while_present``: wrong / reported present (NaN if nothing is reported);
        ``coverage``: correct / visible (frame, particle) pairs; per particle (keys are
        truth ids as strings) ``wrong_per_particle`` and ``coverage_per_particle``; and
        ``reported``, ``wrong``, ``visible`` counts.
    """
    shown = tracked.dropna(subset=["x", "y"])
    if "present" in shown:
        shown = shown[shown["present"].astype(bool)]
    shown = shown[["frame", "particle", "x", "y"]].drop_duplicates(["frame", "particle"])
    partial = truth["visible"].astype(bool) & ~truth["inside"].astype(bool) if "inside" in truth else None
    n_partial = 0 if partial is None else int(partial.sum())
    if partial is not None:
        truth = truth[~partial]
    cols = ["frame", "particle", "x", "y", "visible", "area_px"]
    # (frame, particle) pairs the truth does not evaluate (e.g. the prompt frame) are left out
    m = shown.merge(truth[cols], on=["frame", "particle"], how="inner", suffixes=("_p", "_t"))
    radius = np.sqrt(m["area_px"].fillna(0).to_numpy(float) / np.pi)
    dist = np.hypot(m["x_p"] - m["x_t"], m["y_p"] - m["y_t"]).to_numpy(float)
    visible = m["visible"].fillna(False).astype(bool).to_numpy()
    correct = visible & np.isfinite(dist) & (dist <= radius)
    m = m.assign(correct=correct)
    seen = truth[truth["visible"].astype(bool)]
    n_visible = seen.groupby("particle").size()
    good = m[m["correct"]].groupby("particle").size()
    reported = m.groupby("particle").size()
    bad = (~m["correct"]).groupby(m["particle"]).sum()
    ids = sorted(set(truth["particle"].astype(int)))
    return {
        "wrong_while_present": float((~correct).mean()) if len(m) else float("nan"),
        "coverage": float(correct.sum() / len(seen)) if len(seen) else float("nan"),
        "wrong_per_particle": {
            str(i): float(bad.get(i, 0) / reported[i]) if reported.get(i, 0) else float("nan") for i in ids
        },
        "coverage_per_particle": {
            str(i): float(good.get(i, 0) / n_visible[i]) if n_visible.get(i, 0) else float("nan") for i in ids
        },
        "reported": int(len(m)),
        "wrong": int((~correct).sum()),
        "visible": int(len(seen)),
        "partial": n_partial,
    }
