"""Mean squared displacement: per particle (``imsd``) and ensemble (``emsd``).

``imsd`` and ``emsd`` take and return exactly what trackpy's functions of the same names
do (positions in pixels, ``mpp`` in µm/px, ``fps`` in 1/s, output in µm² indexed by lag
time in s), so trackpy code ports unchanged. Given ``pixel_size_nm`` / ``frame_interval_s``
instead (or neither, when ``traj.attrs`` carries them) the output is in nm².

Definition (trackpy's): the time-averaged MSD of a particle at lag k is the mean of
``|r(f + k) - r(f)|²`` over all frames f where the particle is present at both f and
f + k; lags with no such pair are NaN. A particle contributes lags 1..min(max_lagtime,
span - 1), span = last - first present frame + 1. The ensemble MSD weights each
particle's MSD at each lag by its effective number of independent measurements
(Qian, Sheetz & Elson, Biophys. J. 60, 910 (1991), eq. B4, scaled by the present
fraction and renormalised over the lags that have pairs), as trackpy's ``emsd`` does.
:func:`ensemble_msd` adds the standard error from the spread between particles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samem.stats.sums import POS_COLUMNS, LagSums, lag_sums
from samem.stats.units import Scale, resolve_scale

#: index name of ``imsd`` output (trackpy's)
IMSD_INDEX = "lag time [s]"


def qian_n_eff(n_frames, lag) -> np.ndarray:
    """Effective number of independent squared displacements in a time-averaged MSD.

    Qian et al. (1991), eq. B4: the relative variance of the MSD estimate of a gapless
    Brownian track of ``n_frames`` positions at ``lag`` frames, inverted.

    Parameters
    ----------
    n_frames : int or array
        Positions in the track (frames).
    lag : int or array
        Lag, frames (1 <= lag < n_frames).
    """
    N = np.asarray(n_frames, dtype=float)
    t = np.asarray(lag, dtype=float)
    short = 6 * (N - t) ** 2 * t / (2 * N - t + 4 * N * t**2 - 5 * t**3)
    with np.errstate(divide="ignore", invalid="ignore"):
        long_ = 1 / (1 + ((N - t) ** 3 + 5 * t - 4 * (N - t) ** 2 * t - N) / (6 * (N - t) * t**2))
    return np.where(t > N / 2, long_, short)


def lag_mask(sums: LagSums) -> np.ndarray:
    """Which (particle, lag) entries exist: lag <= span - 1 (trackpy's per-particle range), (P, L)."""
    lags = np.arange(1, sums.max_lag + 1)
    return lags[None, :] <= (sums.span[:, None] - 1)


def n_eff_weights(sums: LagSums) -> np.ndarray:
    """trackpy's ensemble weights N, shape (P, L); NaN outside each particle's lag range.

    ``N = qian_n_eff(span, lag) * n_present / span``, set to 0 where a lag has no pairs
    and rescaled so that each particle's total is unchanged; a particle with no pairs at
    any of its lags gets NaN (it drops out of the ensemble).
    """
    lags = np.arange(1, sums.max_lag + 1)
    exists = lag_mask(sums)
    span = sums.span[:, None].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = qian_n_eff(span, lags[None, :]) * sums.n_present[:, None] / span
    w = np.where(exists, w, 0.0)
    desired = w.sum(axis=1)
    w_kept = np.where(sums.n > 0, w, 0.0)
    current = w_kept.sum(axis=1)
    rescale = current != desired
    with np.errstate(divide="ignore", invalid="ignore"):  # no pairs at all: 0 * inf -> NaN, by design
        factor = np.where(rescale, desired / current, 1.0)
        w = w_kept * factor[:, None]
    return np.where(exists, w, np.nan)


def particle_moments(sums: LagSums, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-particle mean displacement and mean squared displacement per coordinate.

    Returns
    -------
    mean : ndarray, shape (P, L, d)
        ``<Δx_c>`` in the scale's length unit; NaN where no pair.
    mean_sq : ndarray, shape (P, L, d)
        ``<Δx_c²>`` in length unit²; NaN where no pair.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = sums.n[:, :, None].astype(float)
        mean = np.where(n > 0, sums.s1 / n, np.nan) * scale.length_per_px
        mean_sq = np.where(n > 0, sums.s2 / n, np.nan) * scale.length_per_px**2
    return mean, mean_sq


def particle_msd(sums: LagSums, scale: Scale) -> np.ndarray:
    """Time-averaged MSD of each particle, shape (P, L), length unit²; NaN where undefined."""
    _, mean_sq = particle_moments(sums, scale)
    return mean_sq.sum(axis=2)


def _used_lags(sums: LagSums) -> np.ndarray:
    """Lags 1..min(max_lag, longest span - 1) (the rows trackpy's output has)."""
    top = int(min(sums.max_lag, (sums.span.max() - 1) if len(sums.span) else 0))
    return np.arange(1, max(top, 0) + 1)


def imsd_from_sums(sums: LagSums, scale: Scale, statistic: str = "msd", pos_columns=None) -> pd.DataFrame:
    """trackpy-shaped ``imsd`` table from :class:`LagSums` (one column per particle)."""
    pos_columns = list(pos_columns or POS_COLUMNS)
    mean, mean_sq = particle_moments(sums, scale)
    names = {f"<{c}>": mean[:, :, i] for i, c in enumerate(pos_columns)}
    names.update({f"<{c}^2>": mean_sq[:, :, i] for i, c in enumerate(pos_columns)})
    names["msd"] = mean_sq.sum(axis=2)
    if statistic not in names:
        from samem.errors import SamemError

        raise SamemError(f"statistic must be one of {list(names)}, got {statistic!r}")
    lags = _used_lags(sums)
    values = np.where(lag_mask(sums), names[statistic], np.nan)[:, : len(lags)]
    out = pd.DataFrame(
        values.T, index=pd.Index(scale.lag_time_s(lags), name=IMSD_INDEX), columns=pd.Index(sums.particle)
    )
    return out


def emsd_from_sums(sums: LagSums, scale: Scale, detail: bool = False, pos_columns=None):
    """trackpy-shaped ``emsd`` output from :class:`LagSums` (N-weighted mean over particles)."""
    pos_columns = list(pos_columns or POS_COLUMNS)
    lags = _used_lags(sums)
    K = len(lags)
    w = n_eff_weights(sums)[:, :K]
    mean, mean_sq = particle_moments(sums, scale)
    msd = mean_sq.sum(axis=2)[:, :K]
    valid = np.isfinite(w)
    wz = np.where(valid, w, 0.0)
    total = wz.sum(axis=0)

    def wmean(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(valid & (wz > 0), wz * np.nan_to_num(x), 0.0).sum(axis=0) / total

    lag_t = scale.lag_time_s(lags)
    if not detail:
        return pd.Series(wmean(msd), index=pd.Index(lag_t, name="lagt"), name="msd")
    cols = {f"<{c}>": wmean(mean[:, :K, i]) for i, c in enumerate(pos_columns)}
    cols.update({f"<{c}^2>": wmean(mean_sq[:, :K, i]) for i, c in enumerate(pos_columns)})
    cols["msd"] = wmean(msd)
    cols["N"] = total
    cols["lagt"] = lag_t
    return pd.DataFrame(cols, index=pd.Index(lags, name="frame"))


def ensemble_from_sums(sums: LagSums, scale: Scale) -> pd.DataFrame:
    """Ensemble MSD with its standard error, indexed by lag in frames.

    Columns: ``lag_s`` (s), ``msd`` (length unit², the :func:`emsd` value), ``sem``
    (standard error, length unit²; from the N-weighted spread between particles,
    ``sqrt(P/(P-1) * Σ w_i² (m_i - m)² / (Σ w_i)²)``, so particle-to-particle heterogeneity
    is included; NaN with fewer than two contributing particles), ``n_particles``,
    ``n_pairs`` and ``weight`` (total N).
    """
    lags = _used_lags(sums)
    K = len(lags)
    w = n_eff_weights(sums)[:, :K]
    msd = particle_msd(sums, scale)[:, :K]
    use = np.isfinite(w) & (w > 0) & np.isfinite(msd)
    wz = np.where(use, w, 0.0)
    mz = np.where(use, msd, 0.0)
    W = wz.sum(axis=0)
    n_part = use.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (wz * mz).sum(axis=0) / W
        var = (wz**2 * (mz - mean) ** 2).sum(axis=0) / W**2 * n_part / (n_part - 1)
    sem = np.where(n_part >= 2, np.sqrt(var), np.nan)
    return pd.DataFrame(
        {
            "lag_s": scale.lag_time_s(lags),
            "msd": mean,
            "sem": sem,
            "n_particles": n_part.astype(np.int64),
            "n_pairs": np.where(lag_mask(sums)[:, :K], sums.n[:, :K], 0).sum(axis=0).astype(np.int64),
            "weight": W,
        },
        index=pd.Index(lags, name="lag"),
    )


def _sums(traj, max_lagtime, pos_columns, method):
    return lag_sums(traj, max_lagtime, pos_columns, method=method, quartic_lags=(), vacf_lags=0)


def imsd(
    traj,
    mpp=None,
    fps=None,
    max_lagtime=100,
    statistic="msd",
    pos_columns=None,
    *,
    pixel_size_nm=None,
    frame_interval_s=None,
    method="auto",
) -> pd.DataFrame:
    """Time-averaged MSD of each particle (trackpy-compatible).

    Parameters
    ----------
    traj : DataFrame
        Columns ``frame``, ``particle``, ``x``, ``y`` in pixels (optional ``present``).
    mpp : float, optional
        Microns per pixel; output in µm² (trackpy's units).
    fps : float, optional
        Frames per second.
    max_lagtime : int
        Largest lag, frames (default 100, as trackpy).
    statistic : {"msd", "<x>", "<y>", "<x^2>", "<y^2>"}
        Which quantity to return.
    pos_columns : list of str, optional
        Position columns, default ``["x", "y"]``.
    pixel_size_nm, frame_interval_s : float, keyword-only, optional
        samem units instead of mpp/fps: nm/px (output in nm²) and s. Taken from
        ``traj.attrs`` when neither form is given.
    method : {"auto", "direct", "fft"}
        Summation method, see :func:`samem.stats.sums.lag_sums`.

    Returns
    -------
    DataFrame
        One column per particle id, indexed by lag time in s (index name
        ``"lag time [s]"``); NaN where a lag could not be measured.
    """
    scale = resolve_scale(getattr(traj, "attrs", None), mpp, fps, pixel_size_nm, frame_interval_s)
    sums = _sums(traj, max_lagtime, pos_columns, method)
    return imsd_from_sums(sums, scale, statistic, pos_columns)


def emsd(
    traj,
    mpp=None,
    fps=None,
    max_lagtime=100,
    detail=False,
    pos_columns=None,
    *,
    pixel_size_nm=None,
    frame_interval_s=None,
    method="auto",
):
    """Ensemble MSD, N-weighted over particles (trackpy-compatible).

    Parameters are those of :func:`imsd`; ``detail=True`` returns a DataFrame indexed by
    lag in frames (index name ``"frame"``) with columns ``<x>, <y>, <x^2>, <y^2>, msd, N,
    lagt`` instead of a Series ``msd`` indexed by lag time in s (index name ``"lagt"``).
    Where some particles have no pairs at a lag, the detailed mean displacements are
    properly weighted means over the particles that do (trackpy divides them by a mean
    that includes the absent particles).
    """
    scale = resolve_scale(getattr(traj, "attrs", None), mpp, fps, pixel_size_nm, frame_interval_s)
    sums = _sums(traj, max_lagtime, pos_columns, method)
    return emsd_from_sums(sums, scale, detail, pos_columns)


def ensemble_msd(
    traj, pixel_size_nm=None, frame_interval_s=None, max_lag=100, *, pos_columns=None, method="auto"
) -> pd.DataFrame:
    """Ensemble MSD in nm² with standard error; see :func:`ensemble_from_sums`.

    ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s) default to ``traj.attrs``.
    Columns are renamed ``msd_nm2`` and ``sem_nm2``.
    """
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    out = ensemble_from_sums(_sums(traj, max_lag, pos_columns, method), scale)
    return out.rename(columns={"msd": "msd_nm2", "sem": "sem_nm2"})
