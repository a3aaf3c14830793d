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
CTRW          ``2 ndim D tau**alpha`` for tau >> waits (asymptotic)   :func:`ctrw`
============  ======================================================  =========================

The continuous-time random walk (CTRW) models pinning: the particle sits still for a
heavy-tailed waiting time, then jumps. Its paths are exact too, but the closed form of
its ensemble MSD holds only asymptotically;
:func:`ctrw_coefficients` gives its ``D`` and ``alpha`` (``alpha = a`` for waiting-time
exponent ``a < 1`` without cutoff, else 1). Its time-averaged MSD differs from the
ensemble one when ``a < 1`` (weak ergodicity breaking).
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


def _check_waits(wait_min_s: float, wait_exponent: float, wait_max_s: float | None) -> None:
    if not wait_min_s > 0:
        raise ValueError(f"wait_min_s must be > 0, got {wait_min_s}")
    if not wait_exponent > 0:
        raise ValueError(f"wait_exponent must be > 0, got {wait_exponent}")
    if wait_max_s is not None and not wait_max_s > wait_min_s:
        raise ValueError(f"wait_max_s must be > wait_min_s ({wait_min_s}), got {wait_max_s}")


def ctrw_wait_survival(tau_s, wait_min_s: float, wait_exponent: float, wait_max_s: float | None = None):
    """Survival function ``P(wait > tau)`` of the CTRW waiting times (see :func:`ctrw_waiting_times`).

    Parameters
    ----------
    tau_s : array_like
        Times (s).
    wait_min_s, wait_exponent, wait_max_s
        As in :func:`ctrw_waiting_times`.

    Returns
    -------
    ndarray
        ``1`` below ``wait_min_s``; ``((t0/tau)^a - r) / (1 - r)`` between ``wait_min_s`` and
        ``wait_max_s``, with ``r = (t0/wait_max_s)^a`` (``r = 0`` without a cutoff); ``0`` above.
    """
    _check_waits(wait_min_s, wait_exponent, wait_max_s)
    tau = np.asarray(tau_s, dtype=float)
    r = 0.0 if wait_max_s is None else (wait_min_s / wait_max_s) ** wait_exponent
    with np.errstate(divide="ignore"):
        pareto = (wait_min_s / np.maximum(tau, wait_min_s)) ** wait_exponent
    return np.clip((pareto - r) / (1.0 - r), 0.0, 1.0)


def ctrw_waiting_times(
    n: int, wait_min_s: float, wait_exponent: float, rng: np.random.Generator, wait_max_s: float | None = None
) -> np.ndarray:
    """Power-law (Pareto) waiting times of a CTRW, optionally truncated, by inverse transform.

    The density is ``psi(tau) ∝ tau**-(1 + a)`` for ``wait_min_s <= tau <= wait_max_s``:
    a Pareto law with scale ``t0 = wait_min_s`` and tail exponent ``a``, conditioned on
    ``tau <= wait_max_s`` when a cutoff is given. Without a cutoff its mean is infinite for
    ``a <= 1`` (the particle gets stuck ever longer: subdiffusion) and ``a t0 / (a - 1)``
    otherwise.

    Parameters
    ----------
    n : int
        Number of waiting times.
    wait_min_s : float
        Shortest waiting time ``t0`` (s), > 0.
    wait_exponent : float
        Tail exponent ``a`` of the survival function ``(t0/tau)**a``, > 0.
    rng : numpy.random.Generator
    wait_max_s : float, optional
        Cutoff (s), > ``wait_min_s``; no cutoff when None.

    Returns
    -------
    ndarray, shape (n,)
        Waiting times (s).
    """
    _check_waits(wait_min_s, wait_exponent, wait_max_s)
    r = 0.0 if wait_max_s is None else (wait_min_s / wait_max_s) ** wait_exponent
    u = 1.0 - rng.random(n)  # in (0, 1]: tau = t0 at u -> 0, the cutoff (or infinity) at u = 1
    return wait_min_s * (1.0 - u * (1.0 - r)) ** (-1.0 / wait_exponent)


