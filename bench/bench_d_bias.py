"""Where the D error of partly tracked particles comes from: the gaps, or the positions?

On runs of ``bench_accuracy.py`` (every ``PRESET_SEED_samem/results.h5`` in its ``--out``
folder, the videos in ``--videos-dir``), per truth particle (frames with the particle visible):

* ``coverage``: frames reported present / frames visible;
* ``e_same``: signed relative error of D fitted on the *true* positions cut to the frames
  reported present, against D of the whole true trajectory (``samem eval``'s MSD fit): what
  the choice of frames alone does to D. If the tracker lost particles preferably while they
  moved fast, the frames kept would hold smaller steps and ``e_same`` would be negative;
* ``lag1_ratio``: mean squared true step over the steps whose two frames are both reported
  present, over the mean over all steps (below 1: the kept steps are the smaller ones);
* ``e_tracked``: signed relative error of D fitted on the tracked positions (same fit);
* ``beta``: how much the reported position lags the particle's motion, the least-squares
  ``beta`` of ``error = -beta x true step`` per axis (error = reported - true position on a
  present frame not flagged ``edge``, true step = true position - that of the frame before;
  0: no lag, 1: the position stays where the particle was). Positions more than
  ``--wrong-px`` off are left out of it.

Printed per preset and per coverage band (mean signed errors, median ratios); ``--json``
writes every particle's row.

    python bench/bench_d_bias.py bench/results/accuracy_tuning --videos-dir bench/results/videos
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from samem.eval.evaluate import _fit_d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_d_edge import visible_and_shown  # noqa: E402

BANDS = ((0.0, 0.9), (0.9, 0.97), (0.97, 1.01))


def _lag_beta(errors: np.ndarray, steps: np.ndarray) -> float:
    """Least-squares ``beta`` of ``errors = -beta * steps`` (arrays of per-axis values, px)."""
    ss = float(np.sum(steps * steps))
    return -float(np.sum(errors * steps)) / ss if ss > 0 else float("nan")


def particles(run: Path, video: Path, wrong_px: float) -> list[dict]:
    """One row per truth particle of one tracked video (module docstring)."""
    truth, tt, shown = visible_and_shown(run, video)
    ids = sorted(tt["particle"].unique())
    px, dt = truth.pixel_size_nm, truth.frame_interval_s
    keys = ["frame", "particle"]
    kept = tt.merge(shown[keys].drop_duplicates(), on=keys)
    d_true, d_kept, d_tracked = _fit_d(tt, px, dt), _fit_d(kept, px, dt), _fit_d(shown, px, dt)
    before = tt[keys + ["x", "y"]].assign(frame=tt["frame"] + 1)
    inner = shown[~shown["edge"].astype(bool)] if "edge" in shown else shown
    both = inner.merge(tt[keys + ["x", "y"]], on=keys, suffixes=("", "_true")).merge(
        before, on=keys, suffixes=("", "_before")
    )
    err = both[["x", "y"]].to_numpy() - both[["x_true", "y_true"]].to_numpy()
    step = both[["x_true", "y_true"]].to_numpy() - both[["x_before", "y_before"]].to_numpy()
    ok = np.hypot(*err.T) <= wrong_px
    rows = []
    for pid in ids:
        t = tt[tt["particle"] == pid].sort_values("frame")
        if len(t) < 20:
            continue
        frames = t["frame"].to_numpy()
        steps = np.diff(t[["x", "y"]].to_numpy(), axis=0)
        consecutive = np.diff(frames) == 1
        present = set(kept.loc[kept["particle"] == pid, "frame"])
        both_present = consecutive & np.array(
            [a in present and b in present for a, b in zip(frames, frames[1:])]
        )
        sq = np.sum(steps**2, axis=1)
        lag1 = float(sq[both_present].mean() / sq[consecutive].mean()) if both_present.any() else float("nan")
        mine = (both["particle"] == pid).to_numpy() & ok
        d0 = d_true.get(pid, np.nan)
        rows.append(
            {
                "seed": int(truth.seed),
                "particle": int(pid),
                "coverage": len(present) / len(t),
                "D_true": float(d0),
                "e_same": float((d_kept.get(pid, np.nan) - d0) / d0),
                "e_tracked": float((d_tracked.get(pid, np.nan) - d0) / d0),
                "lag1_ratio": lag1,
                "beta": _lag_beta(err[mine].ravel(), step[mine].ravel())
                if mine.sum() >= 20
                else float("nan"),
                "step_rms_px": float(np.sqrt(np.mean(steps[consecutive] ** 2))),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="bench_accuracy.py --out folders")
    ap.add_argument("--videos-dir", default="bench/results/videos")
    ap.add_argument("--wrong-px", type=float, default=20.0, help="positions further off are left out of beta")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for folder in args.runs:
        for run in sorted(Path(folder).glob("*_samem")):
            preset, seed = run.name.split("_")[:2]
            video = Path(args.videos_dir) / f"{preset}_{seed}_1024px_150f.h5"
            rows += [{"preset": preset, **r} for r in particles(run, video, args.wrong_px)]
    df = pd.DataFrame(rows)
    print(
        "| preset | coverage | particles | e_same (mean; median) | lag1_ratio (median) "
        "| e_tracked (mean; median) | beta (median; share > 0.1) |"
    )
    print("|---|---|---|---|---|---|---|")
    for preset, g in df.groupby("preset", sort=False):
        for lo, hi in BANDS:
            b = g[(g["coverage"] >= lo) & (g["coverage"] < hi)]
            if b.empty:
                continue
            print(
                f"| {preset} | {lo:.2f}-{min(hi, 1):.2f} | {len(b)} | "
                f"{b['e_same'].mean():+.3f}; {b['e_same'].median():+.3f} | {b['lag1_ratio'].median():.3f} | "
                f"{b['e_tracked'].mean():+.3f}; {b['e_tracked'].median():+.3f} | "
                f"{b['beta'].median():.3f}; {(b['beta'] > 0.1).mean():.2f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "particles": rows}, indent=1))


if __name__ == "__main__":
    main()
