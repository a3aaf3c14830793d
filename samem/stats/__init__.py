"""Trajectories and their statistics in physical units, batch and live.

Tables follow trackpy's convention (columns ``frame, particle, x, y`` in pixels, x =
column) with the unit metadata ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s) in
``df.attrs``. See docs/statistics.md for definitions and conventions.
"""

from samem.stats.msd import emsd, ensemble_msd, imsd
from samem.stats.units import Scale, resolve_scale

__all__ = ["Scale", "emsd", "ensemble_msd", "imsd", "resolve_scale"]
