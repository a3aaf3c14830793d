"""Displacement distributions (van Hove self-correlation) and the non-Gaussian parameter.

At a lag of k frames, a displacement is ``r(f + k) - r(f)`` for every frame f in which
the particle is present at both ends (the pair set of :mod:`samem.stats.sums`); all
particles are pooled. The van Hove function is the distribution of one displacement
component; the x and y components are pooled (isotropy assumed), in nm. It is shown with
the Gaussian of the same mean and variance. The non-Gaussian parameter in d dimensions is
``α2 = d <Δr⁴> / ((d + 2) <Δr²>²) - 1`` (0 for Gaussian displacements; for a mixture of
Brownian particles with coefficients D it is ``<D²>/<D>² - 1``). Displacements are
not drift-corrected here; subtract drift first (:mod:`samem.stats.drift`) if needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.stats.sums import LagSums, Layout, check_max_lag, lag_sums, present_tracks
from samem.stats.units import Scale, resolve_scale


def _lags(lags) -> list[int]:
    lags = [lags] if np.isscalar(lags) else list(lags)
    if not lags:
        raise SamemError("give at least one lag (frames)")
    return [check_max_lag(k) for k in lags]


def moments_from_sums(sums: LagSums, scale: Scale, lags=None) -> pd.DataFrame:
    """Pooled displacement moments per lag from :class:`LagSums`.

    Returns
    -------
    DataFrame indexed by ``lag`` (frames) with ``lag_s`` (s), ``n_pairs``, ``mean_x``,
    ``mean_y`` (mean displacement per coordinate), ``std_x``, ``std_y`` (its standard
    deviation), ``msd`` (``<Δr²>``), all in the scale's length unit (squared for msd), and
    ``ngp`` (non-Gaussian parameter α2, dimensionless). NaN where there are no pairs or
    ``s4`` was not computed.
    """
    lags = list(range(1, sums.max_lag + 1)) if lags is None else [k for k in _lags(lags) if k <= sums.max_lag]
    idx = np.asarray(lags, dtype=np.int64) - 1
    a = scale.length_per_px
    d = sums.ndim
    n = sums.n[:, idx].sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = sums.s1[:, idx].sum(axis=0) / n[:, None] * a
        sq = sums.s2[:, idx].sum(axis=0) / n[:, None] * a**2
        r4 = sums.s4[:, idx].sum(axis=0) / n * a**4
        msd = sq.sum(axis=1)
        ngp = d * r4 / ((d + 2) * msd**2) - 1
        std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    out = pd.DataFrame(
        {"lag_s": scale.lag_time_s(lags), "n_pairs": n.astype(np.int64)}, index=pd.Index(lags, name="lag")
    )
    names = "xyz"[:d] if d <= 3 else [str(i) for i in range(d)]
    for c, name in enumerate(names):
        out[f"mean_{name}"] = mean[:, c]
    for c, name in enumerate(names):
        out[f"std_{name}"] = std[:, c]
    out["msd"] = msd
    out["ngp"] = ngp
    return out


def non_gaussian(traj, lags, pixel_size_nm=None, frame_interval_s=None, *, pos_columns=None) -> pd.DataFrame:
    """Pooled displacement moments and non-Gaussian parameter at the given lags (nm, s).

    See :func:`moments_from_sums`; lengths in nm, ``msd`` in nm².
    """
    lags = _lags(lags)
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    sums = lag_sums(traj, max(lags), pos_columns, quartic_lags=lags, vacf_lags=0)
    return moments_from_sums(sums, scale, lags)


def displacements(traj, lag: int, pixel_size_nm=None, *, pos_columns=None) -> pd.DataFrame:
    """All displacements at one lag, in nm.

    Returns
    -------
    DataFrame with ``particle``, ``frame`` (start frame of the pair), and ``dx_nm``,
    ``dy_nm`` (one column per position coordinate, named ``d<col>_nm``).
    """
    k = check_max_lag(lag)
    scale = resolve_scale(getattr(traj, "attrs", None), None, 1.0, pixel_size_nm, None)
    tracks = present_tracks(traj, pos_columns)
    layout = Layout(tracks, k)
    own, disp = layout.displacement(k)
    rows = layout.start_rows(k)
    cols = list(pos_columns or ("x", "y"))
    out = pd.DataFrame({"particle": tracks.particle[own], "frame": tracks.frame[rows]})
    for c, name in enumerate(cols):
        out[f"d{name}_nm"] = disp[:, c] * scale.length_per_px
    return out


def van_hove(
    traj, lags, pixel_size_nm=None, frame_interval_s=None, *, bins: int = 41, pos_columns=None
) -> pd.DataFrame:
    """Van Hove displacement histograms at the given lags with a Gaussian of equal variance.

    Parameters
    ----------
    traj : DataFrame
        Trajectory table (pixels, frames).
    lags : int or sequence of int
        Lags, frames.
    pixel_size_nm, frame_interval_s : float, optional
        nm/px and s; default ``traj.attrs``.
    bins : int
        Number of bins, spread symmetrically over ±max |displacement| of each lag
        (odd numbers put a bin centre at 0).

    Returns
    -------
    DataFrame in long form: ``lag`` (frames), ``lag_s`` (s), ``bin_center_nm``,
    ``bin_width_nm``, ``count``, ``density_per_nm`` (normalised histogram of the pooled
    x and y components, 1/nm) and ``gaussian_per_nm`` (normal density with the same mean
    and variance, 1/nm). Lags without displacements are left out.
    """
    lags = _lags(lags)
    if int(bins) < 2:
        raise SamemError(f"bins must be at least 2, got {bins!r}")
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    tracks = present_tracks(traj, pos_columns)
    layout = Layout(tracks, max(lags))
    parts = []
    for k in lags:
        _, disp = layout.displacement(k)
        v = disp.ravel() * scale.length_per_px
        if len(v) == 0:
            continue
        half = float(np.max(np.abs(v))) or 1.0
        counts, edges = np.histogram(v, bins=int(bins), range=(-half, half))
        width = np.diff(edges)
        centre = 0.5 * (edges[1:] + edges[:-1])
        mu, var = float(v.mean()), float(v.var())
        gauss = (np.exp(-((centre - mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)) if var > 0 else np.nan
        parts.append(
            pd.DataFrame(
                {
                    "lag": k,
                    "lag_s": float(scale.lag_time_s([k])[0]),
                    "bin_center_nm": centre,
                    "bin_width_nm": width,
                    "count": counts.astype(np.int64),
                    "density_per_nm": counts / (len(v) * width),
                    "gaussian_per_nm": gauss,
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            columns=[
                "lag",
                "lag_s",
                "bin_center_nm",
                "bin_width_nm",
                "count",
                "density_per_nm",
                "gaussian_per_nm",
            ]
        )
    return pd.concat(parts, ignore_index=True)
