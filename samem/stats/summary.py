"""All statistics of a trajectory table in one object, its JSON summary and its HDF5 group.

:func:`compute_statistics` (batch, from a table) and :meth:`samem.stats.LiveStats.statistics`
(live) both go through :func:`statistics_from_sums`, so the live service's ``stats.json``
and ``samem analyze``'s agree on the same frames. Everything is in nm and s.

The summary dict (``Statistics.summary``) holds: units and settings, per-particle fits
(D from the α = 1 fit, α and D_α from the free fit, with uncertainties and the lag range
used), the ensemble fit of the ensemble MSD, the mean and standard error of the
per-particle D and α, displacement moments and the non-Gaussian parameter at the van
Hove lags, and the first velocity-autocorrelation values. NaN becomes ``null`` in JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from samem.config import Settings, load, load_yaml
from samem.errors import SamemError
from samem.jsonsafe import jsonable
from samem.stats.drift import subtract_drift
from samem.stats.fit import MsdFit, check_fit_config, fit_msd, msd_covariance, select_lags
from samem.stats.msd import ensemble_from_sums, n_eff_weights, particle_msd
from samem.stats.sums import LagSums, check_max_lag, lag_sums
from samem.stats.units import Scale, positive, resolve_scale
from samem.stats.vacf import vacf_from_sums
from samem.stats.vanhove import moments_from_sums

#: the statistics' model, stated in outputs
MODEL = "MSD(t) = 4 D t^alpha + offset (2D), generalised least squares"


@dataclass(frozen=True)
class FitConfig(Settings):
    """``fit``: which lags the MSD fits use (frames)."""

    fraction: float = 0.25  # fit lags 1 .. fraction x track span ...
    min_lags: int = 4  # ... but at least this many ...
    max_points: int = 12  # ... using about this many log-spaced lags when the range is longer

    def __post_init__(self):
        check_fit_config(dict(self))


@dataclass(frozen=True)
class VanHoveConfig(Settings):
    """``vanhove``: lags (frames) of the displacement distributions and their histogram bins."""

    lags: tuple[int, ...] = (1, 4, 16)
    bins: int = 41

    def __post_init__(self):
        for k in self.lags:
            check_max_lag(k)


@dataclass(frozen=True)
class VacfConfig(Settings):
    """``vacf``: velocity autocorrelation lags 0 .. ``max_lag`` - 1, frames."""

    max_lag: int = 20

    def __post_init__(self):
        check_max_lag(self.max_lag)


@dataclass(frozen=True)
class DriftConfig(Settings):
    """``drift`` (batch only): subtract the common drift, its rolling-mean window in frames."""

    subtract: bool = False
    smoothing: int = 0


@dataclass(frozen=True)
class StatsConfig(Settings):
    """Statistics settings (``configs/stats.yaml``, docs/statistics.md); lags in frames.

    ``vacf.max_lag`` never exceeds ``max_lag`` (:func:`load_config` clips it).
    """

    max_lag: int = 100  # largest MSD lag, frames
    min_track_frames: int = 10  # particles spanning fewer frames get no individual fit
    exclude_edge: bool = False  # leave out rows whose mask touches the frame border
    max_sigma_nm: float | None = None  # leave out rows whose estimated localisation error exceeds this
    fit: FitConfig = field(default_factory=FitConfig)
    vanhove: VanHoveConfig = field(default_factory=VanHoveConfig)
    vacf: VacfConfig = field(default_factory=VacfConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self):
        check_max_lag(self.max_lag)
        if self.min_track_frames < 2:
            raise SamemError("min_track_frames must be at least 2")
        cut = self.max_sigma_nm
        if cut is not None and not (isinstance(cut, int | float) and math.isfinite(cut) and cut > 0):
            raise SamemError(f"max_sigma_nm must be a positive number of nm or null, got {cut!r}")


def load_config(config=None) -> StatsConfig:
    """Statistics settings: shipped ``configs/stats.yaml`` overridden by ``config``.

    Parameters
    ----------
    config : StatsConfig, dict, str or Path, optional
        Settings already loaded (returned as they are), overrides nested like the YAML, or a
        YAML file of them.

    Raises
    ------
    SamemError
        Unknown options and bad values, each named.
    """
    if isinstance(config, StatsConfig):
        return config
    if config is None:
        over = {}
    elif isinstance(config, Mapping):
        over = config
    elif isinstance(config, (str, Path)):
        over = load_yaml(config)
    else:
        raise SamemError(f"stats config must be a mapping or a YAML path, got {type(config).__name__}")
    cfg = load(StatsConfig, [load_yaml("stats"), over], what="stats option")
    return cfg.replace(vacf=cfg.vacf.replace(max_lag=min(cfg.vacf.max_lag, cfg.max_lag)))


@dataclass
class Statistics:
    """Statistics of one set of trajectories (nm, s).

    Attributes
    ----------
    summary : dict
        JSON-ready summary (see module docstring).
    particles : DataFrame
        One row per particle: span, fits (``D_nm2_s``, ``alpha``, ... with ``_err``).
    msd : DataFrame
        Long table ``particle, lag, lag_s, msd_nm2, n_pairs`` (lags with pairs only).
    emsd : DataFrame
        Ensemble MSD ``lag, lag_s, msd_nm2, sem_nm2, n_particles, n_pairs, weight``.
    displacements : DataFrame
        Moments per van Hove lag: ``lag, lag_s, n_pairs, mean_x, mean_y, std_x, std_y``
        (nm), ``msd`` (nm²), ``ngp``.
    vacf : DataFrame
        ``lag, lag_s, vacf`` (nm²/s²), ``vacf_norm``, ``n_pairs``.
    """

    summary: dict
    particles: pd.DataFrame
    msd: pd.DataFrame
    emsd: pd.DataFrame
    displacements: pd.DataFrame
    vacf: pd.DataFrame
    tables: tuple = field(default=("particles", "msd", "emsd", "displacements", "vacf"), repr=False)

    def to_json(self, **kw) -> str:
        """The summary as strict JSON (no NaN)."""
        return json.dumps(self.summary, allow_nan=False, **kw)


def _guarded(fit, *args) -> tuple[MsdFit, MsdFit]:
    """``fit(*args)``, or two not-ok fits saying why: one statistic never stops the others."""
    try:
        return fit(*args)
    except Exception as exc:  # a numerical corner case: unknown with a reason, never an exception
        why = MsdFit(message=f"no reliable fit: {type(exc).__name__}: {str(exc)[:160]}")
        return why, MsdFit(message=why.message)


def _fit_particle(lags, y, n, span, dt) -> tuple[MsdFit, MsdFit]:
    free = fit_msd(lags, y, dt, span, n_pairs=n)
    if free.ok:
        ok = np.isfinite(y) & (n > 0)
        cov = np.full((len(lags), len(lags)), np.nan)
        cov[np.ix_(ok, ok)] = msd_covariance(
            lags[ok], span, free.D, free.alpha, free.offset, dt, n_pairs=n[ok]
        )
        brown = fit_msd(lags, y, dt, span, n_pairs=n, fixed_alpha=1.0, cov=cov)
    else:
        brown = fit_msd(lags, y, dt, span, n_pairs=n, fixed_alpha=1.0)
    return brown, free


def _particle_rows(sums: LagSums, msd: np.ndarray, scale: Scale, cfg: StatsConfig) -> pd.DataFrame:
    fcfg = cfg.fit
    dt = scale.frame_interval_s
    sigma = sums.sigma_rms * scale.length_per_px
    rows = []
    for p in range(len(sums.particle)):
        span = int(sums.span[p])
        row = {
            "particle": sums.particle[p],
            "first_frame": int(sums.first_frame[p]),
            "last_frame": int(sums.last_frame[p]),
            "n_present": int(sums.n_present[p]),
            "sigma_nm": float(sigma[p]),
        }
        if span >= cfg.min_track_frames:
            lags = select_lags(span, sums.max_lag, **fcfg)
            brown, free = _guarded(_fit_particle, lags, msd[p, lags - 1], sums.n[p, lags - 1], span, dt)
        else:
            brown = free = MsdFit(message=f"track spans {span} frames < min_track_frames")
        row.update(_fit_columns(brown, free))
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["particle", "first_frame", "last_frame", "n_present", "sigma_nm", *_FIT_COLUMNS]
    )


_FIT_COLUMNS = [
    "D_nm2_s",
    "D_err_nm2_s",
    "offset_nm2",
    "offset_err_nm2",
    "alpha",
    "alpha_err",
    "D_alpha_nm2_s_alpha",
    "D_alpha_err_nm2_s_alpha",
    "offset_alpha_nm2",
    "lag_min_s",
    "lag_max_s",
    "n_lags",
    "chi2_red",
    "fit_ok",
    "message",
]


def _fit_columns(brown: MsdFit, free: MsdFit) -> dict:
    return {
        "D_nm2_s": brown.D,
        "D_err_nm2_s": brown.D_err,
        "offset_nm2": brown.offset,
        "offset_err_nm2": brown.offset_err,
        "alpha": free.alpha,
        "alpha_err": free.alpha_err,
        "D_alpha_nm2_s_alpha": free.D,
        "D_alpha_err_nm2_s_alpha": free.D_err,
        "offset_alpha_nm2": free.offset,
        "lag_min_s": brown.lag_min_s if brown.ok else free.lag_min_s,
        "lag_max_s": brown.lag_max_s if brown.ok else free.lag_max_s,
        "n_lags": max(brown.n_lags, free.n_lags),
        "chi2_red": free.chi2_red,
        "fit_ok": bool(brown.ok and free.ok),
        "message": "; ".join(m for m in {brown.message, free.message} if m),
    }


def _ensemble_fit(sums: LagSums, scale: Scale, emsd: pd.DataFrame, cfg: StatsConfig) -> tuple[MsdFit, MsdFit]:
    dt = scale.frame_interval_s
    usable = sums.span >= 2
    if not np.any(usable) or len(emsd) == 0:
        return MsdFit(message="no particle spans two frames"), MsdFit(message="no particle spans two frames")
    span_ref = int(np.median(sums.span[usable]))
    lags = select_lags(span_ref, min(sums.max_lag, len(emsd)), **cfg.fit)
    y = emsd["msd"].to_numpy()[lags - 1]
    W = n_eff_weights(sums)[:, lags - 1]

    def cov(use_lags, D, alpha, offset):
        pos = np.searchsorted(lags, use_lags)
        w = np.nan_to_num(W[:, pos])
        total = np.zeros((len(pos), len(pos)))
        for p in np.flatnonzero(np.any(w > 0, axis=1)):
            has = (w[p] > 0) & (sums.n[p, use_lags - 1] > 0)
            if not np.any(has):
                continue
            c = msd_covariance(
                use_lags[has], int(sums.span[p]), D, alpha, offset, dt, n_pairs=sums.n[p, use_lags[has] - 1]
            )
            wp = w[p, has]
            total[np.ix_(has, has)] += np.outer(wp, wp) * c
        Wt = w.sum(axis=0)
        return total / np.outer(Wt, Wt)

    free = fit_msd(lags, y, dt, cov)
    if free.ok:  # the α = 1 fit reuses the covariance at the free fit's estimate
        ok = np.isfinite(y)
        fixed = np.full((len(lags), len(lags)), np.nan)
        fixed[np.ix_(ok, ok)] = cov(lags[ok], free.D, free.alpha, free.offset)
        brown = fit_msd(lags, y, dt, cov, fixed_alpha=1.0, cov=fixed)
    else:
        brown = fit_msd(lags, y, dt, cov, fixed_alpha=1.0)
    return brown, free


def _mean_sem(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    return float(x.mean()), (float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan)


def statistics_from_sums(
    sums: LagSums,
    pixel_size_nm: float,
    frame_interval_s: float,
    config=None,
    *,
    drift_subtracted: bool = False,
) -> Statistics:
    """Compute :class:`Statistics` from :class:`LagSums` (pixels, frames) and the units.

    Parameters
    ----------
    sums : LagSums
        From :func:`samem.stats.sums.lag_sums` or :meth:`LiveStats.sums`; its ``s4`` must
        cover the van Hove lags and its velocity sums the VACF lags.
    pixel_size_nm : float
        nm/px.
    frame_interval_s : float
        s.
    config : StatsConfig, dict or path, optional
        Settings (:func:`load_config`) or overrides of configs/stats.yaml.
    """
    cfg = load_config(config)
    # the sums decide; report what was used
    cfg = cfg.replace(
        max_lag=sums.max_lag, vacf=cfg.vacf.replace(max_lag=min(cfg.vacf.max_lag, sums.max_lag))
    )
    scale = Scale(
        positive("pixel_size_nm", pixel_size_nm), "nm", positive("frame_interval_s", frame_interval_s)
    )
    dt = scale.frame_interval_s
    msd = particle_msd(sums, scale)
    particles = _particle_rows(sums, msd, scale, cfg)
    ens = ensemble_from_sums(sums, scale)
    brown, free = _guarded(_ensemble_fit, sums, scale, ens, cfg)
    lag_ids = np.arange(1, sums.max_lag + 1)
    has = sums.n > 0
    pi, li = np.nonzero(has)
    msd_long = pd.DataFrame(
        {
            "particle": sums.particle[pi],
            "lag": lag_ids[li],
            "lag_s": scale.lag_time_s(lag_ids[li]),
            "msd_nm2": msd[pi, li],
            "n_pairs": sums.n[pi, li],
        }
    )
    vh_lags = [k for k in cfg.vanhove.lags if k <= sums.max_lag]
    disp = moments_from_sums(sums, scale, vh_lags) if vh_lags else moments_from_sums(sums, scale, [1])[:0]
    vac = vacf_from_sums(sums, scale, cfg.vacf.max_lag)
    emsd = ens.rename(columns={"msd": "msd_nm2", "sem": "sem_nm2"}).reset_index()
    ok = particles["fit_ok"].to_numpy(bool)
    D_mean, D_sem = _mean_sem(particles["D_nm2_s"].to_numpy()[ok])
    a_mean, a_sem = _mean_sem(particles["alpha"].to_numpy()[ok])
    known = sums.sigma_n > 0
    sigma_all = (
        float(np.sqrt(sums.sigma2[known].sum() / sums.sigma_n[known].sum())) * scale.length_per_px
        if known.any()
        else math.nan
    )
    summary = {
        "units": {"length": "nm", "time": "s", "pixel_size_nm": scale.length_per_px, "frame_interval_s": dt},
        "model": MODEL,
        "settings": {
            k: v
            for k, v in cfg.to_dict().items()
            if k in ("max_lag", "min_track_frames", "fit", "vanhove", "vacf")
        },
        "drift_subtracted": bool(drift_subtracted),
        "n_particles": len(sums.particle),
        "n_positions": int(sums.n_present.sum()),
        "frames": [int(sums.first_frame.min()), int(sums.last_frame.max())] if len(sums.particle) else None,
        "particles": particles.to_dict(orient="records"),
        "ensemble": {
            **_fit_columns(brown, free),
            # the ensemble states the free fit's lag range (per particle: the alpha = 1 fit's)
            "lag_min_s": free.lag_min_s if free.ok else brown.lag_min_s,
            "lag_max_s": free.lag_max_s if free.ok else brown.lag_max_s,
            "D_mean_nm2_s": D_mean,
            "D_sem_nm2_s": D_sem,
            "alpha_mean": a_mean,
            "alpha_sem": a_sem,
            "n_fitted_particles": int(ok.sum()),
            "sigma_nm": sigma_all,
        },
        "displacements": disp.reset_index()
        .rename(
            columns={
                "mean_x": "mean_x_nm",
                "mean_y": "mean_y_nm",
                "std_x": "std_x_nm",
                "std_y": "std_y_nm",
                "msd": "msd_nm2",
            }
        )
        .to_dict(orient="records"),
        "vacf": {
            "lag_s": vac["lag_s"].tolist(),
            "vacf_norm": vac["vacf_norm"].tolist(),
            "n_pairs": vac["n_pairs"].tolist(),
        },
    }
    return Statistics(jsonable(summary), particles, msd_long, emsd, disp.reset_index(), vac.reset_index())


def compute_statistics(
    traj: pd.DataFrame, pixel_size_nm=None, frame_interval_s=None, config=None
) -> Statistics:
    """Batch :class:`Statistics` of a trajectory table (units default to ``traj.attrs``).

    With ``drift.subtract`` in the config the common drift is removed first
    (:func:`samem.stats.drift.subtract_drift`). Rows flagged ``edge`` (cut by the frame
    border) are left out only with ``exclude_edge: true``; rows whose ``sigma`` (estimated
    localisation error, px) exceeds ``max_sigma_nm`` only when that is set.
    """
    cfg = load_config(config)
    if cfg.exclude_edge and "edge" in traj.columns:
        traj = traj[~traj["edge"].to_numpy(dtype=bool)]
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    if cfg.max_sigma_nm is not None and "sigma" in traj.columns:
        traj = traj[~(traj["sigma"].to_numpy(dtype=float) * scale.length_per_px > cfg.max_sigma_nm)]
    drift = cfg.drift.subtract
    if drift:
        traj = subtract_drift(traj, smoothing=cfg.drift.smoothing)
    sums = lag_sums(traj, cfg.max_lag, quartic_lags=list(cfg.vanhove.lags), vacf_lags=cfg.vacf.max_lag)
    return statistics_from_sums(
        sums, scale.length_per_px, scale.frame_interval_s, cfg, drift_subtracted=drift
    )


def summarize(traj: pd.DataFrame, pixel_size_nm=None, frame_interval_s=None, config=None) -> dict:
    """JSON-serialisable statistics summary of a trajectory table (``stats.json``)."""
    return compute_statistics(traj, pixel_size_nm, frame_interval_s, config).summary


def write_stats(parent, stats: Statistics, name: str = "stats"):
    """Write statistics into an HDF5 group ``parent[name]`` (replacing it).

    Layout: tables ``particles``, ``msd``, ``emsd``, ``displacements``, ``vacf`` (see
    :class:`Statistics`, written with :func:`samem.io.table.write_table`); attrs
    ``summary_json`` (the JSON summary), ``pixel_size_nm``, ``frame_interval_s``.
    """
    from samem.io.table import write_table

    if name in parent:
        del parent[name]
    g = parent.create_group(name)
    for t in stats.tables:
        write_table(g, t, getattr(stats, t))
    g.attrs["summary_json"] = stats.to_json()
    g.attrs["pixel_size_nm"] = stats.summary["units"]["pixel_size_nm"]
    g.attrs["frame_interval_s"] = stats.summary["units"]["frame_interval_s"]
    return g


def read_stats(group) -> Statistics:
    """Read statistics written by :func:`write_stats` from an HDF5 group."""
    from samem.io.table import read_table

    try:
        summary = json.loads(group.attrs["summary_json"])
        tables = {t: read_table(group[t]) for t in ("particles", "msd", "emsd", "displacements", "vacf")}
    except KeyError as exc:
        raise SamemError(f"{group.name} is not a samem statistics group (missing {exc})") from None
    return Statistics(summary, **tables)
