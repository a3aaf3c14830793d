"""Per-video summary rows of a batch, from what ``samem analyze`` wrote.

Read back: ``results.h5`` (the ``/tracks`` table, ``/labels`` for the frame count and the
root attributes ``pixel_size_nm`` and ``frame_interval_s``). The statistics are those of
``stats.json``: :func:`samem.stats.compute_statistics` with the settings of
configs/stats.yaml (overridable with the ``stats`` entry of configs/batch.yaml), i.e.

- per particle: D from the α = 1 fit and α from the free fit of its time-averaged MSD,
  ``MSD = 4 D t^α + offset`` by generalised least squares;
- per video: ``D_mean`` / ``alpha_mean``, the means of those over the fitted particles with
  their standard errors ``D_se`` / ``alpha_se`` (particle-to-particle spread / √n), and
  ``D_ensemble`` / ``alpha_ensemble``, the fit of the ensemble MSD.

A video without pixel size or frame interval is computed in pixels and frames (unit scale 1):
D is then in px²/frame, which ``D_unit`` states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.jsonsafe import positive_or_none

RESULTS = "results.h5"
#: per-particle columns kept for the statistics across videos (D in the video's D unit)
FIT_COLUMNS = ["particle", "n_present", "sigma", "D", "D_err", "alpha", "alpha_err", "fit_ok"]
_FROM_STATS = {"D_nm2_s": "D", "D_err_nm2_s": "D_err", "sigma_nm": "sigma"}
#: optional /tracks columns the statistics options act on (``exclude_edge``, ``max_sigma_nm``)
_OPTIONAL = ("edge", "sigma")


@dataclass
class VideoResults:
    """Tracks and calibration of one analysed video.

    Attributes
    ----------
    tracks : DataFrame
        ``frame, particle, x, y`` (pixels), rows where the particle is present, with ``edge``
        and ``sigma`` (estimated localisation error, px) when the results hold them, so that
        the statistics options ``exclude_edge`` and ``max_sigma_nm`` apply as in the video's
        own ``stats.json``.
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
        """Unit labels: ``length``, ``time`` and ``D`` (nm^2/s, or px^2/frame when uncalibrated)."""
        length = "nm" if self.pixel_size_nm else "px"
        time = "s" if self.frame_interval_s else "frame"
        return {"length": length, "time": time, "D": f"{length}^2/{time}"}

    @property
    def scale(self) -> tuple[float, float]:
        """(length per pixel, time per frame) in the units of :attr:`units`."""
        return (self.pixel_size_nm or 1.0, self.frame_interval_s or 1.0)


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
        pixel_size_nm = positive_or_none(f.attrs.get("pixel_size_nm"))
        frame_interval_s = positive_or_none(f.attrs.get("frame_interval_s"))
    if "present" in tracks:
        tracks = tracks[tracks["present"].astype(bool)]
    tracks = tracks[np.isfinite(tracks["x"]) & np.isfinite(tracks["y"])]
    tracks = tracks[["frame", "particle", "x", "y", *(c for c in _OPTIONAL if c in tracks)]].reset_index(
        drop=True
    )
    return VideoResults(tracks, pixel_size_nm, frame_interval_s, n_frames)


def statistics(res: VideoResults | list[VideoResults], stats_config=None):
    """:class:`samem.stats.Statistics` of one video, or of several with the same calibration pooled.

    Particle ids are made distinct across videos. Returns None when there is no track.
    """
    from samem.stats import compute_statistics

    many = res if isinstance(res, list) else [res]
    parts, offset = [], 0
    for r in many:
        if len(r.tracks) == 0:
            continue
        t = r.tracks.copy()
        if len(many) > 1:
            ids, inverse = np.unique(t["particle"].to_numpy(), return_inverse=True)
            t["particle"] = inverse + offset
            offset += len(ids)
        parts.append(t)
    if not parts:
        return None
    px, dt = many[0].scale
    return compute_statistics(pd.concat(parts, ignore_index=True), px, dt, stats_config)


def particle_table(stats) -> pd.DataFrame:
    """The per-particle fits of a :class:`samem.stats.Statistics`, columns :data:`FIT_COLUMNS`."""
    if stats is None:
        return pd.DataFrame(columns=FIT_COLUMNS)
    table = stats.particles.rename(columns=_FROM_STATS)
    return table[FIT_COLUMNS].reset_index(drop=True)


def video_summary(out_dir: str | Path, config: dict | None = None) -> dict[str, Any]:
    """Summary row of one analysed video.

    Parameters
    ----------
    out_dir : str or Path
        The video's output folder.
    config : dict, optional
        The ``summary`` section of configs/batch.yaml; its ``stats`` entry (overrides of
        configs/stats.yaml, or a YAML path) is passed to the statistics.

    Returns
    -------
    dict
        ``frames``, ``particles`` (tracked at least once), ``particles_fitted``,
        ``pixel_size_nm``, ``frame_interval_s`` (None when unknown), ``D_unit``,
        ``D_mean``/``D_se``, ``alpha_mean``/``alpha_se``, ``D_ensemble``/``D_ensemble_err``,
        ``alpha_ensemble``/``alpha_ensemble_err`` (NaN when nothing could be fitted), and
        ``particle_fits``: :func:`particle_table` as a list of dicts (kept in the video's
        marker for the statistics across videos).
    """
    res = read_results(out_dir)
    stats = statistics(res, (config or {}).get("stats"))
    ens = stats.summary["ensemble"] if stats is not None else {}

    def num(key):
        v = ens.get(key)
        return float(v) if v is not None else math.nan

    return {
        "frames": res.n_frames,
        "particles": int(res.tracks["particle"].nunique()),
        "particles_fitted": int(ens.get("n_fitted_particles", 0)),
        "pixel_size_nm": res.pixel_size_nm,
        "frame_interval_s": res.frame_interval_s,
        "D_unit": res.units["D"],
        "D_mean": num("D_mean_nm2_s"),
        "D_se": num("D_sem_nm2_s"),
        "alpha_mean": num("alpha_mean"),
        "alpha_se": num("alpha_sem"),
        "D_ensemble": num("D_nm2_s"),
        "D_ensemble_err": num("D_err_nm2_s"),
        "alpha_ensemble": num("alpha"),
        "alpha_ensemble_err": num("alpha_err"),
        "particle_fits": particle_table(stats).to_dict(orient="records"),
    }
