"""The batch report: summary table, statistics across videos and their plots, in ``OUT/``.

Files written (each atomically: a temporary file then a rename):

- ``summary.csv`` / ``summary.json``: one row per video (status, particles, frames, mean D,
  α, processing frames/s, calibration, error); the JSON adds the ensemble statistics.
- ``particles.csv``: D and α of every fitted particle of every video.
- ``ensemble_msd.{png,svg}``: ensemble MSD of each video and the pooled ensemble MSD.
- ``D_distribution.{png,svg}``: per-particle D across videos.
- ``per_video.{png,svg}``: mean D and α per video with standard errors.

See :mod:`samem.batch.results` for the definitions.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samem.batch.results import FIT_COLUMNS, VideoResults, particle_table, read_results, statistics
from samem.batch.task import write_json_atomic
from samem.jsonsafe import jsonable

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
    "D_ensemble",
    "D_ensemble_err",
    "alpha_ensemble",
    "alpha_ensemble_err",
    "processing_fps",
    "elapsed_s",
    "pixel_size_nm",
    "frame_interval_s",
    "prompt",
    "video",
    "error",
]
FINISHED = ("done", "skipped (finished)")


def _calibration_key(res: VideoResults) -> tuple:
    return (res.pixel_size_nm, res.frame_interval_s)


def _mean_se_median(values) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": None, "se": None, "median": None}
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(np.mean(v)), "se": se, "median": float(np.median(v))}


def ensemble_statistics(
    rows: list[dict[str, Any]], out_root: Path, config: dict | None = None
) -> tuple[dict[str, Any], pd.DataFrame, list[tuple[str, VideoResults, pd.DataFrame | None]]]:
    """Statistics over all particles of the finished videos.

    Parameters
    ----------
    rows : list of dict
        Summary rows; finished ones may carry ``particle_fits`` (else they are computed).
    out_root : Path
        The batch output folder.
    config : dict, optional
        The ``summary`` section of configs/batch.yaml (its ``stats`` entry overrides
        configs/stats.yaml).

    Returns
    -------
    (dict, DataFrame, list)
        The statistics across videos: ``particles_pooled`` (per D unit: mean, standard error
        and median of the per-particle D and α over all videos) and ``ensemble_msd`` (per
        calibration: the pooled ensemble MSD curve and its fit); the per-particle table;
        and, for the plots, each finished video's (name, results, ensemble MSD or None).
    """
    from samem.stats import ensemble_msd
    from samem.stats.summary import load_config

    stats_cfg = (config or {}).get("stats")
    max_lag = load_config(stats_cfg).max_lag
    per_video, tables = [], []
    for row in rows:
        if row.get("status") not in FINISHED:
            continue
        res = read_results(out_root / row["name"])
        if row.get("particle_fits") is not None:  # computed by the worker, kept in the marker
            fits = pd.DataFrame(row["particle_fits"], columns=FIT_COLUMNS)
        else:
            fits = particle_table(statistics(res, stats_cfg))
        fits.insert(0, "video", row["name"])
        fits["D_unit"] = res.units["D"]
        tables.append(fits)
        curve = None
        if len(res.tracks):
            px, dt = res.scale
            curve = ensemble_msd(res.tracks, pixel_size_nm=px, frame_interval_s=dt, max_lag=max_lag)
        per_video.append((row["name"], res, curve))
    particles = (
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["video", *FIT_COLUMNS])
    )
    for col in ("sigma", "D", "D_err", "alpha", "alpha_err"):  # None (JSON), empty tables: floats again
        particles[col] = pd.to_numeric(particles[col], errors="coerce").astype(float)
    particles["fit_ok"] = particles["fit_ok"].fillna(False).astype(bool)
    if "D_unit" not in particles:
        particles["D_unit"] = pd.Series(dtype=str)
    groups = []
    for unit in sorted(set(particles["D_unit"])):
        sel = particles[(particles["D_unit"] == unit) & particles["fit_ok"].astype(bool)]
        d, a = _mean_se_median(sel["D"]), _mean_se_median(sel["alpha"])
        groups.append(
            {
                "D_unit": unit,
                "videos": int(sel["video"].nunique()),
                "particles": len(sel),
                "D_mean": d["mean"],
                "D_se": d["se"],
                "D_median": d["median"],
                "alpha_mean": a["mean"],
                "alpha_se": a["se"],
                "alpha_median": a["median"],
            }
        )
    by_cal: dict[tuple, list[VideoResults]] = {}
    for _, res, _curve in per_video:
        if len(res.tracks):
            by_cal.setdefault(_calibration_key(res), []).append(res)
    pooled = []
    for (px, dt), results in by_cal.items():
        st = statistics(results, stats_cfg)
        pooled.append(
            {
                "pixel_size_nm": px,
                "frame_interval_s": dt,
                "videos": len(results),
                "particles": int(st.summary["n_particles"]),
                "units": results[0].units,
                "fit": st.summary["ensemble"],
                "curve": st.emsd,
            }
        )
    return {"particles_pooled": groups, "ensemble_msd": pooled}, particles, per_video


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
    figures = plots.batch_figures(table, particles, per_video, stats["ensemble_msd"]) if formats else {}
    for name, fig in figures.items():
        for ext in formats:
            _atomic_save(out_root / f"{name}.{ext}", lambda p, fig=fig, ext=ext: fig.savefig(p, format=ext))
        plots.close(fig)
    doc = {
        "videos": [{k: jsonable(v) for k, v in r.items()} for r in table.to_dict(orient="records")],
        "counts": {s: int((table["status"] == s).sum()) for s in ("done", "skipped (finished)", "failed")},
        "particles_pooled": stats["particles_pooled"],
        "ensemble_msd": [
            {
                **{k: v for k, v in g.items() if k != "curve"},
                "curve": {
                    "lag_s": [jsonable(v) for v in g["curve"]["lag_s"]],
                    "msd": [jsonable(v) for v in g["curve"]["msd_nm2"]],
                    "sem": [jsonable(v) for v in g["curve"]["sem_nm2"]],
                    "n_particles": [int(v) for v in g["curve"]["n_particles"]],
                },
            }
            for g in stats["ensemble_msd"]
        ],
    }
    write_json_atomic(out_root / "summary.json", doc)
    return doc
