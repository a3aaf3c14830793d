"""Per-video summary rows and statistics across all videos of a batch.

Everything here is computed from what ``samem analyze`` writes (``results.h5``: the
``/tracks`` table, ``/labels`` and the root attributes ``pixel_size_nm`` and
``frame_interval_s``), with :mod:`samem.stats` for the MSD and its fits:

- per particle: time-averaged MSD (:func:`samem.stats.imsd`) fitted with
  :func:`samem.stats.fit.fit_msd` over the lags of :func:`samem.stats.fit.select_lags`,
  once with α = 1 (D) and once with α free (α);
- per video: the particle count, frames, the mean D and mean α over particles with their
  standard errors (particle-to-particle spread / √n);
- across videos: the same means over all particles of all videos, per-video rows, and, when
  every video has the same pixel size and frame interval, the pooled ensemble MSD
  (:func:`samem.stats.ensemble_msd` of all tracks together) with a power-law fit.

A video without pixel size or frame interval is summarised in pixels and frames: D is then
in px²/frame (``D_unit`` says which), and such videos are pooled only with each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samem.errors import SamemError

RESULTS = "results.h5"
#: defaults of the statistics (overridden by the ``summary`` section of configs/batch.yaml)
SUMMARY_DEFAULTS = {"max_lag_frames": 100, "min_track_frames": 5}
#: columns of the per-particle table (D in the video's D unit)
FIT_COLUMNS = ["particle", "n_frames", "D", "D_err", "alpha", "alpha_err"]


@dataclass
class VideoResults:
    """Tracks and calibration of one analysed video.

    Attributes
    ----------
    tracks : DataFrame
        ``frame, particle, x, y`` (pixels), rows where the particle is present.
    pixel_size_nm, frame_interval_s : float or None
        Calibration (nm/px, s); None when unknown.
    n_frames : int
        Frames analysed.
    """

    tracks: pd.DataFrame
    pixel_size_nm: float | None
    frame_interval_s: float | None
    n_frames: int

    @property
    def units(self) -> dict[str, str]:
        """Unit labels: ``length``, ``time`` and ``D`` (nm²/s, or px²/frame when uncalibrated)."""
        length = "nm" if self.pixel_size_nm else "px"
        time = "s" if self.frame_interval_s else "frame"
        return {"length": length, "time": time, "D": f"{length}^2/{time}"}

    @property
    def scale(self) -> tuple[float, float]:
        """(length per pixel, time per frame) in the units of :attr:`units`."""
        return (self.pixel_size_nm or 1.0, self.frame_interval_s or 1.0)


def _known(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def read_results(out_dir: str | Path) -> VideoResults:
    """Read ``out_dir/results.h5`` written by ``samem analyze``.

    Raises
    ------
    SamemError
        The results file is missing or has no ``/tracks`` table.
    """
    from samem.io.recorder import open_results
    from samem.io.table import read_table

    path = Path(out_dir) / RESULTS
    if not path.is_file():
        raise SamemError(f"{path}: missing; the analysis wrote no results file")
    with open_results(path) as f:
        if "tracks" not in f:
            raise SamemError(f"{path}: no /tracks table")
        tracks = read_table(f["tracks"])
        if "labels" in f:
            n_frames = int(f["labels"].shape[0])
        elif "frame_index" in f:
            n_frames = int(f["frame_index"].shape[0])
        else:
            n_frames = int(tracks["frame"].max()) + 1 if len(tracks) else 0
        pixel_size_nm = _known(f.attrs.get("pixel_size_nm"))
        frame_interval_s = _known(f.attrs.get("frame_interval_s"))
    if "present" in tracks:
        tracks = tracks[tracks["present"].astype(bool)]
    tracks = tracks[np.isfinite(tracks["x"]) & np.isfinite(tracks["y"])]
    tracks = tracks[["frame", "particle", "x", "y"]].reset_index(drop=True)
    return VideoResults(tracks, pixel_size_nm, frame_interval_s, n_frames)


def particle_fits(res: VideoResults, max_lag_frames: int = 100, min_track_frames: int = 5) -> pd.DataFrame:
    """D (α = 1 fit) and α (free fit) of every particle tracked over at least ``min_track_frames``.

    Returns
    -------
    DataFrame
        ``particle, n_frames, D, D_err, alpha, alpha_err`` with D in ``res.units["D"]``;
        NaN where a fit was impossible.
    """
    from samem.stats import imsd
    from samem.stats.fit import fit_msd, select_lags

    px, dt = res.scale
    rows = []
    counts = res.tracks.groupby("particle")["frame"].agg(["count", "min", "max"])
    keep = counts.index[counts["count"] >= min_track_frames]
    if len(keep) == 0:
        return pd.DataFrame(columns=FIT_COLUMNS)
    tracks = res.tracks[res.tracks["particle"].isin(keep)]
    msd = imsd(tracks, max_lagtime=max_lag_frames, pixel_size_nm=px, frame_interval_s=dt)
    lag_frames = np.rint(msd.index.to_numpy() / dt).astype(np.int64)
    for pid in msd.columns:
        span = int(counts.loc[pid, "max"] - counts.loc[pid, "min"] + 1)
        lags = select_lags(span, max_lag_frames)
        use = np.isin(lag_frames, lags)
        curve = msd[pid].to_numpy()[use]
        brownian = fit_msd(lag_frames[use], curve, dt, span, fixed_alpha=1.0)
        free = fit_msd(lag_frames[use], curve, dt, span)
        rows.append(
            {
                "particle": pid,
                "n_frames": int(counts.loc[pid, "count"]),
                "D": brownian.D,
                "D_err": brownian.D_err,
                "alpha": free.alpha,
                "alpha_err": free.alpha_err,
            }
        )
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(np.mean(v)), se


def video_summary(out_dir: str | Path, config: dict | None = None) -> dict[str, Any]:
    """Summary row of one analysed video.

    Returns
    -------
    dict
        ``frames``, ``particles`` (tracked at least once), ``particles_fitted``,
        ``pixel_size_nm``, ``frame_interval_s`` (None when unknown), ``D_unit``, ``D_mean``
        and ``D_se`` (mean of per-particle D and its standard error), ``alpha_mean``,
        ``alpha_se``, and ``particle_fits``: the per-particle table of :func:`particle_fits`
        as a list of dicts (kept in the video's marker for the statistics across videos).
    """
    cfg = {**SUMMARY_DEFAULTS, **(config or {})}
    res = read_results(out_dir)
    fits = particle_fits(res, int(cfg["max_lag_frames"]), int(cfg["min_track_frames"]))
    d_mean, d_se = _mean_se(fits["D"]) if len(fits) else (math.nan, math.nan)
    a_mean, a_se = _mean_se(fits["alpha"]) if len(fits) else (math.nan, math.nan)
    return {
        "frames": res.n_frames,
        "particles": int(res.tracks["particle"].nunique()),
        "particles_fitted": int(np.isfinite(fits["D"]).sum()) if len(fits) else 0,
        "pixel_size_nm": res.pixel_size_nm,
        "frame_interval_s": res.frame_interval_s,
        "D_unit": res.units["D"],
        "D_mean": d_mean,
        "D_se": d_se,
        "alpha_mean": a_mean,
        "alpha_se": a_se,
        "particle_fits": fits.to_dict(orient="records"),
    }
