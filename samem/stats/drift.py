"""Common drift of all particles (stage drift, flow), estimated and subtracted as trackpy does.

The drift at frame f is the cumulative sum, up to f, of the mean displacement between
consecutive frames over all particles present in both (:func:`trackpy.compute_drift`),
optionally smoothed by a rolling mean. Absent rows (``present == False`` or NaN
positions) are ignored. Subtraction carries the drift forward over frames where it could
not be measured (trackpy would reset it to zero there) and keeps the table's row order,
index and unit metadata.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.stats.sums import POS_COLUMNS


def _present_rows(traj: pd.DataFrame, pos_columns) -> pd.DataFrame:
    missing = [c for c in ["frame", "particle", *pos_columns] if c not in traj.columns]
    if missing:
        raise SamemError(f"trajectory table lacks column(s) {missing}")
    keep = np.all(np.isfinite(traj[pos_columns].to_numpy(dtype=float)), axis=1)
    if "present" in traj.columns:
        keep &= traj["present"].to_numpy().astype(bool)
    return traj.loc[keep, ["frame", "particle", *pos_columns]]


def compute_drift(traj: pd.DataFrame, smoothing: int = 0, pos_columns=None) -> pd.DataFrame:
    """Ensemble drift per frame, pixels.

    Parameters
    ----------
    traj : DataFrame
        Trajectory table (pixels, frames).
    smoothing : int
        Rolling-mean window over the per-frame mean displacements, frames (0 = none).
    pos_columns : list of str, optional
        Default ``["x", "y"]``.

    Returns
    -------
    DataFrame
        Cumulative drift per frame (index ``frame``, one column per coordinate, px);
        the first frame with a measured step is the first row.
    """
    import trackpy

    pos_columns = list(pos_columns or POS_COLUMNS)
    if int(smoothing) != smoothing or smoothing < 0:
        raise SamemError(f"smoothing must be a non-negative integer number of frames, got {smoothing!r}")
    rows = _present_rows(traj, pos_columns)
    if len(rows) == 0:
        return pd.DataFrame(columns=pos_columns, index=pd.Index([], name="frame"), dtype=float)
    return trackpy.compute_drift(rows, smoothing=int(smoothing), pos_columns=pos_columns)


def subtract_drift(
    traj: pd.DataFrame, drift: pd.DataFrame | None = None, smoothing: int = 0, pos_columns=None
) -> pd.DataFrame:
    """Copy of ``traj`` with the drift subtracted from the position columns.

    Parameters
    ----------
    drift : DataFrame, optional
        Output of :func:`compute_drift`; computed from ``traj`` when omitted.
    smoothing : int
        Passed to :func:`compute_drift` when ``drift`` is omitted.
    """
    pos_columns = list(pos_columns or POS_COLUMNS)
    if drift is None:
        drift = compute_drift(traj, smoothing, pos_columns)
    out = traj.copy()
    if len(drift) == 0 or len(out) == 0:
        return out
    frames = out["frame"].to_numpy()
    full = drift[pos_columns].reindex(np.arange(min(frames.min(), drift.index.min()), frames.max() + 1))
    full = full.ffill().fillna(0.0)
    shift = full.reindex(frames).to_numpy()
    for c, col in enumerate(pos_columns):
        out[col] = out[col].to_numpy(dtype=float) - shift[:, c]
    return out
