"""Figures across the videos of a batch (matplotlib, headless).

- ``ensemble_msd``: each video's ensemble MSD (thin) and the pooled one with its standard
  error band and power-law fit (thick), log-log.
- ``D_distribution``: per-particle D on log-spaced bins, stacked by video.
- ``per_video``: mean D and mean α per video with standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_MAX_LEGEND = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def close(fig) -> None:
    """Release a figure."""
    _pyplot().close(fig)


def _units_label(units: dict) -> tuple[str, str]:
    length, time = units["length"], units["time"]
    return f"lag time ({time})", f"MSD ({length}²)"


def ensemble_msd_figure(per_video, pooled):
    """Ensemble MSD per video and pooled (one panel per calibration group)."""
    plt = _pyplot()
    n = max(1, len(pooled))
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    fig.subplots_adjust(left=0.14 / n, right=1 - 0.03 / n, bottom=0.13, top=0.92, wspace=0.3)
    for ax, group in zip(axes[0], pooled or [None]):
        if group is None:
            ax.text(0.5, 0.5, "no tracks", ha="center", va="center", transform=ax.transAxes)
            continue
        key = (group["pixel_size_nm"], group["frame_interval_s"])
        members = [
            (name, res, c)
            for name, res, c in per_video
            if c is not None and res.tracks.size and (res.pixel_size_nm, res.frame_interval_s) == key
        ]
        for i, (name, _res, curve) in enumerate(members):
            ax.plot(
                curve["lag_s"], curve["msd_nm2"], lw=0.8, alpha=0.6, label=name if i < _MAX_LEGEND else None
            )
        c = group["curve"]
        ax.plot(
            c["lag_s"],
            c["msd_nm2"],
            color="k",
            lw=2.0,
            label=f"pooled ({group['videos']} video{'s' if group['videos'] > 1 else ''})",
        )
        lo, hi = c["msd_nm2"] - c["sem_nm2"], c["msd_nm2"] + c["sem_nm2"]
        ax.fill_between(c["lag_s"], np.where(lo > 0, lo, np.nan), hi, color="k", alpha=0.15, lw=0)
        fit = group["fit"]
        if fit.get("fit_ok"):  # the free-α fit of the pooled ensemble MSD (samem.stats)
            t = np.geomspace(fit["lag_min_s"], fit["lag_max_s"], 50)
            D_unit = f"{group['units']['length']}²/{group['units']['time']}"
            ax.plot(
                t,
                4 * fit["D_alpha_nm2_s_alpha"] * t ** fit["alpha"] + fit["offset_alpha_nm2"],
                "r--",
                lw=1.5,
                label=f"fit: α = {fit['alpha']:.2f} ± {fit['alpha_err']:.2f}; "
                f"α=1: D = {fit['D_nm2_s']:.3g} ± {fit['D_err_nm2_s']:.2g} {D_unit}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        xl, yl = _units_label(group["units"])
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        cal = "uncalibrated" if key == (None, None) else f"{key[0] or '?'} nm/px, {key[1] or '?'} s/frame"
        ax.set_title(f"Ensemble MSD ({cal})", fontsize=10)
        ax.legend(fontsize=7, frameon=False)
    return fig


def d_distribution_figure(particles: pd.DataFrame):
    """Histogram of per-particle D (log bins), stacked by video, for the most common D unit."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.92)
    good = particles[np.isfinite(particles["D"]) & (particles["D"] > 0)] if len(particles) else particles
    if len(good) == 0:
        ax.text(0.5, 0.5, "no fitted particles", ha="center", va="center", transform=ax.transAxes)
        return fig
    unit = good["D_unit"].value_counts().index[0]
    good = good[good["D_unit"] == unit]
    lo, hi = good["D"].min(), good["D"].max()
    bins = np.geomspace(lo / 1.05, hi * 1.05, max(5, min(30, int(np.sqrt(len(good))) + 3)))
    videos = list(dict.fromkeys(good["video"]))
    data = [good.loc[good["video"] == v, "D"].to_numpy() for v in videos]
    labels = videos if len(videos) <= _MAX_LEGEND else None
    ax.hist(data, bins=bins, stacked=True, label=labels)
    ax.set_xscale("log")
    ax.set_xlabel(f"D ({unit.replace('^2', '²')})")
    ax.set_ylabel("particles")
    ax.set_title(f"Per-particle D, {len(good)} particles in {len(videos)} videos", fontsize=10)
    if labels:
        ax.legend(fontsize=7, frameon=False)
    return fig


def per_video_figure(table: pd.DataFrame):
    """Mean D and mean α per video with standard errors (videos of the most common D unit)."""
    plt = _pyplot()
    done = table[table["D_mean"].notna()] if len(table) else table
    unit = done["D_unit"].value_counts().index[0] if len(done) else ""
    shown = done[done["D_unit"] == unit] if len(done) else done
    longest = max((len(str(n)) for n in shown["name"]), default=4) if len(shown) else 4
    fig, (ax_d, ax_a) = plt.subplots(2, 1, figsize=(max(5.5, 0.45 * len(shown) + 2), 5.0), sharex=True)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=min(0.4, 0.1 + 0.012 * longest), top=0.88, hspace=0.1)
    x = np.arange(len(shown))
    if len(shown):
        ax_d.errorbar(
            x, shown["D_mean"].astype(float), yerr=shown["D_se"].astype(float).fillna(0), fmt="o", capsize=3
        )
        ax_a.errorbar(
            x,
            shown["alpha_mean"].astype(float),
            yerr=shown["alpha_se"].astype(float).fillna(0),
            fmt="s",
            color="C1",
            capsize=3,
        )
    ax_d.set_ylabel(f"mean D ({unit.replace('^2', '²')})")
    ax_a.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax_a.set_ylabel("mean α")
    ax_a.set_xticks(x)
    ax_a.set_xticklabels(list(shown["name"]) if len(shown) else [], rotation=45, ha="right", fontsize=8)
    other = len(done) - len(shown)
    note = f"\n({other} video{'s' if other > 1 else ''} in other units not shown)" if other else ""
    ax_d.set_title(f"Per video: mean ± standard error over particles{note}", fontsize=9)
    return fig


def batch_figures(table, particles, per_video, pooled) -> dict:
    """All batch figures by file stem."""
    return {
        "ensemble_msd": ensemble_msd_figure(per_video, pooled),
        "D_distribution": d_distribution_figure(particles),
        "per_video": per_video_figure(table),
    }
