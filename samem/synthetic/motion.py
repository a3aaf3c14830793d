"""Exact trajectories of single particles, in nanometres, sampled at a fixed frame interval.

Every function draws a path from the exact finite-dimensional distribution of its process
at times ``0, dt_s, 2 dt_s, ...`` (no Euler discretisation error), so tests and statistics
can compare measured MSDs with the closed forms below. Paths have shape ``(n_frames, ndim)``
and start at the origin unless a start is given.

Mean squared displacement at lag ``tau`` (s) in ``ndim`` dimensions:

============  ======================================================  =========================
process       MSD(tau), nm^2                                          function
============  ======================================================  =========================
Brownian      ``2 ndim D tau``                                        :func:`brownian`
fractional    ``2 ndim D tau**alpha`` (D in nm^2/s^alpha)             :func:`fractional_brownian`
confined      ``2 ndim (kT/k) (1 - exp(-tau k D / kT))``              :func:`confined`
directed      ``2 ndim D tau + |v|^2 tau^2``                          :func:`directed`
============  ======================================================  =========================
"""

from __future__ import annotations

import numpy as np

#: Boltzmann constant in pN nm / K
KB_PN_NM_PER_K = 1.380649e-2


def _check(n_frames: int, dt_s: float, D_nm2_s: float) -> None:
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if dt_s <= 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    if D_nm2_s < 0:
        raise ValueError(f"D_nm2_s must be >= 0, got {D_nm2_s}")


def _path(steps: np.ndarray) -> np.ndarray:
    """Positions from increments, starting at the origin: shape (n_frames, ndim)."""
    out = np.zeros((steps.shape[0] + 1, steps.shape[1]))
    np.cumsum(steps, axis=0, out=out[1:])
    return out


def brownian(
    n_frames: int, D_nm2_s: float, dt_s: float, rng: np.random.Generator, ndim: int = 2
) -> np.ndarray:
    """Free Brownian motion.

    Parameters
    ----------
    n_frames : int
        Number of positions (frames), including the start.
    D_nm2_s : float
        Diffusion coefficient (nm^2/s); each axis gets variance ``2 D dt`` per step.
    dt_s : float
        Time between positions (s).
    rng : numpy.random.Generator
    ndim : int
        Number of spatial dimensions.

    Returns
    -------
    ndarray, shape (n_frames, ndim)
        Positions (nm) starting at the origin.
    """
    _check(n_frames, dt_s, D_nm2_s)
    steps = rng.standard_normal((n_frames - 1, ndim)) * np.sqrt(2.0 * D_nm2_s * dt_s)
    return _path(steps)


