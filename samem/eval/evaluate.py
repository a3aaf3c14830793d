"""``samem eval``: accuracy of samem (and the classical baseline) against synthetic truth.

Both methods get the same input: the video and one box per particle on the first frame,
taken from the truth labels. Metrics (frame 0, the prompt frame, is excluded from the
mask metrics as in DAVIS semi-supervised evaluation):

``iou_mean``
    mean over (frame, particle) of the mask IoU, for every particle visible in the truth;
    a particle predicted where the truth has none counts 0.
``jf_mean``
    DAVIS J&F, 0-100: the mean of J (IoU) and F (boundary F-measure), each averaged per
    particle over frames, then over particles.
``iou_per_particle``
    each particle's mean IoU over its frames (the per-particle J of ``jf_mean``): a mean over
    particles of unlike shapes and contrasts hides which ones the masks fail.
``centroid_err_px`` / ``centroid_err_nm``
    mean distance between tracked and true centre of mass, on frames where the particle is
    tracked and lies wholly inside the field of view.
``id_switches``, ``mota``, ``idf1``, ``recall_mot``
    from ``motmetrics`` on centroids (match radius: half the median prompt box side).
``wrong_while_present``
    fraction of the (frame, particle) pairs reported present whose centroid lies more than
    one equivalent radius (``sqrt(area / pi)``) from the true centre, or whose particle is
    out of view: positions that would corrupt the MSD
    (:func:`samem.eval.metrics.presence_accuracy`).
``coverage``
    fraction of the (frame, particle) pairs with the particle in view that are reported
    present *and* correct (within one equivalent radius); a gap and a wrong position cost
    coverage alike, but only a wrong position costs ``wrong_while_present``.
``centroid_err_worst_px``
    the largest per-particle mean centroid error (px): one lost particle shows here even
    when the mean over particles hides it.
``present_when_gone``
    fraction of the (frame, particle) pairs on which a particle is out of view (left the
    field) but reported present, i.e. followed onto something else; NaN if none leaves.
``sigma_within_95``, ``sigma_ratio``
    how honest the tracker's localisation error estimate (the ``sigma`` column) is on the
    positions scored for ``centroid_err_px``: the share within 2.45 sigma (0.95 when honest)
    and the median error over sigma in Gaussian units (1 when honest;
    :func:`samem.eval.metrics.sigma_calibration`); NaN for tables without the column.
``d_rel_err``
    mean over particles of |D_tracked - D_true| / D_true, both from the same MSD fit
    (:func:`samem.stats.compute_statistics`) on the tracked and on the true trajectory.
``d_rel_err_same_frames``
    the same, with the true trajectory cut to the frames the particle is reported present:
    what wrong and noisy positions cost D, without the sampling error of a shorter track
    (``d_rel_err`` minus this is roughly what the gaps cost).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.eval.metrics import (
    boundary_f,
    centroid_errors,
    identity_metrics,
    iou,
    presence_accuracy,
    present_when_gone,
    sigma_calibration,
)
from samem.io.h5 import open_h5
from samem.io.table import read_table
from samem.synthetic import read_truth
from samem.synthetic.clips import first_frame_boxes

KEYS = ("iou_mean", "jf_mean", "centroid_err_px", "id_switches", "d_rel_err")


def truth_boxes(truth_path: str | Path) -> dict[int, tuple[float, float, float, float]]:
    """First-frame box of every particle in the truth labels (px, continuous coordinates)."""
    with h5py.File(truth_path, "r") as f:
        boxes, ids = first_frame_boxes(f["truth/labels"][0])
    return {int(i): (float(b[0]), float(b[1]), float(b[2]) + 1, float(b[3]) + 1) for i, b in zip(ids, boxes)}


def _fit_d(df: pd.DataFrame, px: float, dt: float) -> dict[int, float]:
    """D (nm²/s) per particle of a trajectory table, by the statistics' own MSD fit."""
    from samem.stats import compute_statistics

    if df.empty:
        return {}
    columns = ["frame", "particle", "x", "y"] + (["edge"] if "edge" in df else [])
    stats = compute_statistics(df[columns], px, dt)  # edge rows: the stats default decides
    p = stats.particles
    return dict(zip(p["particle"].astype(int), p["D_nm2_s"].astype(float)))