def ctrw_mean_wait_s(wait_min_s: float, wait_exponent: float, wait_max_s: float | None = None) -> float:
    """Mean waiting time (s) of :func:`ctrw_waiting_times`; ``inf`` without a cutoff when ``a <= 1``."""
    _check_waits(wait_min_s, wait_exponent, wait_max_s)
    t0, a = wait_min_s, wait_exponent
    if wait_max_s is None:
        return a * t0 / (a - 1.0) if a > 1 else float("inf")
    r = (t0 / wait_max_s) ** a
    if np.isclose(a, 1.0, rtol=0, atol=1e-12):
        return t0 * np.log(wait_max_s / t0) / (1.0 - r)
    return a * t0**a * (wait_max_s ** (1.0 - a) - t0 ** (1.0 - a)) / ((1.0 - a) * (1.0 - r))


def ctrw_coefficients(
    jump_nm: float, wait_min_s: float, wait_exponent: float, wait_max_s: float | None = None
) -> tuple[float, float]:
    """Asymptotic ensemble ``(D, alpha)`` of a CTRW: ``MSD(tau) -> 2 ndim D tau**alpha``.

    With a finite mean waiting time ``mu`` (``a > 1``, or any cutoff) the walk is
    diffusive at lags much longer than the waiting times (and the cutoff):
    ``D = jump_nm**2 / (2 mu)`` (nm^2/s), ``alpha = 1``. For ``a < 1`` without a cutoff
    the mean number of jumps grows as ``(tau/t0)**a / (Gamma(1 - a) Gamma(1 + a))``, so
    ``alpha = a`` and ``D = jump_nm**2 / (2 t0**a Gamma(1 - a) Gamma(1 + a))`` (nm^2/s^a),
    with relative corrections of order ``(t0/tau)**(1 - a)``. For ``a = 1`` without a
    cutoff the MSD grows as ``tau / ln(tau/t0)``: returned as ``(0, 1)``.

    Parameters
    ----------
    jump_nm : float
        Root-mean-square jump length per axis (nm).
    wait_min_s, wait_exponent, wait_max_s
        As in :func:`ctrw_waiting_times`.

    Returns
    -------
    (float, float)
        ``D`` (nm^2/s^alpha) and ``alpha``.
    """
    from scipy.special import gamma

    mu = ctrw_mean_wait_s(wait_min_s, wait_exponent, wait_max_s)
    if np.isfinite(mu):
        return jump_nm**2 / (2.0 * mu), 1.0
    a = wait_exponent
    if a >= 1.0:  # a == 1 exactly, no cutoff
        return 0.0, 1.0
    return jump_nm**2 / (2.0 * wait_min_s**a * gamma(1.0 - a) * gamma(1.0 + a)), a


