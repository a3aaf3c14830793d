"""Displacement pair sums: the one definition of which position pairs enter a statistic.

Every statistic in :mod:`samem.stats` (MSD, van Hove moments, velocity autocorrelation)
is a function of per-particle, per-lag sums over *pairs of frames separated by the lag in
which the particle is present in both* (trackpy's definition for tracks with gaps). Rows
with ``present == False`` or a non-finite position count as absent. The batch functions
here and :class:`samem.stats.LiveStats` produce the same :class:`LagSums`, and all
statistics are derived from it by the same code, which is why live and batch agree.

Lengths are pixels and times are frames here; conversion happens when statistics are
derived (:mod:`samem.stats.units`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.fft

from samem.errors import SamemError

#: default position columns (x = column, y = row, pixels)
POS_COLUMNS = ("x", "y")


@dataclass
class Tracks:
    """Present positions of a trajectory table, sorted by particle then frame.

    Attributes
    ----------
    particle : ndarray, shape (P,)
        Particle ids in ascending order.
    index : ndarray of int, shape (R,)
        Row -> position of its particle in ``particle``.
    frame : ndarray of int64, shape (R,)
        Frame numbers.
    pos : ndarray of float64, shape (R, d)
        Positions in pixels.
    sigma : ndarray of float64, shape (R,), optional
        Estimated localisation error of each position (the tracker's ``sigma`` column), px
        per coordinate; NaN where unknown. None when the table has no such column.
    """

    particle: np.ndarray
    index: np.ndarray
    frame: np.ndarray
    pos: np.ndarray
    sigma: np.ndarray | None = None

    @property
    def n_particles(self) -> int:
        return len(self.particle)

    def first_last_count(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First frame, last frame and number of present frames of each particle."""
        P = self.n_particles
        count = np.bincount(self.index, minlength=P).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        if len(self.frame) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), count
        return self.frame[starts], self.frame[starts + count - 1], count


def present_tracks(traj: pd.DataFrame, pos_columns=None) -> Tracks:
    """Extract the present positions of a trackpy-style trajectory table.

    Parameters
    ----------
    traj : DataFrame
        Columns ``frame``, ``particle`` and the position columns (pixels); an optional
        boolean ``present`` column marks rows to ignore, an optional ``sigma`` column gives
        each position's estimated localisation error (px).
    pos_columns : sequence of str, optional
        Position columns, default ``("x", "y")``.

    Raises
    ------
    SamemError
        If a column is missing, frames are not integers, or a particle has two rows for
        one frame.
    """
    pos_columns = list(pos_columns or POS_COLUMNS)
    if not isinstance(traj, pd.DataFrame):
        raise SamemError(f"expected a trajectory DataFrame, got {type(traj).__name__}")
    missing = [c for c in ["frame", "particle", *pos_columns] if c not in traj.columns]
    if missing:
        raise SamemError(f"trajectory table lacks column(s) {missing}; it has {list(traj.columns)}")
    frame = traj["frame"].to_numpy()
    if len(frame) and not np.issubdtype(frame.dtype, np.integer):
        as_float = frame.astype("float64")
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise SamemError("column 'frame' must hold whole frame numbers")
    pos = traj[pos_columns].to_numpy(dtype="float64")
    keep = np.all(np.isfinite(pos), axis=1)
    if "present" in traj.columns:
        keep &= traj["present"].to_numpy().astype(bool)
    part = traj["particle"].to_numpy()[keep]
    frame = frame[keep].astype(np.int64)
    pos = pos[keep]
    sigma = traj["sigma"].to_numpy(dtype="float64")[keep] if "sigma" in traj.columns else None
    ids, index = np.unique(part, return_inverse=True)
    order = np.lexsort((frame, index))
    index, frame, pos = index[order], frame[order], pos[order]
    sigma = None if sigma is None else sigma[order]
    dup = (np.diff(index) == 0) & (np.diff(frame) == 0)
    if np.any(dup):
        i = int(np.flatnonzero(dup)[0])
        raise SamemError(f"particle {ids[index[i]]!r} has more than one row in frame {frame[i]}")
    return Tracks(ids, index.astype(np.int64), frame, pos, sigma)


