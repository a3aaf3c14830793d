"""The batch report: summary table, statistics across videos and their plots, in ``OUT/``.

Files written (each atomically: a temporary file then a rename):

- ``summary.csv`` / ``summary.json``: one row per video (status, particles, frames, mean D,
  α, processing frames/s, calibration, error); the JSON adds the ensemble statistics.
- ``particles.csv``: D and α of every fitted particle of every video.
- ``ensemble_msd.{png,svg}``: ensemble MSD of each video and the pooled ensemble MSD.
- ``D_distribution.{png,svg}``: per-particle D across videos.
- ``per_video.{png,svg}``: mean D and α per video with standard errors.

See :mod:`samem.batch.summary` for the definitions.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samem.batch.summary import (
    FIT_COLUMNS,
    SUMMARY_DEFAULTS,
    VideoResults,
    _mean_se,
    particle_fits,
    read_results,
)
from samem.batch.task import write_json_atomic

#: summary.csv columns, in order
COLUMNS = [
    "name",
    "status",
    "particles",
    "frames",
    "D_mean",
    "D_se",
    "D_unit",
    "alpha_mean",
    "alpha_se",
    "processing_fps",
    "elapsed_s",
    "pixel_size_nm",
    "frame_interval_s",
    "prompt",
    "video",
    "error",
]
FINISHED = ("done", "skipped (finished)")


def _finite(x: Any) -> Any:
    """JSON-friendly value: NaN/inf become None, numpy scalars plain Python."""
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _calibration_key(res: VideoResults) -> tuple:
    return (res.pixel_size_nm, res.frame_interval_s)


def _pooled_msd(results: list[VideoResults], max_lag: int) -> pd.DataFrame:
    """Ensemble MSD of all tracks of videos sharing one calibration (particle ids made distinct)."""
    from samem.stats import ensemble_msd

    parts, offset = [], 0
    for res in results:
        t = res.tracks.copy()
        ids, t["particle"] = np.unique(t["particle"].to_numpy(), return_inverse=True)
        t["particle"] += offset
        offset += len(ids)
        parts.append(t)
    tracks = pd.concat(parts, ignore_index=True)
    px, dt = results[0].scale
    return ensemble_msd(tracks, pixel_size_nm=px, frame_interval_s=dt, max_lag=max_lag)


def _fit_curve(curve: pd.DataFrame, dt: float, n_frames: int) -> dict[str, Any]:
    """Power-law fit of a pooled ensemble MSD, weighted by its standard errors (lags independent)."""
    from samem.stats.fit import fit_msd, select_lags

    lags = select_lags(n_frames, int(curve.index.max()) if len(curve) else 0)
    sub = curve.loc[curve.index.isin(lags)]
    sem = sub["sem_nm2"].to_numpy()
    if len(sub) < 4 or not np.all(np.isfinite(sem) & (sem > 0)):
        return {"ok": False, "message": "too few lags with a standard error"}
    fit = fit_msd(sub.index.to_numpy(), sub["msd_nm2"].to_numpy(), dt, n_frames, cov=np.diag(sem**2))
    out = {k: _finite(v) for k, v in fit.as_dict().items()}
    out["weights"] = "inverse variance per lag (lags treated as independent: uncertainties are lower bounds)"
    return out


def ensemble_statistics(
    rows: list[dict[str, Any]], out_root: Path, config: dict | None = None
) -> tuple[dict[str, Any], pd.DataFrame, list[tuple[str, VideoResults, pd.DataFrame]]]:
    """Statistics over all particles of the finished videos.

    Returns
    -------
    (dict, DataFrame, list)
        The ensemble statistics (JSON-ready), the per-particle table, and for the plots each
        finished video's (name, results, ensemble MSD).
    """
    from samem.stats import ensemble_msd

    cfg = {**SUMMARY_DEFAULTS, **(config or {})}
    max_lag = int(cfg["max_lag_frames"])
    per_video, tables = [], []
    for row in rows:
        if row.get("status") not in FINISHED:
            continue
        res = read_results(out_root / row["name"])
        if row.get("particle_fits") is not None:  # computed by the worker, kept in the marker
            fits = pd.DataFrame(row["particle_fits"], columns=FIT_COLUMNS)
        else:
            fits = particle_fits(res, max_lag, int(cfg["min_track_frames"]))
        fits.insert(0, "video", row["name"])
        fits["D_unit"] = res.units["D"]
        tables.append(fits)
        curve = None
        if len(res.tracks):
            px, dt = res.scale
            curve = ensemble_msd(res.tracks, pixel_size_nm=px, frame_interval_s=dt, max_lag=max_lag)
        per_video.append((row["name"], res, curve))
    particles = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    groups = []
    for unit in sorted(set(particles.get("D_unit", []))):
        sel = particles[particles["D_unit"] == unit]
        d_mean, d_se = _mean_se(sel["D"])
        a_mean, a_se = _mean_se(sel["alpha"])
        groups.append(
            {
                "D_unit": unit,
                "videos": int(sel["video"].nunique()),
                "particles": int(np.isfinite(sel["D"]).sum()),
                "D_mean": _finite(d_mean),
                "D_se": _finite(d_se),
                "D_median": _finite(
                    float(np.nanmedian(sel["D"])) if np.isfinite(sel["D"]).any() else math.nan
                ),
                "alpha_mean": _finite(a_mean),
                "alpha_se": _finite(a_se),
                "alpha_median": _finite(
                    float(np.nanmedian(sel["alpha"])) if np.isfinite(sel["alpha"]).any() else math.nan
                ),
            }
        )
    pooled = []
    by_cal: dict[tuple, list[VideoResults]] = {}
    for _, res, _curve in per_video:
        if len(res.tracks):
            by_cal.setdefault(_calibration_key(res), []).append(res)
    for (px, dt), results in by_cal.items():
        curve = _pooled_msd(results, max_lag)
        n_frames = max(r.n_frames for r in results)
        pooled.append(
            {
                "pixel_size_nm": px,
                "frame_interval_s": dt,
                "videos": len(results),
                "units": results[0].units,
                "fit": _fit_curve(curve, results[0].scale[1], n_frames),
                "curve": curve,
            }
        )
    stats = {"particles_pooled": groups, "ensemble_msd": pooled}
    return stats, particles, per_video


def _atomic_save(path: Path, save) -> None:
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def summary_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The per-video table, columns :data:`COLUMNS` in order (missing values empty)."""
    table = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in table:
            table[col] = None
    return table[COLUMNS]


