"""Does SAM 2's mask trail a fast, faint particle because its ROI window trails it? (issue 21)

Tracks synthetic videos (boxes from the truth's first frame, shipped model, tracker
defaults or ``--tracker`` options) several ways:

* ``tracker``: as shipped, each window centred where the object was last seen;
* ``oracle``: before SAM 2 looks at a frame, every object's window is centred on its
  particle's true centre on that frame (the truth's centre of mass);
* ``oracle+N``: the same, the centre off by Gaussian noise of N px per axis (``--noise``).

Per particle, over the frames on which it is visible and wholly inside the field, two
positions are scored: the centroid of SAM 2's own mask (``model``: the one that steers the
window, before the position check) and the reported position (``reported``: the
trajectory's, frames reported present). For each, the rms error (px) and the lag ``beta``
of ``error = -beta x true step`` per axis (least squares, as ``bench_d_bias.py``: 0 no lag,
1 the position stays where the particle was), errors larger than ``--wrong-px`` left out of
``beta``. The oracle rows say what a window that does not trail would give the model.
With several videos a summary per SNR bin follows (mean of the particles' rms errors,
median beta, and how often SAM 2's own centroid was the closer one). Videos are those of
``bench_accuracy.py`` (any samem synthetic video):

    python bench/bench_window_oracle.py bench/results/videos/thin_2061_1024px_150f.h5 --noise 3 6
    python bench/bench_window_oracle.py bench/results/videos/{thin,medium,thick}_20[0-7]?_1024px_150f.h5 \
        --no-oracle --jobs 2
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

import samem
from samem.errors import SamemError
from samem.eval.evaluate import truth_boxes
from samem.synthetic import read_truth
from samem.track.options import parse_options

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_d_bias import _lag_beta  # noqa: E402


def track(
    model, video: Path, frames: int, noise: float | None, options: dict, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model centroids and reported positions of one run (``noise`` None: no oracle;
    ``options``: tracker options).

    Returns two tables with columns frame, particle, x, y (pixel indices)."""
    truth = read_truth(video).tracks.set_index(["frame", "particle"])
    boxes = truth_boxes(video)
    tracker = samem.StreamingTracker(model, **options)
    rng = np.random.default_rng(seed)
    model_rows, reported = [], []
    encode, observe = tracker._encode, tracker._observe

    def centred_encode(gray, levels, ids):
        for oid in ids:
            if noise is not None and (tracker._frame_idx, oid) in truth.index:
                x, y = truth.loc[(tracker._frame_idx, oid), ["x", "y"]]
                dx, dy = rng.normal(0.0, noise, 2) if noise > 0 else (0.0, 0.0)
                tracker._objects[oid].centre = (x + 0.5 + dx, y + 0.5 + dy)  # continuous coordinates
        return encode(gray, levels, ids)

    def recording_observe(obj, *args):
        look = observe(obj, *args)
        if look is not None:
            oid = next(o for o, held in tracker._objects.items() if held is obj)
            model_rows.append((tracker._frame_idx, oid, *look.geometry.centroid))
        return look

    tracker._encode, tracker._observe = centred_encode, recording_observe
    with h5py.File(video, "r") as f:
        data = f["frames"]
        for t in range(min(frames, len(data))):
            out = tracker.start(data[t], boxes) if t == 0 else tracker.step(data[t])
            reported += [(t, oid, *r.centroid) for oid, r in out.items() if r.present]
    columns = ["frame", "particle", "x", "y"]
    return pd.DataFrame(model_rows, columns=columns), pd.DataFrame(reported, columns=columns)


def scores(positions: pd.DataFrame, truth: pd.DataFrame, wrong_px: float) -> dict[int, dict]:
    """Per particle: frames scored, rms error (px) and lag beta (module docstring)."""
    keys = ["frame", "particle"]
    before = truth[keys + ["x", "y"]].assign(frame=truth["frame"] + 1)
    rows = positions.merge(truth[keys + ["x", "y"]], on=keys, suffixes=("", "_true")).merge(
        before, on=keys, suffixes=("", "_before")
    )
    out = {}
    for pid, r in rows.groupby("particle"):
        err = np.stack([r["x"] - r["x_true"], r["y"] - r["y_true"]], axis=1)
        step = np.stack([r["x_true"] - r["x_before"], r["y_true"] - r["y_before"]], axis=1)
        ok = np.hypot(*err.T) <= wrong_px
        out[int(pid)] = {
            "frames": len(r),
            "rms_px": float(np.sqrt(np.mean(np.sum(err**2, axis=1)))),
            "beta": _lag_beta(err[ok].ravel(), step[ok].ravel()),
        }
    return out


