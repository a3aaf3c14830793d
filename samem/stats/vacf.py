"""Velocity autocorrelation.

A velocity is the displacement between two consecutive present frames divided by the
frame interval (nm/s); it is undefined across a gap. ``C(k) = <v(f) · v(f + k)>`` is the
mean over all pairs of defined velocities k frames apart, pooled over particles, and
``C(k)/C(0)`` its normalised form. For Brownian motion with static localisation error σ
(per coordinate), ``C(1)/C(0) = -σ² / (2 D Δt + 2 σ²)`` and 0 beyond; for fractional
Brownian motion of exponent α, ``C(1)/C(0) = 2^(α-1) - 1``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samem.stats.sums import LagSums, check_max_lag, lag_sums
from samem.stats.units import Scale, resolve_scale


def vacf_from_sums(sums: LagSums, scale: Scale, max_lag: int | None = None) -> pd.DataFrame:
    """Velocity autocorrelation from :class:`LagSums`.

    Returns
    -------
    DataFrame indexed by ``lag`` (frames, from 0) with ``lag_s`` (s), ``vacf`` (length
    unit²/s²), ``vacf_norm`` (``C(k)/C(0)``) and ``n_pairs``.
    """
    K = sums.max_lag if max_lag is None else min(check_max_lag(max_lag), sums.max_lag)
    n = sums.vv_n[:, :K].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = sums.vv[:, :K].sum(axis=0) / n * (scale.length_per_px / scale.frame_interval_s) ** 2
        norm = c / c[0] if K else c
    lags = np.arange(K)
    return pd.DataFrame(
        {"lag_s": scale.lag_time_s(lags), "vacf": c, "vacf_norm": norm, "n_pairs": n.astype(np.int64)},
        index=pd.Index(lags, name="lag"),
    )


def vacf(
    traj, pixel_size_nm=None, frame_interval_s=None, max_lag: int = 20, *, pos_columns=None
) -> pd.DataFrame:
    """Velocity autocorrelation of a trajectory table, lags 0..max_lag-1 frames.

    ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s) default to ``traj.attrs``;
    ``vacf`` is in nm²/s². See :func:`vacf_from_sums` for the columns.
    """
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    L = check_max_lag(max_lag)
    sums = lag_sums(traj, L, pos_columns, method="direct", quartic_lags=(), vacf_lags=L)
    return vacf_from_sums(sums, scale, L)