def write_report(
    rows: list[dict[str, Any]], out_root: str | Path, config: dict | None = None, formats=("png", "svg")
) -> dict[str, Any]:
    """Write summary.csv/json, particles.csv and the plots into ``out_root``; return the JSON dict."""
    from samem.batch import plots

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    stats, particles, per_video = ensemble_statistics(rows, out_root, config)
    table = summary_table(rows)
    _atomic_save(out_root / "summary.csv", lambda p: table.to_csv(p, index=False))
    _atomic_save(out_root / "particles.csv", lambda p: particles.to_csv(p, index=False))
    for name, fig in plots.batch_figures(table, particles, per_video, stats["ensemble_msd"]).items():
        for ext in formats:
            _atomic_save(out_root / f"{name}.{ext}", lambda p, fig=fig, ext=ext: fig.savefig(p, format=ext))
        plots.close(fig)
    doc = {
        "videos": [{k: _finite(v) for k, v in r.items()} for r in table.to_dict(orient="records")],
        "counts": {s: int((table["status"] == s).sum()) for s in ("done", "skipped (finished)", "failed")},
        "particles_pooled": stats["particles_pooled"],
        "ensemble_msd": [
            {
                **{k: v for k, v in g.items() if k != "curve"},
                "curve": {
                    "lag_s": [_finite(v) for v in g["curve"]["lag_s"]],
                    "msd": [_finite(v) for v in g["curve"]["msd_nm2"]],
                    "sem": [_finite(v) for v in g["curve"]["sem_nm2"]],
                    "n_particles": [int(v) for v in g["curve"]["n_particles"]],
                },
            }
            for g in stats["ensemble_msd"]
        ],
    }
    write_json_atomic(out_root / "summary.json", doc)
    return doc