def run_video(video: Path, frames: int, modes: dict, options: dict, wrong_px: float, threads: int) -> dict:
    """Every mode's per-particle scores on one video, with each particle's median SNR and rms
    true step (px per axis) over its frames wholly inside the field."""
    torch.set_num_threads(threads)
    t = read_truth(video).tracks
    inside = t[t["visible"].astype(bool) & t["inside"].astype(bool)]
    steps = inside.sort_values("frame").groupby("particle")[["x", "y"]].diff()
    rms_step = np.sqrt((steps**2).sum(axis=1).groupby(inside["particle"]).mean() / 2)
    snr = t.groupby("particle")["snr"].median()
    model = samem.load_model("default")
    out = {
        "video": str(video),
        "snr": {int(p): float(v) for p, v in snr.items()},
        "step_px": {int(p): float(v) for p, v in rms_step.items()},
        "modes": {},
    }
    for name, noise in modes.items():
        found, reported = track(model, video, frames, noise, options)
        out["modes"][name] = {
            kind: scores(table, inside, wrong_px)
            for kind, table in (("model", found), ("reported", reported))
        }
    return out


#: per-pixel SNR bins of the summary over several videos
SNR_BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.8, float("inf"))


def print_video(result: dict) -> None:
    snr, step = result["snr"], result["step_px"]
    print(f"\n{Path(result['video']).name}: rms error px / lag beta per particle\n")
    print(
        "| mode | position | "
        + " | ".join(f"#{p} (SNR {snr[p]:.2f}, step {step[p]:.1f} px)" for p in snr)
        + " |"
    )
    print("|---|---|" + "---|" * len(snr))
    for name, kinds in result["modes"].items():
        for kind, s in kinds.items():
            cells = [f"{s[p]['rms_px']:.2f} / {s[p]['beta']:.2f}" if p in s else "n/a" for p in snr]
            print(f"| {name} | {kind} | " + " | ".join(cells) + " |")


def summary(results: list[dict]) -> list[dict]:
    """Per mode, SNR bin and position: particles, mean rms error, median beta, and the share of
    particles on which SAM 2's own mask centroid was closer than the reported position."""
    rows = []
    for name in results[0]["modes"]:
        for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
            pids = [(r, p) for r in results for p, v in r["snr"].items() if lo <= v < hi]
            both = [
                (r["modes"][name]["model"][p], r["modes"][name]["reported"][p])
                for r, p in pids
                if p in r["modes"][name]["model"] and p in r["modes"][name]["reported"]
            ]
            if not both:
                continue
            model, reported = zip(*both)
            rows.append(
                {
                    "mode": name,
                    "snr": f"{lo:g}-{hi:g}",
                    "particles": len(both),
                    "model_rms_px": float(np.mean([m["rms_px"] for m in model])),
                    "reported_rms_px": float(np.mean([m["rms_px"] for m in reported])),
                    "model_beta": float(np.nanmedian([m["beta"] for m in model])),
                    "reported_beta": float(np.nanmedian([m["beta"] for m in reported])),
                    "model_closer": float(np.mean([m["rms_px"] < q["rms_px"] for m, q in both])),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", type=Path, nargs="+")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--no-oracle", action="store_true", help="only the tracker as shipped")
    ap.add_argument("--noise", type=float, nargs="*", default=[], help="oracle centring noise (px per axis)")
    ap.add_argument("--wrong-px", type=float, default=15.0, help="errors left out of beta (px)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (split between jobs)")
    ap.add_argument("--jobs", type=int, default=1, help="videos tracked in parallel processes")
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    missing = [str(v) for v in args.videos if not v.exists()]
    if missing:
        raise SystemExit(f"no such video: {', '.join(missing)} (bench_accuracy.py generates them)")
    try:
        options = parse_options(args.tracker)
    except SamemError as e:
        raise SystemExit(str(e)) from None
    modes = {"tracker": None}
    if not args.no_oracle:
        modes |= {"oracle": 0.0, **{f"oracle+{n:g}": n for n in args.noise}}
    task = functools.partial(
        run_video,
        frames=args.frames,
        modes=modes,
        options=options,
        wrong_px=args.wrong_px,
        threads=max(1, args.threads // args.jobs),
    )
    print(f"{len(args.videos)} video(s), {args.frames} frames, {options or 'tracker defaults'}", flush=True)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(task, args.videos))
    else:
        results = [task(v) for v in args.videos]
    for r in results:
        print_video(r)
    rows = summary(results)
    print("\nBy median per-pixel SNR (mean over particles of their rms error; median beta):\n")
    print(
        "| mode | SNR | particles | model rms px | reported rms px | model beta | reported beta "
        "| model closer |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['snr']} | {r['particles']} | {r['model_rms_px']:.2f} "
            f"| {r['reported_rms_px']:.2f} "
            f"| {r['model_beta']:.2f} | {r['reported_beta']:.2f} | {r['model_closer']:.0%} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"frames": args.frames, "tracker_options": options, "videos": results, "summary": rows}
        args.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