def _d_rel_err(
    truth_tracks: pd.DataFrame,
    tracked: pd.DataFrame,
    px: float,
    dt: float,
    d_tracked: dict[int, float] | None = None,
) -> tuple[float, dict]:
    """Mean and per-particle |D_tracked - D_true| / D_true (``d_tracked``: the tracked D if
    already fitted)."""
    d_true = _fit_d(truth_tracks, px, dt)
    d_trk = _fit_d(tracked, px, dt) if d_tracked is None else d_tracked
    per = {}
    for pid, d0 in d_true.items():
        d1 = d_trk.get(pid, math.nan)
        per[pid] = abs(d1 - d0) / d0 if d0 > 0 and math.isfinite(d0) else math.nan
    vals = [v for v in per.values() if math.isfinite(v)]
    missing = [pid for pid in d_true if not math.isfinite(per[pid])]
    return (float(np.mean(vals)) if vals and not missing else math.nan), per


def score(
    truth_path: str | Path,
    pred_labels: Iterable[np.ndarray],
    tracked: pd.DataFrame,
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    """All metrics of one method's output (label images and trajectory table) against truth."""
    truth = read_truth(truth_path)
    boxes = truth_boxes(truth_path)
    ids = sorted(boxes)
    per_frame, J, F = [], {i: [] for i in ids}, {i: [] for i in ids}
    with h5py.File(truth_path, "r") as f:
        tl = f["truth/labels"]
        for t, pred in enumerate(pred_labels):
            if t >= len(tl):
                break
            if t == 0:
                continue
            gt = tl[t]
            ious = []
            for i in ids:
                g, p = gt == i, pred == i
                if not g.any() and not p.any():
                    continue
                j = iou(p, g)
                ious.append(j)
                J[i].append(j)
                F[i].append(boundary_f(p, g))
            per_frame.append(float(np.mean(ious)) if ious else math.nan)
    j_obj = [np.mean(v) for v in J.values() if v]
    f_obj = [np.mean(v) for v in F.values() if v]
    all_j = [x for v in J.values() for x in v]
    truth_tracks = truth.tracks
    evaluated = truth_tracks[truth_tracks["particle"].isin(ids) & (truth_tracks["frame"] > 0)]
    gone_shown = present_when_gone(evaluated, tracked) if "visible" in evaluated else math.nan
    trust = presence_accuracy(evaluated, tracked) if "area_px" in evaluated else {}
    if "visible" in truth_tracks:
        truth_tracks = truth_tracks[truth_tracks["visible"].astype(bool)]
    truth_tracks = truth_tracks[truth_tracks["particle"].isin(ids)]
    present = tracked[tracked["present"].astype(bool)] if "present" in tracked else tracked
    present = present.dropna(subset=["x", "y"])
    err = centroid_errors(truth_tracks, present, {i: i for i in ids})
    err_per = err.groupby(level="particle").mean() if len(err) else pd.Series(dtype=float)
    sigma = (
        present.set_index(["frame", "particle"])["sigma"].reindex(err.index)
        if "sigma" in present and len(err)
        else np.full(len(err), np.nan)
    )
    calibration = sigma_calibration(err.to_numpy(), sigma)
    radius = 0.5 * float(np.median([max(b[2] - b[0], b[3] - b[1]) for b in boxes.values()]))
    ident = identity_metrics(truth_tracks, present, max_dist_px=max(radius, 2.0))
    px, dt = truth.pixel_size_nm, truth.frame_interval_s
    d_tracked = _fit_d(present, px, dt)
    d_err, d_per = _d_rel_err(truth_tracks, present, px, dt, d_tracked)
    shown = present[["frame", "particle"]].drop_duplicates()
    truth_shown = truth_tracks.merge(shown, on=["frame", "particle"], how="inner")
    d_same, d_same_per = _d_rel_err(truth_shown, present, px, dt, d_tracked)
    n_frames = len(per_frame) + 1
    return {
        "iou_mean": float(np.mean(all_j)) if all_j else math.nan,
        "iou_per_frame": per_frame,
        "jf_mean": 100 * (float(np.mean(j_obj)) + float(np.mean(f_obj))) / 2 if j_obj else math.nan,
        "j_mean": float(np.mean(j_obj)) if j_obj else math.nan,
        "iou_per_particle": {str(int(i)): float(np.mean(v)) for i, v in J.items() if v},
        "f_mean": float(np.mean(f_obj)) if f_obj else math.nan,
        "centroid_err_px": float(err.mean()) if len(err) else math.nan,
        "centroid_err_p95_px": float(err.quantile(0.95)) if len(err) else math.nan,
        "centroid_err_nm": float(err.mean() * px) if len(err) else math.nan,
        "centroid_err_worst_px": float(err_per.max()) if len(err_per) else math.nan,
        "centroid_err_per_particle": {str(int(k)): float(v) for k, v in err_per.items()},
        **calibration,
        **ident,
        **trust,
        "present_when_gone": gone_shown,
        "d_rel_err": d_err,
        "d_rel_err_per_particle": {str(k): v for k, v in d_per.items()},
        "d_rel_err_same_frames": d_same,
        "d_rel_err_same_frames_per_particle": {str(k): v for k, v in d_same_per.items()},
        "particles": len(ids),
        "frames": n_frames,
        "fps": n_frames / elapsed_s if elapsed_s else math.nan,
    }


def read_results(results_path: str | Path) -> tuple[Iterable[np.ndarray], pd.DataFrame]:
    """(label images, tracks) of a samem results.h5 (recorder/analyze layout)."""
    path = Path(results_path)
    with open_h5(path) as f:
        if "labels" not in f or "tracks" not in f:
            raise SamemError(f"{path}: not a samem results file (needs /labels and /tracks)")
        tracks = read_table(f["tracks"])

    def labels():
        with h5py.File(path, "r") as g:
            for t in range(len(g["labels"])):
                yield g["labels"][t]

    return labels(), tracks


def run_samem(
    truth_path: str | Path,
    out_dir: str | Path,
    model: str = "default",
    mode: str | None = None,
    progress=None,
    tracker_options: Mapping[str, Any] | None = None,
) -> tuple[Path, float]:
    """Analyse the truth video with samem, prompted by the truth's first-frame boxes."""
    import samem
    from samem.stream.offline import analyze_video
    from samem.stream.settings import load_settings

    tracker = samem.StreamingTracker(samem.load_model(model), mode=mode, **dict(tracker_options or {}))
    report = analyze_video(
        truth_path,
        out_dir,
        tracker,
        load_settings(),
        boxes=(0, truth_boxes(truth_path)),
        overwrite=True,
        plots=False,
        model_name=model,
        progress=progress,
    )
    return Path(out_dir) / "results.h5", report.elapsed_s


def run_classical(truth_path: str | Path) -> tuple[list[np.ndarray], pd.DataFrame, float]:
    """Track the truth video with the classical baseline from the same prompts."""
    import time

    from samem.eval.classical import track_classical

    with h5py.File(truth_path, "r") as f:
        frames = f["frames"][()]
    t0 = time.perf_counter()
    tracks, labels = track_classical(frames, truth_boxes(truth_path))
    return labels, tracks, time.perf_counter() - t0


def evaluate(
    truth_path: str | Path,
    out_dir: str | Path,
    model: str = "default",
    baseline: str | None = "classical",
    results: str | Path | None = None,
    mode: str | None = None,
    progress=None,
    tracker_options: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per method: ``{"samem": {...}, "classical": {...}}`` (see the module docstring).

    With ``results`` an existing results.h5 is scored instead of running samem.
    ``tracker_options`` are :class:`samem.track.TrackerOptions` overrides.
    """
    truth_path = Path(truth_path)
    read_truth(truth_path)  # clear error early if this is not a synthetic video
    out: dict[str, dict[str, Any]] = {}
    if results is None:
        results, elapsed = run_samem(truth_path, out_dir, model, mode, progress, tracker_options)
    else:
        elapsed = None
    labels, tracks = read_results(results)
    out["samem"] = score(truth_path, labels, tracks, elapsed)
    if baseline == "classical":
        c_labels, c_tracks, c_elapsed = run_classical(truth_path)
        out["classical"] = score(truth_path, c_labels, c_tracks, c_elapsed)
    elif baseline not in (None, "none"):
        raise SamemError(f"unknown baseline {baseline!r} (known: classical, none)")
    return out