def fractional_gaussian_noise(n: int, hurst: float, rng: np.random.Generator, ndim: int = 2) -> np.ndarray:
    """Exact unit-variance fractional Gaussian noise by circulant embedding (Davies-Harte).

    The autocovariance is ``g(k) = (|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2``. The circulant
    embedding of ``g`` is non-negative definite for every ``0 < H < 1``, so the samples
    have exactly this covariance. One complex FFT yields two independent series (real and
    imaginary parts), used for two axes.

    Returns
    -------
    ndarray, shape (n, ndim)
    """
    if not 0.0 < hurst < 1.0:
        raise ValueError(f"Hurst exponent must lie in (0, 1), got {hurst}")
    if n < 1:
        return np.zeros((0, ndim))
    k = np.arange(n + 1, dtype=float)
    two_h = 2.0 * hurst
    g = 0.5 * (np.abs(k + 1) ** two_h - 2.0 * k**two_h + np.abs(k - 1) ** two_h)
    row = np.concatenate([g, g[-2:0:-1]])  # length 2n, symmetric circulant first row
    eig = np.fft.fft(row).real
    if eig.min() < -1e-8 * eig.max():  # cannot happen for fGn; guards against misuse
        raise ArithmeticError("circulant embedding is not non-negative definite")
    scale = np.sqrt(np.clip(eig, 0.0, None) / row.size)
    cols = []
    for _ in range((ndim + 1) // 2):
        z = rng.standard_normal(row.size) + 1j * rng.standard_normal(row.size)
        y = np.fft.fft(scale * z)[:n]
        cols += [y.real, y.imag]
    return np.stack(cols[:ndim], axis=1)


def fractional_brownian(
    n_frames: int, D_nm2_s: float, alpha: float, dt_s: float, rng: np.random.Generator, ndim: int = 2
) -> np.ndarray:
    """Fractional Brownian motion with ``MSD(tau) = 2 ndim D tau**alpha``.

    Parameters
    ----------
    D_nm2_s : float
        Generalised diffusion coefficient (nm^2/s^alpha; nm^2/s when ``alpha == 1``).
    alpha : float
        Anomalous exponent in (0, 2): < 1 subdiffusive (anti-persistent steps),
        > 1 superdiffusive (persistent steps). The Hurst exponent is ``alpha / 2``.

    Returns
    -------
    ndarray, shape (n_frames, ndim)
        Positions (nm) starting at the origin.
    """
    _check(n_frames, dt_s, D_nm2_s)
    if not 0.0 < alpha < 2.0:
        raise ValueError(f"alpha must lie in (0, 2), got {alpha}")
    noise = fractional_gaussian_noise(n_frames - 1, alpha / 2.0, rng, ndim)
    return _path(noise * np.sqrt(2.0 * D_nm2_s * dt_s**alpha))


def trap_relaxation_rate(D_nm2_s: float, stiffness_pN_nm: float, temperature_K: float = 298.15) -> float:
    """Relaxation rate ``k D / kT`` (1/s) of a particle in a harmonic trap."""
    return stiffness_pN_nm * D_nm2_s / (KB_PN_NM_PER_K * temperature_K)


def trap_variance_nm2(stiffness_pN_nm: float, temperature_K: float = 298.15) -> float:
    """Stationary positional variance per axis ``kT / k`` (nm^2) in a harmonic trap."""
    return KB_PN_NM_PER_K * temperature_K / stiffness_pN_nm


def confined(
    n_frames: int,
    D_nm2_s: float,
    dt_s: float,
    stiffness_pN_nm: float,
    rng: np.random.Generator,
    temperature_K: float = 298.15,
    start_nm: np.ndarray | None = None,
    ndim: int = 2,
) -> np.ndarray:
    """Brownian motion in a harmonic trap (Ornstein-Uhlenbeck), exact update.

    ``x[n+1] = a x[n] + sqrt(var (1 - a^2)) xi`` with ``a = exp(-rate dt)``,
    ``rate = k D / kT`` and stationary variance ``var = kT / k`` per axis.

    Parameters
    ----------
    stiffness_pN_nm : float
        Trap stiffness k (pN/nm), > 0.
    temperature_K : float
        Temperature (K) setting kT.
    start_nm : array of shape (ndim,), optional
        Start relative to the trap centre (nm); by default drawn from the stationary
        distribution, so the whole path is stationary.

    Returns
    -------
    ndarray, shape (n_frames, ndim)
        Positions (nm) relative to the trap centre (the origin).
    """
    _check(n_frames, dt_s, D_nm2_s)
    if stiffness_pN_nm <= 0:
        raise ValueError(f"stiffness_pN_nm must be > 0, got {stiffness_pN_nm}")
    var = trap_variance_nm2(stiffness_pN_nm, temperature_K)
    a = np.exp(-trap_relaxation_rate(D_nm2_s, stiffness_pN_nm, temperature_K) * dt_s)
    if start_nm is None:
        start = rng.standard_normal(ndim) * np.sqrt(var)
    else:
        start = np.asarray(start_nm, dtype=float).reshape(ndim)
    drive = rng.standard_normal((n_frames, ndim)) * np.sqrt(var * (1.0 - a * a))
    drive[0] = start
    from scipy.signal import lfilter  # imported here: scipy.signal takes ~1 s to import

    return lfilter([1.0], [1.0, -a], drive, axis=0)


def directed(
    n_frames: int,
    D_nm2_s: float,
    dt_s: float,
    velocity_nm_s: tuple[float, ...] | np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Brownian motion plus a constant velocity (nm/s) per axis.

    Returns
    -------
    ndarray, shape (n_frames, len(velocity_nm_s))
        Positions (nm) starting at the origin.
    """
    v = np.asarray(velocity_nm_s, dtype=float)
    path = brownian(n_frames, D_nm2_s, dt_s, rng, ndim=v.size)
    return path + np.arange(n_frames)[:, None] * dt_s * v[None, :]


def rotation(n_frames: int, D_rad2_s: float, dt_s: float, rng: np.random.Generator, angle0_rad: float = 0.0):
    """In-plane rotational Brownian motion: angles (rad), shape (n_frames,)."""
    return angle0_rad + brownian(n_frames, D_rad2_s, dt_s, rng, ndim=1)[:, 0]


def drift(n_frames: int, dt_s: float, velocity_nm_s, jitter_nm2_s: float, rng: np.random.Generator):
    """Stage drift: constant velocity (nm/s) plus a random walk with coefficient ``jitter_nm2_s``."""
    return directed(n_frames, jitter_nm2_s, dt_s, velocity_nm_s, rng)


def msd_theory(model: str, lag_s, D_nm2_s: float, ndim: int = 2, **kw) -> np.ndarray:
    """Closed-form MSD (nm^2) at lags ``lag_s`` (s) for a motion model (see module table).

    ``kw``: ``alpha`` (anomalous), ``stiffness_pN_nm`` and ``temperature_K`` (confined),
    ``speed_nm_s`` (directed).
    """
    tau = np.asarray(lag_s, dtype=float)
    if model == "brownian":
        return 2 * ndim * D_nm2_s * tau
    if model == "anomalous":
        return 2 * ndim * D_nm2_s * tau ** kw["alpha"]
    if model == "confined":
        t_k = kw.get("temperature_K", 298.15)
        var = trap_variance_nm2(kw["stiffness_pN_nm"], t_k)
        rate = trap_relaxation_rate(D_nm2_s, kw["stiffness_pN_nm"], t_k)
        return 2 * ndim * var * (1.0 - np.exp(-rate * tau))
    if model == "directed":
        return 2 * ndim * D_nm2_s * tau + (kw["speed_nm_s"] * tau) ** 2
    raise ValueError(f"unknown motion model {model!r}")
