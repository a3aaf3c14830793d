"""Ceiling that the ROI mask representation puts on IoU, independent of any trained weights.

The tracker pastes SAM 2's low-resolution mask logits (a quarter of the model input: 32 x 32
for the 128 px compact model) bilinearly upsampled to the ROI window. Here every truth mask of
the held-out videos is pushed through that path with ideal logits (area fraction of each
low-resolution pixel, as a logit), using the tracker's own window and upsampling functions,
and compared with the truth: the IoU a perfect model could reach with this representation.

    python bench/bench_mask_ceiling.py --grid 32 16 64
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from bench_accuracy import PRESETS, VIDEOS, held_out_seeds, held_out_video

from samem.track.roi import Window, cut, logits_to_mask, window_side


def ceiling(video, grid: int, crop_px: int, context: float, every: int) -> list[float]:
    """IoU of ideal ``grid`` x ``grid`` logits against the truth, per object and sampled frame."""
    with h5py.File(video) as f:
        labels = f["truth/labels"]
        first = labels[0]
        ids = [i for i in np.unique(first) if i]
        sides = {}
        for i in ids:
            rows, cols = np.nonzero(first == i)
            box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], float)
            sides[i] = window_side(box, crop_px, context)
        out = []
        for t in range(0, labels.shape[0], every):
            lab = labels[t]
            for i in ids:
                mask = lab == i
                if not mask.any():
                    continue
                rows, cols = np.nonzero(mask)
                side = sides[i]
                win = Window.around(cols.mean() + 0.5, rows.mean() + 0.5, side)
                truth = cut(mask.astype(np.float32), win, side, 0.0)
                frac = F.adaptive_avg_pool2d(torch.from_numpy(truth)[None, None], grid).clamp(1e-3, 1 - 1e-3)
                pred = logits_to_mask(torch.log(frac / (1 - frac)), side, side)
                ref = truth > 0.5
                out.append(float((pred & ref).sum() / (pred | ref).sum()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, nargs="+", default=[32], help="low-res mask side (input / 4)")
    ap.add_argument("--crop-px", type=int, default=128, help="smallest ROI window side (px)")
    ap.add_argument("--context", type=float, default=3.0)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--every", type=int, default=10, help="score every n-th frame")
    args = ap.parse_args()
    print("| preset | " + " | ".join(f"ceiling, {g} x {g} logits" for g in args.grid) + " |")
    print("|---|" + "---|" * len(args.grid))
    for preset in PRESETS:
        videos = [
            held_out_video(VIDEOS, preset, s, args.frames, args.size, args.particles)
            for s in held_out_seeds(preset, args.videos)
        ]
        cells = []
        for g in args.grid:
            ious = [v for video in videos for v in ceiling(video, g, args.crop_px, args.context, args.every)]
            cells.append(f"{np.mean(ious):.3f} (5th percentile {np.percentile(ious, 5):.3f})")
        print(f"| {preset} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
