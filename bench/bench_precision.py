"""Is the tracker's localisation error estimate (the ``sigma`` column) honest? (issue 21)

Every present position carries ``sigma`` (px, per coordinate), the tracker's estimate of its
own localisation error (:meth:`samem.track.verify.Verifier.sigma`:
``SCALE × (radius / z) ** POWER`` with ``z`` the particle's typical detector *z*).
This script sets it beside the true error on the synthetic videos that
``bench_accuracy.py`` tracked (its ``--out`` folders keep each video's ``results.h5``):

- **calibration**, per preset and per band of ``sigma``: the robust per-coordinate error
  ``median(r) / 1.1774`` (for a 2-D Gaussian error of per-coordinate spread σ the median
  distance ``r`` is ``1.1774 σ``), the RMS per-coordinate error ``sqrt(mean(r²) / 2)``
  (tails included), and the share of positions within ``2.448 σ`` (0.95 for an honest σ);
- **ranking**: Spearman correlation over particles between the median ``sigma`` and the
  mean error;
- **what a cut costs and buys** (the stats option ``max_sigma_nm``, here in px): for each
  threshold, the share of present positions kept, their mean error, the share of them that
  is wrong (farther than one equivalent radius), and the mean D error of the particles whose
  median ``sigma`` is within it (from the run's ``accuracy.json``).

``--fit`` fits ``SCALE`` and ``POWER`` (printed, and written into the JSON) to the
per-particle robust errors, in log space so that every particle weighs the same; run it on
**tuning** videos only (seeds 2001 + 10 k ...), then check on held-out ones:

    python bench/bench_accuracy.py --seeds tuning --videos 8 --frames 150 --baseline none \\
        --jobs 2 --out bench/results/tune_sigma
    python bench/bench_precision.py bench/results/tune_sigma --fit [--made-with 1 1] \\
        --json bench/records/precision/precision_tuning.json
    python bench/bench_precision.py bench/results/held1 bench/results/held2 bench/results/held3 \\
        --json bench/records/precision/precision_held_out.json

Videos are read from ``--videos-dir`` (the same folder ``bench_accuracy.py`` used).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import VIDEOS  # noqa: E402

from samem.eval.evaluate import read_results  # noqa: E402
from samem.eval.metrics import MEDIAN_R, R95, sigma_calibration  # noqa: E402
from samem.synthetic import read_truth  # noqa: E402
from samem.track.verify import SIGMA_POWER, SIGMA_SCALE  # noqa: E402

#: bands of sigma (px) of the calibration table
BANDS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, np.inf)
#: thresholds (px) of the cut table
CUTS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, np.inf)


def positions(run: Path, videos: Path) -> tuple[pd.DataFrame, dict]:
    """Present positions of every video of a ``bench_accuracy.py`` run folder with their true
    error, and the per-particle D errors of its ``accuracy.json`` ((preset, seed, particle) -> error)."""
    rows = []
    d_err: dict = {}
    record = run / "accuracy.json"
    if record.exists():
        data = json.loads(record.read_text())
        for preset, block in data.get("results", {}).items():
            for m in block.get("samem", {}).get("videos", []):
                for pid, e in m.get("d_rel_err_per_particle", {}).items():
                    d_err[(preset, int(m["seed"]), int(pid))] = e
    for folder in sorted(run.glob("*_samem")):
        preset, seed = folder.name.split("_")[:2]
        matches = sorted(videos.glob(f"{preset}_{seed}_*px_*f.h5"))
        if not matches or not (folder / "results.h5").exists():
            continue
        _, tracks = read_results(folder / "results.h5")
        if "sigma" not in tracks:
            raise SystemExit(f"{folder}: results without a sigma column (tracked by an older samem)")
        truth = read_truth(matches[0]).tracks
        truth = truth[truth["inside"].astype(bool) & (truth["frame"] > 0)]
        shown = tracks[tracks["present"].astype(bool)].dropna(subset=["x", "y"])
        m = truth.merge(shown, on=["frame", "particle"], suffixes=("_t", "_p"))
        err = np.hypot(m["x_t"] - m["x_p"], m["y_t"] - m["y_p"])
        rows.append(
            pd.DataFrame(
                {
                    "preset": preset,
                    "seed": int(seed),
                    "particle": m["particle"].astype(int),
                    "frame": m["frame"].astype(int),
                    "sigma": m["sigma"].astype(float),
                    "err": err,
                    "wrong": err > np.sqrt(m["area_px"].astype(float) / np.pi),
                }
            )
        )
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), d_err


def raw_ratio(sigma: np.ndarray, scale: float = SIGMA_SCALE, power: float = SIGMA_POWER) -> np.ndarray:
    """radius / z behind each ``sigma`` made with the constants ``scale`` and ``power``."""
    return (np.asarray(sigma, float) / scale) ** (1.0 / power)


def per_particle(table: pd.DataFrame) -> pd.DataFrame:
    """Per particle: median sigma and raw ratio, robust and mean error, positions."""
    g = table.groupby(["preset", "seed", "particle"])
    out = g.agg(
        sigma=("sigma", "median"), err_mean=("err", "mean"), err_median=("err", "median"), n=("err", "size")
    )
    out["robust"] = out["err_median"] / MEDIAN_R
    out["raw"] = raw_ratio(out["sigma"].to_numpy())
    return out.reset_index()


def fit_constants(particles: pd.DataFrame) -> tuple[float, float]:
    """``(SCALE, POWER)``: the straight line ``log robust = log SCALE + POWER log raw`` over
    particles (least squares: every particle weighs the same)."""
    ok = particles[np.isfinite(particles["raw"]) & (particles["raw"] > 0) & (particles["robust"] > 0)]
    power, intercept = np.polyfit(np.log(ok["raw"].to_numpy()), np.log(ok["robust"].to_numpy()), 1)
    return float(np.exp(intercept)), float(power)


def calibration(table: pd.DataFrame) -> list[dict]:
    """The calibration table (module docstring), per band of sigma."""
    out = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        b = table[(table["sigma"] >= lo) & (table["sigma"] < hi)]
        if b.empty:
            continue
        out.append(
            {
                "band_px": [lo, hi if np.isfinite(hi) else None],
                "positions": len(b),
                "sigma_median_px": float(b["sigma"].median()),
                "robust_err_px": float(b["err"].median() / MEDIAN_R),
                "rms_err_px": float(np.sqrt(np.mean(b["err"] ** 2) / 2)),
                "within_95": sigma_calibration(b["err"], b["sigma"])["sigma_within_95"],
                "wrong": float(b["wrong"].mean()),
            }
        )
    return out


def cuts(table: pd.DataFrame, particles: pd.DataFrame, d_err: dict) -> list[dict]:
    """What each threshold keeps and what the kept positions and particles are worth."""
    out = []
    for cut in CUTS:
        kept = table[~(table["sigma"] > cut)]
        keep_p = particles[~(particles["sigma"] > cut)]
        d = [d_err.get((r.preset, int(r.seed), int(r.particle)), math.nan) for r in keep_p.itertuples()]
        d = np.array([x if x is not None else math.nan for x in d], float)
        out.append(
            {
                "max_sigma_px": cut if np.isfinite(cut) else None,
                "kept": float(len(kept) / len(table)) if len(table) else math.nan,
                "err_px": float(kept["err"].mean()) if len(kept) else math.nan,
                "wrong": float(kept["wrong"].mean()) if len(kept) else math.nan,
                "particles": f"{len(keep_p)}/{len(particles)}",
                "d_rel_err": float(np.nanmean(d)) if np.isfinite(d).any() else math.nan,
            }
        )
    return out


def summarise(table: pd.DataFrame, d_err: dict) -> dict:
    particles = per_particle(table)
    rho = scipy.stats.spearmanr(particles["sigma"], particles["err_mean"], nan_policy="omit")[0]
    return {
        "positions": len(table),
        "particles": len(particles),
        "spearman_sigma_err": float(rho),
        "within_95": sigma_calibration(table["err"], table["sigma"])["sigma_within_95"],
        "robust_over_sigma_median": float(np.median(particles["robust"] / particles["sigma"])),
        "calibration": calibration(table),
        "cuts": cuts(table, particles, d_err),
    }


def _print(name: str, s: dict) -> None:
    print(
        f"\n== {name}: {s['positions']} positions, {s['particles']} particles; "
        f"Spearman(sigma, error) {s['spearman_sigma_err']:.2f}; within {R95:.2f} sigma {s['within_95']:.3f}; "
        f"median robust error / sigma {s['robust_over_sigma_median']:.2f}"
    )
    print("  sigma band px   n       sigma  robust  rms    in95   wrong")
    for c in s["calibration"]:
        lo, hi = c["band_px"]
        print(
            f"  {lo:4.1f}-{'inf' if hi is None else f'{hi:.1f}':>4}   {c['positions']:6d}  "
            f"{c['sigma_median_px']:5.2f}  {c['robust_err_px']:5.2f}  {c['rms_err_px']:5.2f}  "
            f"{c['within_95']:.3f}  {c['wrong']:.4f}"
        )
    print("  max sigma px  kept   error px  wrong   particles  D error")
    for c in s["cuts"]:
        cut = "none" if c["max_sigma_px"] is None else f"{c['max_sigma_px']:.1f}"
        print(
            f"  {cut:>5}        {c['kept']:.3f}  {c['err_px']:.2f}      {c['wrong']:.4f}  "
            f"{c['particles']:>8}  {c['d_rel_err']:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="bench_accuracy.py --out folders")
    ap.add_argument("--videos-dir", type=Path, default=VIDEOS)
    ap.add_argument("--fit", action="store_true", help="fit SCALE and POWER (tuning runs only)")
    ap.add_argument(
        "--made-with",
        nargs=2,
        type=float,
        metavar=("SCALE", "POWER"),
        help="constants the runs were tracked with (default: the current ones); sigma is redone",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    parts, d_err = [], {}
    for run in args.runs:
        t, d = positions(run, args.videos_dir)
        parts.append(t)
        d_err.update(d)
    table = pd.concat(parts, ignore_index=True)
    if args.made_with:
        table["sigma"] = SIGMA_SCALE * raw_ratio(table["sigma"], *args.made_with) ** SIGMA_POWER
    if table.empty:
        raise SystemExit("no tracked videos found in " + ", ".join(map(str, args.runs)))
    record = {
        "runs": [str(r) for r in args.runs],
        "constants": {"scale": SIGMA_SCALE, "power": SIGMA_POWER},
        "made_with": args.made_with,
    }
    if args.fit:
        scale, power = fit_constants(per_particle(table))
        record["fit"] = {"scale": scale, "power": power}
        print(f"fit: SIGMA_SCALE = {scale:.3f}, SIGMA_POWER = {power:.3f}")
    record["presets"] = {}
    for preset, t in [("all", table), *table.groupby("preset")]:
        record["presets"][preset] = summarise(t, d_err)
        _print(preset, record["presets"][preset])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
