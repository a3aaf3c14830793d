"""Fits of ``MSD(t) = 4 D t^α + offset`` with uncertainties, accounting for localisation error.

The offset absorbs static localisation error (``4σ²`` for a per-coordinate error σ) and
motion blur (which lowers it). Points of an MSD curve are strongly correlated, so an
ordinary least-squares fit misstates uncertainties. Here the fit is generalised least
squares with the covariance of the MSD estimates computed for a Gaussian process with
stationary increments whose MSD is the fitted model (exact for Brownian and fractional
Brownian motion with Gaussian localisation error, and for stationary confined motion):
for one coordinate with variogram ``g(t) = MSD(t)/2``, two lag-j and lag-k squared
displacements starting δ frames apart have covariance ``2 C_jk(δ)²`` with
``C_jk(δ) = [g(j - δ) + g(δ + k) - g(δ + k - j) - g(δ)] / 2``. The covariance is
evaluated at a first weighted fit, the fit repeated, the covariance re-evaluated and the
final fit done; parameter uncertainties are ``(Jᵀ Σ⁻¹ J)⁻¹``. Gaps are handled
approximately (the gapless covariance scaled by the pair counts and the present fraction).

Lag range: lags 1 .. K with ``K = max(min_lags, fraction × span)`` capped by the largest
lag computed and span - 1; when that range has more than ``max_points`` lags, about
``max_points`` log-spaced lags are used. The free-α fit and the α = 1 fit (D in nm²/s)
use the same lags, stated in the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from samem.errors import SamemError

#: defaults of the lag selection (overridden by the ``fit`` section of configs/stats.yaml)
FIT_DEFAULTS = {"fraction": 0.25, "min_lags": 4, "max_points": 12}
#: range allowed for α; an estimate at a bound is flagged in ``MsdFit.message``
ALPHA_BOUNDS = (0.02, 2.5)


@dataclass
class MsdFit:
    """Result of one MSD fit (lengths in the MSD's unit, times in s).

    ``D`` is in length²/s^α (nm²/s when α = 1). ``ok`` is False (and values NaN) when
    there were too few usable lags or the data admit no reliable fit (a degenerate model
    covariance, a numerical failure); ``message`` says why. :func:`fit_msd` never raises
    for such data.
    """

    D: float = np.nan
    D_err: float = np.nan
    alpha: float = np.nan
    alpha_err: float = np.nan
    offset: float = np.nan
    offset_err: float = np.nan
    lag_min_s: float = np.nan
    lag_max_s: float = np.nan
    n_lags: int = 0
    chi2_red: float = np.nan
    ok: bool = False
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def select_lags(span: int, max_lag: int, fraction: float = 0.25, min_lags: int = 4, max_points: int = 12):
    """Lags (frames) used to fit a track of ``span`` frames; see the module docstring."""
    top = int(min(max_lag, span - 1, max(min_lags, np.floor(fraction * span))))
    if top < 1:
        return np.zeros(0, np.int64)
    if top <= max_points:
        return np.arange(1, top + 1)
    return np.unique(np.round(np.geomspace(1, top, max_points)).astype(np.int64))


def _variogram(lag_frames: np.ndarray, D: float, alpha: float, offset: float, dt: float, ndim: int):
    """Per-coordinate MSD g(t) of the model at integer lags (g(0) = 0), length²."""
    t = np.abs(lag_frames).astype(float)
    g = (4 * D * (t * dt) ** alpha + offset) / ndim  # the model MSD is shared equally by the coordinates
    g = np.maximum(g, 0.0)
    return np.where(t == 0, 0.0, g)


def msd_covariance(
    lags, n_frames: int, D: float, alpha: float, offset: float, dt: float, *, ndim: int = 2, n_pairs=None
) -> np.ndarray:
    """Covariance matrix of time-averaged MSD estimates at ``lags`` for the model track.

    Parameters
    ----------
    lags : array of int
        Lags, frames.
    n_frames : int
        Track span, frames.
    D, alpha, offset : float
        Model ``MSD(t) = 4 D t^α + offset`` (length², t in s), split equally over
        ``ndim`` coordinates.
    dt : float
        Frame interval, s.
    n_pairs : array of int, optional
        Actual pair counts per lag (gapped tracks); default the gapless ``n_frames - lag``.

    Returns
    -------
    ndarray, shape (K, K), length⁴.
    """
    lags = np.asarray(lags, dtype=np.int64)
    N = int(n_frames)
    K = len(lags)
    delta = np.arange(-(N - 1), N)
    g_all = _variogram(np.arange(0, 3 * N + 1), D, alpha, offset, dt, ndim)

    def g(x):
        return g_all[np.abs(x)]

    cov = np.zeros((K, K))
    for a in range(K):
        j = lags[a]
        k = lags[a:, None]  # (K - a, 1), lags >= j
        d = delta[None, :]
        cnt = np.maximum(np.minimum(N - j - 1, N - k - 1 - d) - np.maximum(0, -d) + 1, 0)
        c = 0.5 * (g(j - d) + g(d + k) - g(d + k - j) - g(d))
        cov[a, a:] = cov[a:, a] = 2 * ndim * np.sum(cnt * c * c, axis=1)
    gapless = (N - lags).astype(float)
    if n_pairs is None:
        return cov / np.outer(gapless, gapless)
    n_pairs = np.asarray(n_pairs, dtype=float)
    present = np.sqrt(n_pairs / gapless)  # ≈ fraction of frames present
    q2 = float(np.mean(present)) ** 2
    return cov * q2 / np.outer(n_pairs, n_pairs)


def _whiten(cov: np.ndarray, scale: np.ndarray):
    """Cholesky factor of a covariance (regularised if needed), in scaled units."""
    c = cov / np.outer(scale, scale)
    c = 0.5 * (c + c.T)
    jitter = 1e-12 * max(float(np.trace(c)) / len(c), 1e-300)
    for _ in range(8):
        try:
            return scipy.linalg.cholesky(c + jitter * np.eye(len(c)), lower=True)
        except np.linalg.LinAlgError:
            jitter *= 100
    return np.diag(np.sqrt(np.maximum(np.diag(c), 1e-300)))


def _gls(t, y, cov, fixed_alpha, start):
    """One generalised least-squares fit; returns params (D, alpha, offset), their covariance, chi²."""
    s = np.abs(y) + 1e-300
    inv_chol = np.linalg.inv(_whiten(cov, s))

    def white(r):
        return inv_chol @ (r / (s[:, None] if r.ndim == 2 else s))

    if fixed_alpha is not None:
        X = np.column_stack([4 * t**fixed_alpha, np.ones_like(t)])
        Xw = white(X)
        yw = white(y)
        beta, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
        pcov = np.linalg.pinv(Xw.T @ Xw)
        chi2 = float(np.sum((yw - Xw @ beta) ** 2))
        full = np.full((3, 3), 0.0)
        full[np.ix_([0, 2], [0, 2])] = pcov
        return np.array([beta[0], fixed_alpha, beta[1]]), full, chi2

    def resid(p):
        return white(y - (4 * p[0] * t ** p[1] + p[2]))

    def jac(p):
        ta = t ** p[1]
        J = np.column_stack([4 * ta, 4 * p[0] * ta * np.log(t), np.ones_like(t)])
        return -white(J)

    x0 = np.array([max(start[0], 1e-300), start[1], start[2]])
    scale = np.array([max(abs(x0[0]), 1e-300), 1.0, max(float(np.max(np.abs(y))), 1e-300)])
    lo = np.array([0.0, ALPHA_BOUNDS[0], -0.5 * abs(y[0])])
    hi = np.array([np.inf, ALPHA_BOUNDS[1], np.inf])
    x0 = np.minimum(np.maximum(x0, lo + 1e-9 * np.maximum(np.abs(lo), 1e-300)), hi - 1e-9)
    res = scipy.optimize.least_squares(resid, x0, jac=jac, bounds=(lo, hi), x_scale=scale, method="trf")
    J = res.jac
    pcov = np.linalg.pinv(J.T @ J)
    return res.x, pcov, float(np.sum(res.fun**2))


def _start(t, y, fixed_alpha):
    """Initial (D, alpha, offset) from a log-log slope and a straight-line fit."""
    if fixed_alpha is None:
        pos = y > 0
        if pos.sum() >= 2 and t[pos].max() > t[pos].min():
            alpha = float(np.polyfit(np.log(t[pos]), np.log(y[pos]), 1)[0])
        else:
            alpha = 1.0
        alpha = float(np.clip(alpha, 0.05, 2.0))
    else:
        alpha = fixed_alpha
    X = np.column_stack([4 * t**alpha, np.ones_like(t)])
    (D, off), *_ = np.linalg.lstsq(X, y, rcond=None)
    if not D > 0:
        D, off = float(np.mean(y) / (4 * np.mean(t**alpha))), 0.0
    return np.array([D, alpha, off])


class _NoFit(Exception):
    """The data admit no reliable fit; the message says why."""


def _usable_cov(c: np.ndarray, p) -> np.ndarray:
    """``c`` if it is a usable covariance (finite, positive variances), else :class:`_NoFit`."""
    c = np.asarray(c, dtype=float)
    d = np.diag(c) if c.ndim == 2 else np.zeros(0)
    if c.ndim != 2 or not np.all(np.isfinite(c)) or not np.all(d > 0):
        raise _NoFit(
            f"no reliable fit: the fitted model (D={p[0]:.3g}, alpha={p[1]:.3g}, offset={p[2]:.3g}) "
            "predicts no positive MSD at some lags, so the MSD covariance and uncertainties are undefined"
        )
    return c


def _passes(t, y, n_pairs, fixed_alpha, model_cov, iterate: bool, iterations: int):
    """The weighted first pass and the covariance passes; raises :class:`_NoFit` when degenerate."""
    p = _start(t, y, fixed_alpha)
    if not np.all(np.isfinite(p)):
        raise _NoFit("no reliable fit: no finite starting point (MSD values out of range)")
    # first pass: independent points with variance ∝ MSD² / (number of pairs)
    weights = np.diag(
        (y**2) / (n_pairs if n_pairs is not None else np.maximum(1, len(y) - np.arange(len(y))))
    )
    p, pcov, chi2 = _gls(t, y, _usable_cov(weights, p), fixed_alpha, p)
    for _ in range(max(1, iterations) if iterate else 1):
        p, pcov, chi2 = _gls(t, y, _usable_cov(model_cov(p), p), fixed_alpha, p)
    return p, pcov, chi2


def fit_msd(
    lags,
    msd,
    frame_interval_s: float,
    n_frames,
    *,
    n_pairs=None,
    fixed_alpha=None,
    cov=None,
    ndim: int = 2,
    iterations: int = 2,
) -> MsdFit:
    """Fit ``MSD(t) = 4 D t^α + offset`` to an MSD curve by generalised least squares.

    Parameters
    ----------
    lags : array of int
        Lags, frames (choose them with :func:`select_lags`).
    msd : array
        MSD at those lags, length² (NaN entries are ignored).
    frame_interval_s : float
        Frame interval, s.
    n_frames : int or callable
        Track span in frames, used for the covariance model; or a callable
        ``(lags, D, alpha, offset) -> covariance`` (used for ensemble curves).
    n_pairs : array of int, optional
        Pair counts at those lags, for gapped tracks.
    fixed_alpha : float, optional
        Hold α at this value (1 for a Brownian fit of D in length²/s).
    cov : ndarray, optional
        Use this covariance instead of the model (no iteration).
    ndim : int
        Coordinates per position.
    iterations : int
        Covariance re-evaluations.
    """
    lags = np.asarray(lags, dtype=np.int64)
    msd = np.asarray(msd, dtype=float)
    ok = np.isfinite(msd)
    if n_pairs is not None:
        n_pairs = np.asarray(n_pairs)
        ok &= n_pairs > 0
    n_par = 2 if fixed_alpha is not None else 3
    if ok.sum() < n_par + 1:
        return MsdFit(n_lags=int(ok.sum()), message=f"too few lags with data ({int(ok.sum())} < {n_par + 1})")
    lags, y = lags[ok], msd[ok]
    n_pairs = n_pairs[ok] if n_pairs is not None else None
    dt = float(frame_interval_s)
    t = lags * dt
    if not np.any(y > 0):
        return MsdFit(n_lags=len(lags), message="MSD is zero at every lag")

    def model_cov(p):
        if cov is not None:
            return cov[np.ix_(ok, ok)]
        if callable(n_frames):
            return n_frames(lags, *p)
        return msd_covariance(lags, n_frames, p[0], p[1], p[2], dt, ndim=ndim, n_pairs=n_pairs)

    try:
        with np.errstate(all="ignore"):
            p, pcov, chi2 = _passes(t, y, n_pairs, fixed_alpha, model_cov, cov is None, iterations)
    except _NoFit as exc:
        return MsdFit(n_lags=len(lags), message=str(exc))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # numerical breakdown
        return MsdFit(n_lags=len(lags), message=f"no reliable fit: the fit failed numerically ({exc})")
    err = np.sqrt(np.maximum(np.diag(pcov), 0.0))
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(err)) and np.isfinite(chi2)):
        return MsdFit(n_lags=len(lags), message="no reliable fit: non-finite estimates or uncertainties")
    dof = len(y) - n_par
    message = ""
    if fixed_alpha is None and not ALPHA_BOUNDS[0] + 1e-6 < p[1] < ALPHA_BOUNDS[1] - 1e-6:
        message = f"alpha at the bound of {ALPHA_BOUNDS}: its uncertainty is not reliable"
    return MsdFit(
        D=float(p[0]),
        D_err=float(err[0]),
        alpha=float(p[1]),
        alpha_err=float(err[1]) if fixed_alpha is None else 0.0,
        offset=float(p[2]),
        offset_err=float(err[2]),
        lag_min_s=float(t[0]),
        lag_max_s=float(t[-1]),
        n_lags=len(lags),
        chi2_red=float(chi2 / dof) if dof > 0 else np.nan,
        ok=True,
        message=message,
    )


def check_fit_config(cfg: dict | None) -> dict:
    """Merge a ``fit`` config section over :data:`FIT_DEFAULTS`, validating values."""
    out = dict(FIT_DEFAULTS)
    for key, val in (cfg or {}).items():
        if key not in out:
            raise SamemError(f"unknown fit option {key!r}; known: {sorted(out)}")
        out[key] = val
    if not 0 < float(out["fraction"]) <= 1:
        raise SamemError(f"fit.fraction must be in (0, 1], got {out['fraction']!r}")
    for key in ("min_lags", "max_points"):
        if int(out[key]) < 3:
            raise SamemError(f"fit.{key} must be at least 3, got {out[key]!r}")
    return out