@dataclass
class LagSums:
    """Per-particle sums over displacement pairs, lags 1..max_lag (pixels, frames).

    Attributes
    ----------
    particle : ndarray, shape (P,)
        Particle ids, ascending.
    first_frame, last_frame, n_present : ndarray of int64, shape (P,)
        Frame span and number of present frames of each particle.
    n : ndarray of int64, shape (P, L)
        Number of pairs at lag ``k = column + 1``.
    s1 : ndarray, shape (P, L, d)
        Sum of displacements per coordinate, px.
    s2 : ndarray, shape (P, L, d)
        Sum of squared displacements per coordinate, px².
    s4 : ndarray, shape (P, L)
        Sum of ``|Δr|⁴``, px⁴ (NaN at lags that were not computed).
    vv_n : ndarray of int64, shape (P, L)
        Number of velocity pairs at velocity lag ``k = column`` (0..L-1); a velocity is the
        displacement between two consecutive present frames, px/frame.
    vv : ndarray, shape (P, L)
        Sum of ``v_i · v_{i+k}``, px²/frame².
    max_lag : int
        L, in frames.
    sigma2, sigma_n : ndarray, shape (P,)
        Sum of the squared estimated localisation errors (``sigma``, px²) of the present
        positions whose error is known, and their number (zeros when none is known).
    """

    particle: np.ndarray
    first_frame: np.ndarray
    last_frame: np.ndarray
    n_present: np.ndarray
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    s4: np.ndarray
    vv_n: np.ndarray
    vv: np.ndarray
    max_lag: int
    sigma2: np.ndarray | None = None
    sigma_n: np.ndarray | None = None

    def __post_init__(self) -> None:
        P = len(self.particle)
        if self.sigma2 is None:
            self.sigma2 = np.zeros(P)
        if self.sigma_n is None:
            self.sigma_n = np.zeros(P, np.int64)

    @property
    def sigma_rms(self) -> np.ndarray:
        """Root mean square of each particle's estimated localisation errors, px per
        coordinate; NaN for a particle with none known, shape (P,)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.sigma_n > 0, np.sqrt(self.sigma2 / np.maximum(self.sigma_n, 1)), np.nan)

    @property
    def span(self) -> np.ndarray:
        """Frames from first to last presence, inclusive (trackpy's track length), shape (P,)."""
        return self.last_frame - self.first_frame + 1

    @property
    def ndim(self) -> int:
        return self.s1.shape[2]


def check_max_lag(max_lag) -> int:
    """Validate a maximum lag in frames (positive integer)."""
    try:
        L = int(max_lag)
    except (TypeError, ValueError):
        L = None
    if L is None or L != max_lag or L < 1:
        raise SamemError(f"max_lagtime must be a positive integer number of frames, got {max_lag!r}")
    return L


class Layout:
    """All particles packed in one array, frames compressed, NaN where absent.

    Gaps longer than ``max_lag`` frames (and particle boundaries) are shortened to
    ``max_lag + 1`` empty slots: no pair at lag <= max_lag crosses them, so every lag
    k <= max_lag is a distance of k slots and memory stays proportional to the rows.
    """

    def __init__(self, tracks: Tracks, max_lag: int):
        L = max_lag
        step = np.diff(tracks.frame)
        new_particle = np.diff(tracks.index) != 0
        step = np.where(new_particle, L + 1, np.minimum(step, L + 1))
        slot = np.concatenate([[0], np.cumsum(step)]).astype(np.int64)[: len(tracks.frame)]
        size = (int(slot[-1]) + L + 2) if len(slot) else 0
        d = tracks.pos.shape[1]
        self.a = np.full((size, d), np.nan)
        self.a[slot] = tracks.pos
        self.row = np.full(size, -1, np.int64)
        self.row[slot] = np.arange(len(slot))
        self.owner = np.zeros(size, np.int64)
        self.owner[slot] = tracks.index
        # slots after a particle's rows belong to it until the next particle begins
        self.owner = np.maximum.accumulate(self.owner)
        self.n_particles = tracks.n_particles

    def displacement(self, k: int):
        """Owners and displacements of all pairs at lag k (k <= max_lag)."""
        d = self.a[k:] - self.a[:-k]
        ok = np.isfinite(d[:, 0])
        return self.owner[:-k][ok], d[ok]

    def start_rows(self, k: int) -> np.ndarray:
        """Row numbers (in the Tracks order) of the first position of each pair at lag k."""
        ok = np.isfinite(self.a[k:, 0] - self.a[:-k, 0])
        return self.row[:-k][ok]

    def velocity_pairs(self, k: int):
        """Owners and dot products of velocity pairs separated by k frames."""
        v = self.a[1:] - self.a[:-1]
        a, b = (v, v) if k == 0 else (v[:-k], v[k:])
        dot = np.einsum("ij,ij->i", a, b)
        ok = np.isfinite(dot)
        return self.owner[: len(dot)][ok], dot[ok]


def _fft_sums(pos: np.ndarray, frame: np.ndarray, L: int):
    """Pair counts and displacement sums of one particle by FFT correlation (exact pair set).

    With a presence mask m and positions z (zero where absent), ``sum_i m_i m_{i+k}
    (z_{i+k} - z_i)^2`` expands into correlations of m, m z and m z² that are evaluated
    together by one real FFT each. To limit round-off the least-squares straight line
    ``z = c + b t`` is removed first and its exact contribution added back:
    ``Σ(Δ' + b k)² = Σ Δ'² + 2 b k Σ Δ' + n b² k²``.
    """
    span = int(frame[-1] - frame[0]) + 1
    nfft = scipy.fft.next_fast_len(span + L, real=True)
    t = (frame - frame[0]).astype(float)
    m = np.zeros(span)
    m[frame - frame[0]] = 1.0
    tc = t - t.mean()
    denom = float(tc @ tc)
    slope = (tc @ (pos - pos.mean(axis=0))) / denom if denom > 0 else np.zeros(pos.shape[1])
    z = np.zeros((span, pos.shape[1]))
    z[frame - frame[0]] = pos - pos.mean(axis=0) - tc[:, None] * slope[None, :]
    fm = scipy.fft.rfft(m, nfft)
    fz = scipy.fft.rfft(z, nfft, axis=0)
    fz2 = scipy.fft.rfft(z * z, nfft, axis=0)
    k = slice(1, L + 1)
    n = np.rint(scipy.fft.irfft(fm * fm.conj(), nfft)[k]).astype(np.int64)
    fmc = fm.conj()[:, None]
    s1 = scipy.fft.irfft(fmc * fz - fz.conj() * fm[:, None], nfft, axis=0)[k]
    s2 = scipy.fft.irfft(fmc * fz2 + fz2.conj() * fm[:, None] - 2 * (fz * fz.conj()).real, nfft, axis=0)[k]
    lag = np.arange(1, L + 1, dtype=float)[:, None]
    s2 = s2 + 2 * slope * lag * s1 + n[:, None] * (slope * lag) ** 2
    s1 = s1 + n[:, None] * slope * lag
    got = min(L, span - 1)
    n[got:] = 0
    s1[got:] = 0.0
    s2[got:] = 0.0
    # exact zeros where no pair exists (FFT leaves round-off there)
    s1[n == 0] = 0.0
    s2[n == 0] = 0.0
    return n, s1, np.maximum(s2, 0.0)


#: ``method="auto"`` uses FFT for a particle when span x max_lag is at least this (measured break-even:
#: one FFT costs about as much as 1e4 direct pair-lag sums)
FFT_MIN_WORK = 10_000


def lag_sums(
    traj: pd.DataFrame | Tracks,
    max_lag: int,
    pos_columns=None,
    *,
    method: str = "auto",
    quartic_lags=None,
    vacf_lags: int | None = None,
) -> LagSums:
    """Compute :class:`LagSums` of a trajectory table (batch).

    Parameters
    ----------
    traj : DataFrame or Tracks
        Trajectory table (pixels, frames) or its :func:`present_tracks`.
    max_lag : int
        Largest lag, frames.
    pos_columns : sequence of str, optional
        Position columns, default ``("x", "y")``.
    method : {"auto", "direct", "fft"}
        ``"direct"`` sums the pairs lag by lag for all particles at once (O(rows·L));
        ``"fft"`` correlates each particle's positions and presence mask by FFT
        (O(span log span) per particle, same pair set, round-off ~1e-12 relative);
        ``"auto"`` uses FFT for particles with ``span * max_lag >= FFT_MIN_WORK``, where it
        is faster.
    quartic_lags : iterable of int, optional
        Lags at which to compute ``s4`` (sum of ``|Δr|⁴``); default all lags.
    vacf_lags : int, optional
        Number of velocity lags (0..vacf_lags-1) for which to compute the velocity-pair
        sums ``vv_n``, ``vv``; default all ``max_lag``, 0 skips them.
    """
    L = check_max_lag(max_lag)
    if method not in ("auto", "direct", "fft"):
        raise SamemError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    tracks = traj if isinstance(traj, Tracks) else present_tracks(traj, pos_columns)
    P, d = tracks.n_particles, tracks.pos.shape[1]
    first, last, count = tracks.first_last_count()
    span = last - first + 1
    n = np.zeros((P, L), np.int64)
    s1 = np.zeros((P, L, d))
    s2 = np.zeros((P, L, d))
    s4 = np.full((P, L), np.nan)  # NaN marks lags not computed
    vv_n = np.zeros((P, L), np.int64)
    vv = np.zeros((P, L))
    use_fft = np.zeros(P, bool)
    if method == "fft":
        use_fft[:] = True
    elif method == "auto":
        use_fft = span * L >= FFT_MIN_WORK
    if quartic_lags is None:
        quartic_lags = range(1, L + 1)
    quartic = sorted({int(k) for k in quartic_lags if 1 <= k <= L})
    n_vacf = L if vacf_lags is None else max(0, min(int(vacf_lags), L))
    if np.any(~use_fft):
        rows = ~use_fft[tracks.index]
        layout = Layout(Tracks(tracks.particle, tracks.index[rows], tracks.frame[rows], tracks.pos[rows]), L)
        for k in range(1, L + 1):
            own, disp = layout.displacement(k)
            n[:, k - 1] = np.bincount(own, minlength=P)
            for c in range(d):
                s1[:, k - 1, c] = np.bincount(own, disp[:, c], minlength=P)
                s2[:, k - 1, c] = np.bincount(own, disp[:, c] ** 2, minlength=P)
    if len(quartic) or n_vacf:
        layout = Layout(tracks, L)
        for k in quartic:
            own, disp = layout.displacement(k)
            r2 = np.einsum("ij,ij->i", disp, disp)
            s4[:, k - 1] = np.bincount(own, r2 * r2, minlength=P)
        for k in range(n_vacf):
            own, dot = layout.velocity_pairs(k)
            vv_n[:, k] = np.bincount(own, minlength=P)
            vv[:, k] = np.bincount(own, dot, minlength=P)
    if np.any(use_fft):
        starts = np.concatenate([[0], np.cumsum(count)[:-1]])
        for p in np.flatnonzero(use_fft):
            rows = slice(starts[p], starts[p] + count[p])
            n[p], s1[p], s2[p] = _fft_sums(tracks.pos[rows], tracks.frame[rows], L)
    sigma2 = sigma_n = None
    if tracks.sigma is not None:
        known = np.isfinite(tracks.sigma) & (tracks.sigma >= 0)  # as LiveStats: else unknown
        sigma2 = np.bincount(tracks.index[known], tracks.sigma[known] ** 2, minlength=P)
        sigma_n = np.bincount(tracks.index[known], minlength=P).astype(np.int64)
    return LagSums(tracks.particle, first, last, count, n, s1, s2, s4, vv_n, vv, L, sigma2, sigma_n)
