"""Centroid estimators on tracked masks, offline: how far each lands from the true centre.

Reads ``bench_accuracy.py`` result folders (``<preset>_<seed>_samem/``: the reported masks in
``results.h5`` and positions in ``tracks.csv``) with their videos, and recomputes the
intensity centroid (``samem.track.centroid``) of every reported mask with other settings:
the background ring width and the mask dilation (fractions of the prompt-box side), and the
frame with or without the tracker's ``denoise`` smoothing (``no denoise``: without). Masks
and tracking are the same for all variants (the centroid never steers the tracker), so
differences are the estimator's alone. Errors are Euclidean, px, over the frames where the
particle is reported present and lies fully inside the field (as ``samem eval``'s centroid
error).

    python bench/bench_accuracy.py --seeds tuning --videos 4 --baseline none --out bench/results/ring
    python bench/bench_centroid.py bench/results/ring --json bench/centroid_ring.json

The ``tracker`` column is ``tracks.csv`` itself, next to its recomputation (``ring`` of the runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from samem.eval.evaluate import truth_boxes
from samem.synthetic import read_truth
from samem.track.centroid import DILATE, intensity_centroid
from samem.track.preprocess import denoise, denoise_sigma, to_gray
from samem.track.roi import box_side, mask_geometry

RINGS = (0.25, 0.4, 0.6, 0.8, 1.2)
DILATES = (0.0, 0.1, 0.2)


def _video_of(run: Path, videos: Path) -> Path:
    name = run.name.removesuffix("_samem")
    found = sorted(videos.glob(f"{name}_*px_*f.h5"))
    if not found:
        sys.exit(f"no video for {run} in {videos}")
    return found[0]


def errors_of_run(job: tuple[str, str, float, float]) -> pd.DataFrame:
    """Per (frame, particle) centroid errors of every variant for one result folder."""
    run, videos, denoise_frac, ring_now = Path(job[0]), Path(job[1]), job[2], job[3]
    video = _video_of(run, videos)
    sides = {k: box_side(np.array(b)) for k, b in truth_boxes(video).items()}
    sigma = denoise_sigma(denoise_frac, sides.values())
    tracks = pd.read_csv(run / "tracks.csv")
    tracks = tracks[tracks["present"].astype(bool)]
    truth = read_truth(video).tracks
    truth = truth[truth["inside"].astype(bool)].set_index(["frame", "particle"])[["x", "y"]]
    rows = []
    with h5py.File(video, "r") as fv, h5py.File(run / "results.h5", "r") as fr:
        for t, group in tracks.groupby("frame"):
            raw = to_gray(fv["frames"][t])
            gray = denoise(raw, sigma)
            labels = fr["labels"][t]
            for r in group.itertuples():
                key = (int(t), int(r.particle))
                if key not in truth.index:
                    continue
                tx, ty = truth.loc[key]
                mask = labels == r.particle
                geometry = mask_geometry(mask)
                if geometry is None:
                    continue
                (mx, my), bbox = geometry
                side = sides[int(r.particle)]

                def err(c, tx=tx, ty=ty):
                    return np.nan if c is None else float(np.hypot(c[0] - tx, c[1] - ty))

                row = {"video": run.name, "frame": key[0], "particle": key[1]}
                row["tracker"] = err((r.x, r.y))
                row["mask"] = err((mx, my))
                for ring in RINGS:
                    row[f"ring {ring}"] = err(intensity_centroid(gray, mask, bbox, side, ring=ring))
                    row[f"ring {ring}, no denoise"] = err(
                        intensity_centroid(raw, mask, bbox, side, ring=ring)
                    )
                for d in DILATES:
                    c = intensity_centroid(gray, mask, bbox, side, dilate=d, ring=ring_now)
                    row[f"dilate {d} (ring {ring_now})"] = err(c)
                rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="bench_accuracy.py --out folders")
    ap.add_argument("--videos-dir", default="bench/results/videos")
    ap.add_argument("--denoise", type=float, default=0.04, help="the tracker's denoise option of the runs")
    ap.add_argument("--ring", type=float, default=0.25, help="the ring the runs were tracked with")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write the per-preset means here")
    args = ap.parse_args()
    folders = sorted(str(p) for run in args.runs for p in Path(run).glob("*_samem"))
    if not folders:
        sys.exit("no <preset>_<seed>_samem folders in the given runs")
    jobs = [(f, args.videos_dir, args.denoise, args.ring) for f in folders]
    with Pool(args.jobs) as pool:
        df = pd.concat(pool.map(errors_of_run, jobs))
    df["preset"] = df["video"].str.split("_").str[0]
    means = df.drop(columns=["video", "frame", "particle"]).groupby("preset").mean().T
    print(f"mean centroid error (px), {len(folders)} videos, dilate default {DILATE}")
    print(means.round(3).to_string())
    if args.json:
        out = {
            "runs": args.runs,
            "videos": [Path(f).name for f in folders],
            "frames": {p: int(n) for p, n in df.groupby("preset").size().items()},
            "mean_err_px": {
                preset: {variant: round(float(v), 4) for variant, v in means[preset].items()}
                for preset in means.columns
            },
        }
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