def ctrw(
    n_frames: int,
    jump_nm: float,
    wait_min_s: float,
    wait_exponent: float,
    dt_s: float,
    rng: np.random.Generator,
    wait_max_s: float | None = None,
    ndim: int = 2,
) -> np.ndarray:
    """Continuous-time random walk with pinning: still for a waiting time, then a Gaussian jump.

    A renewal process starting at time 0 (not aged): the waiting times before the first and
    every later jump are independent draws of :func:`ctrw_waiting_times`, each jump adds an
    independent ``N(0, jump_nm**2)`` displacement per axis. The position in frame ``i`` is
    the sum of the jumps made by time ``i dt_s``, exact at the frame times (several jumps
    may fall within one frame interval, or none for many frames).

    Parameters
    ----------
    n_frames : int
        Number of positions (frames), including the start.
    jump_nm : float
        Root-mean-square jump length per axis (nm), >= 0.
    wait_min_s : float
        Shortest waiting time (s), the scale of the Pareto law.
    wait_exponent : float
        Tail exponent ``a`` of the waiting times: ``P(wait > tau) = (wait_min_s/tau)**a``.
        ``a < 1`` (infinite mean) gives subdiffusion, ``MSD ∝ tau**a``.
    dt_s : float
        Time between positions (s).
    rng : numpy.random.Generator
    wait_max_s : float, optional
        Cutoff of the waiting times (s); None for none.
    ndim : int
        Number of spatial dimensions.

    Returns
    -------
    ndarray, shape (n_frames, ndim)
        Positions (nm) starting at the origin.
    """
    _check(n_frames, dt_s, 0.0)
    _check_waits(wait_min_s, wait_exponent, wait_max_s)
    if jump_nm < 0:
        raise ValueError(f"jump_nm must be >= 0, got {jump_nm}")
    duration = (n_frames - 1) * dt_s
    mu = ctrw_mean_wait_s(wait_min_s, wait_exponent, wait_max_s)
    blocks, t_last = [], 0.0
    while t_last <= duration:  # jump times in blocks of about the expected count, until past the end
        expected = (duration - t_last) / mu if np.isfinite(mu) else (duration / wait_min_s) ** wait_exponent
        waits = ctrw_waiting_times(int(min(expected, 1e6)) + 16, wait_min_s, wait_exponent, rng, wait_max_s)
        blocks.append(t_last + np.cumsum(waits))
        t_last = float(blocks[-1][-1])
    times = np.concatenate(blocks)
    n_jumps = int(np.searchsorted(times, duration, side="right"))
    jumps = rng.standard_normal((n_jumps, ndim)) * jump_nm
    walk = np.zeros((n_jumps + 1, ndim))
    np.cumsum(jumps, axis=0, out=walk[1:])
    done = np.searchsorted(times[:n_jumps], np.arange(n_frames) * dt_s, side="right")
    return walk[done]


def rotation(n_frames: int, D_rad2_s: float, dt_s: float, rng: np.random.Generator, angle0_rad: float = 0.0):
    """In-plane rotational Brownian motion: angles (rad), shape (n_frames,)."""
    return angle0_rad + brownian(n_frames, D_rad2_s, dt_s, rng, ndim=1)[:, 0]


def drift(n_frames: int, dt_s: float, velocity_nm_s, jitter_nm2_s: float, rng: np.random.Generator):
    """Stage drift: constant velocity (nm/s) plus a random walk with coefficient ``jitter_nm2_s``."""
    return directed(n_frames, jitter_nm2_s, dt_s, velocity_nm_s, rng)


def msd_theory(model: str, lag_s, D_nm2_s: float, ndim: int = 2, **kw) -> np.ndarray:
    """Closed-form MSD (nm^2) at lags ``lag_s`` (s) for a motion model (see module table).

    ``kw``: ``alpha`` (anomalous; ctrw, from :func:`ctrw_coefficients`), ``stiffness_pN_nm``
    and ``temperature_K`` (confined), ``speed_nm_s`` (directed). For ``ctrw`` the result is
    the asymptotic ensemble MSD, valid for lags much longer than the waiting times.
    """
    tau = np.asarray(lag_s, dtype=float)
    if model == "brownian":
        return 2 * ndim * D_nm2_s * tau
    if model in ("anomalous", "ctrw"):
        return 2 * ndim * D_nm2_s * tau ** kw["alpha"]
    if model == "confined":
        t_k = kw.get("temperature_K", 298.15)
        var = trap_variance_nm2(kw["stiffness_pN_nm"], t_k)
        rate = trap_relaxation_rate(D_nm2_s, kw["stiffness_pN_nm"], t_k)
        return 2 * ndim * var * (1.0 - np.exp(-rate * tau))
    if model == "directed":
        return 2 * ndim * D_nm2_s * tau + (kw["speed_nm_s"] * tau) ** 2
    raise ValueError(f"unknown motion model {model!r}")
