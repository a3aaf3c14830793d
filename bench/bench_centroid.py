"""Centroid estimators on tracked masks, offline: how far each lands from the true centre.

Reads ``bench_accuracy.py`` result folders (``<preset>_<seed>_samem/``: the reported masks in
``results.h5`` and positions in ``tracks.csv``) with their videos, and recomputes the
intensity centroid (``samem.track.centroid``) of every reported mask with other settings:
the background ring width and the mask dilation (fractions of the prompt-box side), and the
frame with or without the tracker's ``denoise`` smoothing (``no denoise``: without). Two
other estimators run beside it: the intensity centroid recomputed ``iterate n`` more times
with the mask moved onto the last estimate (as trackpy refines its centroids), and the
tracker's matched filter (``matched rate half k``: :mod:`samem.track.matched` with
``matched_rate`` rate and ``matched_half`` k, fed every frame the particle is reported
present and restarted after an absence, as the tracker does). Masks and tracking are the
same for all variants (the centroid never steers the tracker), so differences are the
estimator's alone. Errors are Euclidean, px, over the frames where the particle is reported
present and lies fully inside the field (as ``samem eval``'s centroid error).

    python bench/bench_accuracy.py --seeds tuning --videos 4 --baseline none --out bench/results/ring
    python bench/bench_centroid.py bench/results/ring --json bench/records/centroid/centroid_ring.json
    python bench/bench_centroid.py bench/results/ring --ring 0.8 --rings 0.8 \
        --json bench/records/centroid/centroid_estimators.json

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
from samem.track.centroid import DILATE, intensity_centroid, local_contrast, weighted_centroid
from samem.track.matched import MatchedFilter
from samem.track.preprocess import denoise, denoise_sigma, to_gray
from samem.track.roi import box_side, mask_geometry, shift_mask

RINGS = (0.25, 0.4, 0.6, 0.8, 1.2)
DILATES = (0.0, 0.1, 0.2)
ITERATIONS = (1, 2, 4)
TEMPLATES = ("0.05:0.45", "0.1:0.45", "0.05:0.5", "0.05:0.6")  # samem.track.matched: rate:half


def iterated(gray, mask, bbox, side, ring, n):
    """The intensity centroid recomputed ``n`` more times, the mask moved onto the last one."""
    c = intensity_centroid(gray, mask, bbox, side, ring=ring)
    for _ in range(n):
        if c is None:
            return None
        (mx, my), _ = mask_geometry(mask)
        moved = shift_mask(mask, bbox, c[0] - mx, c[1] - my)
        if moved is None:
            return c
        mask, bbox = moved
        c = intensity_centroid(gray, mask, bbox, side, ring=ring) or c
    return c


def _video_of(run: Path, videos: Path) -> Path:
    name = run.name.removesuffix("_samem")
    found = sorted(videos.glob(f"{name}_*px_*f.h5"))
    if not found:
        sys.exit(f"no video for {run} in {videos}")
    return found[0]


def errors_of_run(job: tuple) -> pd.DataFrame:
    """Per (frame, particle) centroid errors of every variant for one result folder."""
    run, videos, denoise_frac, ring_now, rings, iterations, templates = job
    run, videos = Path(run), Path(videos)
    video = _video_of(run, videos)
    sides = {k: box_side(np.array(b)) for k, b in truth_boxes(video).items()}
    sigma = denoise_sigma(denoise_frac, sides.values())
    tracks = pd.read_csv(run / "tracks.csv")
    tracks = tracks[tracks["present"].astype(bool)]
    truth = read_truth(video).tracks
    truth = truth[truth["inside"].astype(bool)].set_index(["frame", "particle"])[["x", "y"]]
    rows = []
    filters = {}  # (particle, rate, half width) -> MatchedFilter
    last = {}  # particle -> last frame it was reported present
    with h5py.File(video, "r") as fv, h5py.File(run / "results.h5", "r") as fr:
        for t, group in tracks.groupby("frame"):
            raw = to_gray(fv["frames"][t])
            gray = denoise(raw, sigma)
            labels = fr["labels"][t]
            for r in group.itertuples():
                key = (int(t), int(r.particle))
                mask = labels == r.particle
                geometry = mask_geometry(mask)
                if geometry is None:
                    continue
                (mx, my), bbox = geometry
                side = sides[int(r.particle)]
                matched = {}  # fed on every present frame, as the tracker feeds its filters
                contrast = local_contrast(gray, mask, bbox, side, ring=ring_now)
                start = None if contrast is None else weighted_centroid(contrast)
                for rate, k in templates:
                    f = filters.setdefault((key[1], rate, k), MatchedFilter(rate, k))
                    if start is None or key[0] - last.get(key[1], -10) > 1:
                        f.clear()  # the tracker starts a new template after an absence
                    matched[f"matched {rate} half {k}"] = None if start is None else f(contrast, start, side)
                last[key[1]] = key[0]
                if key not in truth.index:
                    continue
                tx, ty = truth.loc[key]

                def err(c, tx=tx, ty=ty):
                    return np.nan if c is None else float(np.hypot(c[0] - tx, c[1] - ty))

                row = {"video": run.name, "frame": key[0], "particle": key[1]}
                row["tracker"] = err((r.x, r.y))
                row["mask"] = err((mx, my))
                for ring in rings:
                    row[f"ring {ring}"] = err(intensity_centroid(gray, mask, bbox, side, ring=ring))
                    row[f"ring {ring}, no denoise"] = err(
                        intensity_centroid(raw, mask, bbox, side, ring=ring)
                    )
                for n in iterations:
                    row[f"iterate {n} (ring {ring_now})"] = err(iterated(gray, mask, bbox, side, ring_now, n))
                row.update({name: err(c) for name, c in matched.items()})
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
    ap.add_argument("--rings", type=float, nargs="+", default=RINGS, help="ring widths to recompute with")
    ap.add_argument("--iterations", type=int, nargs="*", default=ITERATIONS, help="'iterate n' variants")
    ap.add_argument(
        "--templates",
        nargs="*",
        default=TEMPLATES,
        metavar="RATE:HALF",
        help="matched-filter variants (samem.track.matched): update rate and half width (box sides)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="write the per-preset means here")
    args = ap.parse_args()
    folders = sorted(str(p) for run in args.runs for p in Path(run).glob("*_samem"))
    if not folders:
        sys.exit("no <preset>_<seed>_samem folders in the given runs")
    templates = tuple(tuple(float(v) for v in t.split(":")) for t in args.templates)
    variants = (tuple(args.rings), tuple(args.iterations), templates)
    jobs = [(f, args.videos_dir, args.denoise, args.ring, *variants) for f in folders]
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
