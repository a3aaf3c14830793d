"""Statistics that grow frame by frame while a video is still arriving.

:class:`LiveStats` keeps, per particle, a ring buffer of its last ``max_lag + 1``
positions and of its last ``max_lag`` velocities, and running sums per lag of the same
quantities the batch code computes (:class:`samem.stats.sums.LagSums`). Each update costs
O(max_lag) per present particle. Because every statistic is derived from those sums by
the same functions as in batch, the results after any frame equal the batch computation
on the frames seen so far (to round-off, far below 1e-9 relative).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.stats.msd import emsd_from_sums, ensemble_from_sums, imsd_from_sums
from samem.stats.sums import LagSums, check_max_lag
from samem.stats.units import resolve_scale
from samem.stats.vacf import vacf_from_sums
from samem.stats.vanhove import moments_from_sums

_NO_FRAME = np.iinfo(np.int64).min


class LiveStats:
    """Running MSD, displacement moments and velocity autocorrelation of live tracks.

    Parameters
    ----------
    mpp : float, optional
        Microns per pixel (trackpy units: MSDs in µm²).
    fps : float, optional
        Frames per second.
    max_lagtime : int
        Largest lag, frames (default 100, as trackpy).
    pixel_size_nm, frame_interval_s : float, keyword-only, optional
        samem units instead of mpp/fps (nm/px, MSDs in nm²; s).
    ndim : int
        Number of position coordinates (2: x, y).

    Notes
    -----
    Frames must arrive in increasing order; skipped frame numbers are gaps for every
    particle. A particle missing from ``positions`` (or mapped to ``None`` or a
    non-finite position) is absent in that frame; it keeps its id when it reappears.
    """

    def __init__(
        self, mpp=None, fps=None, max_lagtime=100, *, pixel_size_nm=None, frame_interval_s=None, ndim: int = 2
    ):
        self.scale = resolve_scale(None, mpp, fps, pixel_size_nm, frame_interval_s)
        self.max_lag = L = check_max_lag(max_lagtime)
        self.ndim = d = int(ndim)
        self._ids: list = []
        self._row: dict = {}
        self._last_frame: int | None = None
        self._frames_seen = 0
        cap = 8
        self._pos = np.zeros((cap, L + 1, d))
        self._pos_frame = np.full((cap, L + 1), _NO_FRAME, np.int64)
        self._vel = np.zeros((cap, L, d))
        self._vel_frame = np.full((cap, L), _NO_FRAME, np.int64)
        self._n = np.zeros((cap, L), np.int64)
        self._s1 = np.zeros((cap, L, d))
        self._s2 = np.zeros((cap, L, d))
        self._s4 = np.zeros((cap, L))
        self._vv_n = np.zeros((cap, L), np.int64)
        self._vv = np.zeros((cap, L))
        self._first = np.zeros(cap, np.int64)
        self._last = np.zeros(cap, np.int64)
        self._count = np.zeros(cap, np.int64)
        self._sigma2 = np.zeros(cap)
        self._sigma_n = np.zeros(cap, np.int64)

    # -- state -------------------------------------------------------------------------
    _ARRAYS = (
        "_pos",
        "_pos_frame",
        "_vel",
        "_vel_frame",
        "_n",
        "_s1",
        "_s2",
        "_s4",
        "_vv_n",
        "_vv",
        "_first",
        "_last",
        "_count",
        "_sigma2",
        "_sigma_n",
    )

    def _grow(self, need: int) -> None:
        cap = len(self._first)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name in self._ARRAYS:
            old = getattr(self, name)
            fill = _NO_FRAME if name in ("_pos_frame", "_vel_frame") else 0
            arr = np.full((new, *old.shape[1:]), fill, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def _rows_for(self, ids) -> np.ndarray:
        rows = []
        for pid in ids:
            r = self._row.get(pid)
            if r is None:
                r = self._row[pid] = len(self._ids)
                self._ids.append(pid)
            rows.append(r)
        self._grow(len(self._ids))
        return np.asarray(rows, dtype=np.int64)

    @property
    def n_frames(self) -> int:
        """Number of updates so far."""
        return self._frames_seen

    @property
    def particles(self) -> list:
        """Ids of all particles seen so far, ascending."""
        return sorted(self._ids)

    # -- update ------------------------------------------------------------------------
    def update(self, frame: int, positions: Mapping, sigmas: Mapping | None = None) -> None:
        """Add one frame.

        Parameters
        ----------
        frame : int
            Frame number, larger than the previous update's.
        positions : Mapping
            particle id -> (x, y) in pixels; ``None`` or NaN for an absent particle, or
            leave it out.
        sigmas : Mapping, optional
            particle id -> estimated localisation error of its position (the tracker's
            ``sigma``, px per coordinate); missing or NaN where unknown.

        Raises
        ------
        SamemError
            If frames do not increase or a position has the wrong length.
        """
        try:
            f = int(frame)
        except (TypeError, ValueError):
            raise SamemError(f"frame must be an integer, got {frame!r}") from None
        if f != frame:
            raise SamemError(f"frame must be an integer, got {frame!r}")
        if self._last_frame is not None and f <= self._last_frame:
            raise SamemError(f"frames must increase: got {f} after {self._last_frame}")
        if not isinstance(positions, Mapping):
            raise SamemError(f"positions must map particle id -> (x, y), got {type(positions).__name__}")
        if sigmas is not None and not isinstance(sigmas, Mapping):
            raise SamemError(f"sigmas must map particle id -> error (px), got {type(sigmas).__name__}")
        ids, pts = [], []
        for pid, xy in positions.items():
            if xy is None:
                continue
            p = np.asarray(xy, dtype=float).ravel()
            if p.shape != (self.ndim,):
                raise SamemError(f"position of particle {pid!r} must have {self.ndim} values, got {xy!r}")
            if np.all(np.isfinite(p)):
                ids.append(pid)
                pts.append(p)
        self._frames_seen += 1
        self._last_frame = f
        if not ids:
            return
        rows = self._rows_for(ids)
        P = np.asarray(pts)
        self._add(f, rows, P)
        if sigmas:
            err = np.array([_error(sigmas.get(pid)) for pid in ids])
            known = np.isfinite(err)
            self._sigma2[rows[known]] += err[known] ** 2
            self._sigma_n[rows[known]] += 1

    def _add(self, f: int, rows: np.ndarray, P: np.ndarray) -> None:
        L = self.max_lag
        ks = np.arange(1, L + 1)
        slots = (f - ks) % (L + 1)
        valid = self._pos_frame[rows][:, slots] == (f - ks)[None, :]  # (R, L)
        disp = np.where(valid[:, :, None], P[:, None, :] - self._pos[rows][:, slots], 0.0)  # (R, L, d)
        sq = disp * disp
        r2 = sq.sum(axis=2)
        self._n[rows] += valid
        self._s1[rows] += disp
        self._s2[rows] += sq
        self._s4[rows] += r2 * r2
        # velocities: displacement from the previous frame, px/frame
        has_v = valid[:, 0]
        if np.any(has_v):
            vr = rows[has_v]
            v = disp[has_v, 0, :]
            kv = np.arange(1, L)
            vslots = (f - kv) % L
            vok = self._vel_frame[vr][:, vslots] == (f - kv)[None, :]
            dots = np.einsum("rkd,rd->rk", self._vel[vr][:, vslots], v)
            self._vv_n[vr, 0] += 1
            self._vv[vr, 0] += np.einsum("rd,rd->r", v, v)
            self._vv_n[vr, 1:] += vok
            self._vv[vr, 1:] += np.where(vok, dots, 0.0)
            self._vel[vr, f % L] = v
            self._vel_frame[vr, f % L] = f
        new = self._count[rows] == 0
        self._first[rows[new]] = f
        self._last[rows] = f
        self._count[rows] += 1
        self._pos[rows, f % (L + 1)] = P
        self._pos_frame[rows, f % (L + 1)] = f

    # -- results -----------------------------------------------------------------------
    def sums(self) -> LagSums:
        """Snapshot of the running sums, particles in ascending id order (pixels, frames)."""
        k = len(self._ids)
        order = np.argsort(np.asarray(self._ids), kind="stable") if k else np.zeros(0, np.int64)
        ids = np.asarray(self._ids)[order] if k else np.zeros(0)
        seen = self._count[:k][order] > 0
        order, ids = order[seen], ids[seen]
        return LagSums(
            particle=ids,
            first_frame=self._first[order].copy(),
            last_frame=self._last[order].copy(),
            n_present=self._count[order].copy(),
            n=self._n[order].copy(),
            s1=self._s1[order].copy(),
            s2=self._s2[order].copy(),
            s4=self._s4[order].copy(),
            vv_n=self._vv_n[order].copy(),
            vv=self._vv[order].copy(),
            max_lag=self.max_lag,
            sigma2=self._sigma2[order].copy(),
            sigma_n=self._sigma_n[order].copy(),
        )

    def imsd(self, statistic: str = "msd") -> pd.DataFrame:
        """Per-particle MSD table, as :func:`samem.stats.imsd` on the frames so far."""
        return imsd_from_sums(self.sums(), self.scale, statistic)

    def emsd(self, detail: bool = False):
        """Ensemble MSD, as :func:`samem.stats.emsd` on the frames so far."""
        return emsd_from_sums(self.sums(), self.scale, detail)

    def ensemble_msd(self) -> pd.DataFrame:
        """Ensemble MSD with standard error (:func:`samem.stats.msd.ensemble_from_sums`)."""
        return ensemble_from_sums(self.sums(), self.scale)

    def vacf(self, max_lag: int | None = None) -> pd.DataFrame:
        """Velocity autocorrelation (:func:`samem.stats.vacf.vacf_from_sums`) of the frames so far."""
        return vacf_from_sums(self.sums(), self.scale, max_lag)

    def displacement_moments(self, lags=None) -> pd.DataFrame:
        """Pooled displacement moments and non-Gaussian parameter (:func:`moments_from_sums`)."""
        return moments_from_sums(self.sums(), self.scale, lags)

    def statistics(self, config=None):
        """All statistics in nm and s (:class:`samem.stats.summary.Statistics`), as the batch
        :func:`samem.stats.summary.compute_statistics` gives for the frames so far (without drift
        subtraction)."""
        from samem.stats.summary import statistics_from_sums

        return statistics_from_sums(
            self.sums(), self.scale.pixel_size_nm, self.scale.frame_interval_s, config
        )

    def summary(self, config=None) -> dict:
        """JSON-serialisable summary (``stats.json``) of the frames so far."""
        return self.statistics(config).summary


def _error(value) -> float:
    """A localisation error as a float: NaN when unknown, not a number or negative."""
    try:
        e = float(value)
    except (TypeError, ValueError):
        return np.nan
    return e if e >= 0 else np.nan
