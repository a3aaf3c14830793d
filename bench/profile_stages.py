"""Where a tracker step's time goes, per stage and per particle (issue 25).

Tracks the ``bench_scaling.py`` videos (preset medium, 1024 px, seed 3000 + particle count) with
the shipped model and adds up the CPU time (``time.process_time``: all threads of the process,
so it does not count what other jobs on the machine take) of the tracker's stages:

* ``prepare``: grey conversion, frame smoothing (``denoise``) and intensity levels;
* ``crop+encode``: cutting and normalising every ROI window and the image encoder (one batch);
  ``encode`` alone is the encoder;
* ``sam2 step``: memory attention, prompt encoder, mask decoder and memory encoder
  (:func:`samem.track.core.track_step`, one call per group of objects whose memories share a
  layout; the number of calls and their batch sizes are printed);
* ``observe``: mask upsampling, presence and geometry from the model's mask;
* ``verify``: the position check (:mod:`samem.track.verify`);
* ``result``: mask smoothing, pasting, matched-filter centroid (``local_contrast`` and the
  filter);
* ``other``: the rest of the step (memory bookkeeping, Python).

Usage::

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/profile_stages.py --particles 1 4 16 32 --frames 30
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scaling import VIDEOS, video_path  # noqa: E402


def profile(video: Path, frames: int, options: dict) -> dict:
    import h5py

    import samem
    import samem.track.tracker as T
    from samem.eval.evaluate import truth_boxes

    acc: dict[str, float] = collections.defaultdict(float)
    sizes: list[int] = []

    def timed(owner, name, key, record=None):
        inner = getattr(owner, name)

        def wrapper(*a, **k):
            t0 = time.process_time()
            out = inner(*a, **k)
            acc[key] += time.process_time() - t0
            if record is not None:
                record(a, k)
            return out

        setattr(owner, name, wrapper)

    cls = T.StreamingTracker
    timed(T, "track_step", "sam2 step", lambda a, k: sizes.append(len(a[2])))
    timed(T, "encode_images", "encode")
    timed(T, "denoise", "prepare")
    timed(T, "intensity_levels", "prepare")
    timed(T, "to_gray", "prepare")
    timed(cls, "_encode", "crop+encode")
    timed(cls, "_observe", "observe")
    timed(cls, "_verify", "verify")
    timed(cls, "_result", "result")
    tracker = samem.StreamingTracker(samem.load_model("default"), **options)
    boxes = truth_boxes(video)
    with h5py.File(video, "r") as f:
        data = f["frames"][:frames]
    total = []
    for t, frame in enumerate(data):
        if t == 1:
            acc.clear()
            sizes.clear()
        t0 = time.process_time()
        tracker.start(frame, boxes) if t == 0 else tracker.step(frame)
        if t:
            total.append(time.process_time() - t0)
    n = len(total)
    per = {k: v / n * 1e3 for k, v in acc.items()}
    per["other"] = np.sum(total) / n * 1e3 - sum(v for k, v in per.items() if k != "encode")
    return {
        "particles": len(boxes),
        "frames": n,
        "cpu_ms_per_frame": float(np.mean(total) * 1e3),
        "stages_ms_per_frame": per,
        "sam2_calls_per_frame": len(sizes) / n,
        "sam2_batch_sizes": dict(collections.Counter(sizes).most_common()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--particles", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE")
    ap.add_argument("--seed-base", type=int, default=3000)
    ap.add_argument("--video-frames", type=int, default=60, help="length of the bench_scaling videos")
    ap.add_argument("--videos-dir", default=str(VIDEOS))
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    from samem.track.options import parse_options

    torch.set_num_threads(args.threads)
    options = parse_options(args.tracker)
    rows = []
    for n in args.particles:
        video = video_path(Path(args.videos_dir), "medium", n, args.video_frames, 1024, args.seed_base + n)
        load = os.getloadavg()[0]
        row = profile(video, args.frames, options)
        row["load"] = load
        rows.append(row)
        stages = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(row["stages_ms_per_frame"].items(), key=lambda x: -x[1])
        )
        print(
            f"{row['particles']} particles: {row['cpu_ms_per_frame']:.0f} CPU ms/frame "
            f"({row['cpu_ms_per_frame'] / row['particles']:.1f} per particle); {stages}; "
            f"SAM 2 calls/frame {row['sam2_calls_per_frame']:.1f} {row['sam2_batch_sizes']} "
            f"(load {load:.1f})",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"threads": args.threads, "options": options, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
