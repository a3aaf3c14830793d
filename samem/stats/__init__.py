"""Trajectories and their statistics in physical units, batch and live.

Tables follow trackpy's convention (columns ``frame, particle, x, y`` in pixels, x =
column) with the unit metadata ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s) in
``df.attrs``. See docs/statistics.md for definitions and conventions. Figures live in
:mod:`samem.stats.plots` (imported on demand: it loads matplotlib).
"""

from samem.stats.drift import compute_drift, subtract_drift
from samem.stats.fit import MsdFit, fit_msd, select_lags
from samem.stats.live import LiveStats
from samem.stats.msd import emsd, ensemble_msd, imsd
from samem.stats.summary import Statistics, compute_statistics, read_stats, summarize, write_stats
from samem.stats.trajectories import TrajectoryBuilder, link_detections, mask_shape, to_physical
from samem.stats.units import Scale, resolve_scale
from samem.stats.vacf import vacf
from samem.stats.vanhove import displacements, non_gaussian, van_hove

__all__ = [
    "LiveStats",
    "MsdFit",
    "Scale",
    "Statistics",
    "TrajectoryBuilder",
    "compute_drift",
    "compute_statistics",
    "displacements",
    "emsd",
    "ensemble_msd",
    "fit_msd",
    "imsd",
    "link_detections",
    "mask_shape",
    "non_gaussian",
    "read_stats",
    "resolve_scale",
    "select_lags",
    "subtract_drift",
    "summarize",
    "to_physical",
    "vacf",
    "van_hove",
    "write_stats",
]
