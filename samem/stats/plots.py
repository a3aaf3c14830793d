"""Publication figures of trajectories and their statistics (matplotlib, headless).

Every function draws on a given Axes or on a new :class:`matplotlib.figure.Figure` (no
pyplot state, no display needed) and returns the Figure. :func:`plot_all` writes the four
standard figures as PNG and SVG.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from samem.errors import SamemError
from samem.stats.summary import Statistics, compute_statistics
from samem.stats.sums import present_tracks
from samem.stats.units import resolve_scale
from samem.stats.vanhove import van_hove

_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
}


def _styled(func):
    """Run a plotting function under the house style (fonts, spines, SVG text)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def _axes(ax, size=(4.0, 3.2)):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _nice_length(target: float) -> float:
    """A round length (1, 2, 5 × 10^n) close to ``target``."""
    if not target > 0:
        return 1.0
    exp = np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return float(m * 10**exp)
    return float(10**exp)


@_styled
def plot_trajectories(
    traj: pd.DataFrame,
    pixel_size_nm=None,
    frame_interval_s=None,
    *,
    ax=None,
    frame_shape=None,
    label_ids: bool = True,
    cmap: str = "viridis",
) -> Figure:
    """Trajectories in the image plane, coloured by time, with a scale bar in nm.

    Parameters
    ----------
    traj : DataFrame
        Trajectory table (pixels, frames); absent rows are skipped and gaps break lines.
    pixel_size_nm, frame_interval_s : float, optional
        nm/px and s; default ``traj.attrs``.
    frame_shape : (H, W), optional
        Draw the field of view (pixels) and use it as limits.
    label_ids : bool
        Write each particle id at its first position.
    """
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    fig, ax = _axes(ax, (4.6, 4.0))
    tracks = present_tracks(traj)
    if len(tracks.frame) == 0:
        raise SamemError("no present positions to plot")
    t_s = tracks.frame * scale.frame_interval_s
    segs, times = [], []
    same = (np.diff(tracks.index) == 0) & (np.diff(tracks.frame) == 1)
    pts = tracks.pos[:, :2]
    starts = np.flatnonzero(same)
    segs = np.stack([pts[starts], pts[starts + 1]], axis=1)
    times = 0.5 * (t_s[starts] + t_s[starts + 1])
    lc = LineCollection(segs, cmap=cmap, linewidths=1.0, capstyle="round")
    lc.set_array(times)
    lc.set_clim(t_s.min(), max(t_s.max(), t_s.min() + scale.frame_interval_s))
    ax.add_collection(lc)
    ax.scatter(
        pts[:, 0],
        pts[:, 1],
        c=t_s,
        cmap=cmap,
        s=2,
        linewidths=0,
        vmin=lc.get_clim()[0],
        vmax=lc.get_clim()[1],
    )
    if label_ids:
        first = np.flatnonzero(np.r_[True, np.diff(tracks.index) != 0])
        for i in first[:100]:
            ax.annotate(
                str(tracks.particle[tracks.index[i]]),
                pts[i],
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=7,
                color="0.2",
            )
    if frame_shape is not None:
        H, W = frame_shape
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
    else:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.08 * max(float((hi - lo).max()), 10.0)
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(hi[1] + pad, lo[1] - pad)  # image convention: y (row) downwards
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_color("0.6")
    width_px = abs(ax.get_xlim()[1] - ax.get_xlim()[0])
    bar_nm = _nice_length(0.2 * width_px * scale.length_per_px)
    label = f"{bar_nm:g} nm" if bar_nm < 1000 else f"{bar_nm / 1000:g} µm"
    ax.add_artist(
        AnchoredSizeBar(
            ax.transData,
            bar_nm / scale.length_per_px,
            label,
            "lower right",
            pad=0.4,
            sep=3,
            frameon=False,
            size_vertical=0.012 * width_px,
            fontproperties={"size": 8},
        )
    )
    cb = fig.colorbar(lc, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label("time (s)")
    ax.set_title(f"{len(tracks.particle)} trajectories")
    return fig


def _fit_label(prefix, fit: dict, key_D, key_err, unit):
    D, err = fit.get(key_D), fit.get(key_err)
    if D is None:
        return None
    txt = f"{prefix}D = {D:.3g}"
    if err is not None:
        txt += f" ± {err:.2g}"
    return txt + f" {unit}"


@_styled
def plot_msd(stats: Statistics, *, ax=None, max_particles: int = 200, max_markers: int = 30) -> Figure:
    """MSD on log-log axes: particles (thin), ensemble ± SE, and the ensemble fits.

    The legend gives D (α = 1 fit) and α, D_α (free fit) with their uncertainties; the fit
    lines span the fitted lag range. When the positions carry the tracker's localisation
    error, a dotted line marks the floor it puts under the MSD, ``4 σ²`` (σ the ensemble's
    ``sigma_nm``): points near it are mostly localisation noise.
    """
    fig, ax = _axes(ax, (4.4, 3.4))
    msd = stats.msd
    for i, (_, g) in enumerate(msd.groupby("particle")):
        if i >= max_particles:
            break
        g = g[g["msd_nm2"] > 0]
        ax.plot(
            g["lag_s"], g["msd_nm2"], color="0.75", lw=0.6, zorder=1, label="particles" if i == 0 else None
        )
    e = stats.emsd[stats.emsd["msd_nm2"] > 0]
    if len(e) > max_markers:  # log-spaced subset keeps the markers evenly spread on log axes
        keep = np.unique(np.round(np.geomspace(1, len(e), max_markers)).astype(int) - 1)
        e = e.iloc[keep]
    if len(e) == 0:
        raise SamemError("no MSD to plot (no particle has two present frames)")
    yerr = np.nan_to_num(e["sem_nm2"].to_numpy())
    ax.errorbar(
        e["lag_s"],
        e["msd_nm2"],
        yerr=np.minimum(yerr, 0.999 * e["msd_nm2"].to_numpy()),
        fmt="o",
        ms=3,
        color="k",
        elinewidth=0.7,
        capsize=0,
        zorder=3,
        label="ensemble ± SE",
    )
    ens = stats.summary["ensemble"]
    if ens.get("lag_min_s") is not None and ens.get("lag_max_s") is not None:
        t = np.geomspace(ens["lag_min_s"], ens["lag_max_s"], 100)
        if ens.get("D_nm2_s") is not None:
            y = 4 * ens["D_nm2_s"] * t + ens["offset_nm2"]
            lab = _fit_label("α = 1: ", ens, "D_nm2_s", "D_err_nm2_s", "nm²/s")
            ax.plot(t[y > 0], y[y > 0], color="C0", lw=1.5, zorder=4, label=lab)
        if ens.get("alpha") is not None:
            y = 4 * ens["D_alpha_nm2_s_alpha"] * t ** ens["alpha"] + ens["offset_alpha_nm2"]
            lab = f"α = {ens['alpha']:.2f}" + (
                f" ± {ens['alpha_err']:.2f}" if ens.get("alpha_err") is not None else ""
            )
            dl = _fit_label(", ", ens, "D_alpha_nm2_s_alpha", "D_alpha_err_nm2_s_alpha", r"nm$^2$/s$^\alpha$")
            ax.plot(t[y > 0], y[y > 0], color="C3", lw=1.5, ls="--", zorder=4, label=lab + (dl or ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    sigma = ens.get("sigma_nm")
    if sigma is not None and np.isfinite(sigma) and sigma > 0:
        ylim = ax.get_ylim()  # the data's: a floor far below them is named, not drawn
        below = " (below)" if 4 * sigma**2 < ylim[0] else ""
        label = f"4σ², localisation σ = {sigma:.2g} nm{below}"
        ax.axhline(4 * sigma**2, color="0.45", lw=1.0, ls=":", zorder=2, label=label)
        ax.set_ylim(ylim)
    ax.set_xlabel("lag time (s)")
    ax.set_ylabel("MSD (nm²)")
    ax.legend(frameon=False, loc="upper left")
    ax.set_title(f"MSD, {stats.summary['n_particles']} particles")
    return fig


@_styled
def plot_vanhove(
    traj: pd.DataFrame,
    lags,
    pixel_size_nm=None,
    frame_interval_s=None,
    *,
    ax=None,
    bins: int = 41,
    stats: Statistics | None = None,
) -> Figure:
    """Van Hove distributions (markers) with the Gaussians of equal variance (lines), log y.

    The legend gives each lag and its non-Gaussian parameter α2.
    """
    vh = van_hove(traj, lags, pixel_size_nm, frame_interval_s, bins=bins)
    if len(vh) == 0:
        raise SamemError("no displacements to plot at the requested lags")
    ngp = {}
    if stats is not None:
        ngp = dict(zip(stats.displacements["lag"], stats.displacements["ngp"]))
    fig, ax = _axes(ax, (4.4, 3.4))
    for i, (k, g) in enumerate(vh.groupby("lag")):
        c = f"C{i}"
        nz = g["density_per_nm"] > 0
        a2 = ngp.get(k)
        lab = f"{g['lag_s'].iloc[0]:.3g} s" + (
            f" (α₂ = {a2:.2f})" if a2 is not None and np.isfinite(a2) else ""
        )
        ax.plot(g["bin_center_nm"][nz], g["density_per_nm"][nz], "o", ms=3, color=c, label=lab)
        ok = g["gaussian_per_nm"] > 1e-3 * g["density_per_nm"].max()
        ax.plot(g["bin_center_nm"][ok], g["gaussian_per_nm"][ok], "-", lw=1, color=c)
    ax.set_yscale("log")
    ax.set_xlabel("displacement Δx, Δy (nm)")
    ax.set_ylabel("probability density (1/nm)")
    ax.legend(frameon=False, title="lag (lines: Gaussian)", title_fontsize=8, loc="upper right")
    ax.set_title("van Hove self-correlation")
    return fig


@_styled
def plot_vacf(stats: Statistics, *, ax=None) -> Figure:
    """Normalised velocity autocorrelation C(t)/C(0) against lag time."""
    v = stats.vacf
    if len(v) == 0 or not np.isfinite(v["vacf_norm"]).any():
        raise SamemError("no velocity pairs to plot")
    fig, ax = _axes(ax, (4.4, 3.2))
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(v["lag_s"], v["vacf_norm"], "o-", ms=3, lw=1, color="C0")
    ax.set_xlabel("lag time (s)")
    ax.set_ylabel("C(t) / C(0)")
    ax.set_title("velocity autocorrelation")
    return fig


@_styled
def save_figure(fig: Figure, out_dir, name: str, formats=("png", "svg"), dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.<fmt>`` for each format, each file written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{fmt}", dir=out_dir)
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        paths.append(target)
    return paths


def plot_all(
    traj: pd.DataFrame,
    out_dir,
    pixel_size_nm=None,
    frame_interval_s=None,
    *,
    config=None,
    stats: Statistics | None = None,
    frame_shape=None,
    formats=("png", "svg"),
) -> list[Path]:
    """Write ``trajectories``, ``msd``, ``vanhove`` and ``vacf`` figures to ``out_dir``.

    Returns the written paths. Figures that have no data (e.g. no velocity pairs) are
    skipped rather than drawn empty; if none can be drawn SamemError is raised.
    """
    from samem.stats.summary import load_config

    cfg = load_config(config)
    scale = resolve_scale(getattr(traj, "attrs", None), None, None, pixel_size_nm, frame_interval_s)
    if stats is None:
        stats = compute_statistics(traj, scale.length_per_px, scale.frame_interval_s, cfg)
    makers = {
        "trajectories": lambda: plot_trajectories(
            traj, scale.length_per_px, scale.frame_interval_s, frame_shape=frame_shape
        ),
        "msd": lambda: plot_msd(stats),
        "vanhove": lambda: plot_vanhove(
            traj,
            list(cfg.vanhove.lags),
            scale.length_per_px,
            scale.frame_interval_s,
            bins=cfg.vanhove.bins,
            stats=stats,
        ),
        "vacf": lambda: plot_vacf(stats),
    }
    figs, skipped = {}, []
    for name, make in makers.items():
        try:
            figs[name] = make()
        except SamemError as exc:
            skipped.append(f"{name}: {exc}")
    if not figs:
        raise SamemError("nothing to plot (" + "; ".join(skipped) + ")")
    paths = []
    for name, fig in figs.items():
        paths += save_figure(fig, out_dir, name, formats)
    return paths
