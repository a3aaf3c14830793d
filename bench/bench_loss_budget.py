"""Where the mean IoU goes: missed frames, frames on the wrong thing, imperfect masks.

Tracks tuning videos (``bench_accuracy`` seeds ``--seeds tuning``) with the default model and
the given tracker options, and splits ``1 - IoU`` over the frames on which each particle is
visible in the truth into

- *missed*: the tracker reports the particle absent (IoU 0);
- *off*: it reports it present but the mask overlaps it by IoU < 0.1 (a track on noise or
  on the wrong place), counted as ``1 - IoU``;
- *mask*: ``1 - IoU`` of the remaining frames (the particle found, its mask imperfect);

and counts *gone*: frames on which the particle has left the field but is reported present.
The three parts add up to ``1 - `` the mean IoU over visible frames (``bench_accuracy``'s
IoU also counts the gone frames, as IoU 0). Per video and preset, printed and written as
JSON::

    python bench/bench_loss_budget.py --presets medium thick --videos 12 --jobs 2

(2-vCPU machine, one torch thread per job; about 30 s per video).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import VIDEOS, held_out_seeds, held_out_video  # noqa: E402
from bench_refind import frame_rows  # noqa: E402

import samem  # noqa: E402
from samem.track.options import parse_options  # noqa: E402


def budget(df: pd.DataFrame) -> dict:
    """The split of one video's (or several videos') per-frame rows (module docstring)."""
    df = df[df.t > 0]  # as bench_accuracy: the prompted first frame is not scored
    visible = df[df.true_area > 0]
    n = len(visible)
    missed = ~visible.present
    off = visible.present & (visible.iou < 0.1)
    found = visible.present & ~off
    return {
        "visible_frames": int(n),
        "iou_visible": float(visible.iou.where(visible.present, 0.0).mean()),
        "missed": float(missed.sum() / n),
        "off": float((1 - visible.iou[off]).sum() / n),
        "mask": float((1 - visible.iou[found]).sum() / n),
        "iou_when_found": float(visible.iou[found].mean()),
        "gone_frames": int(((df.true_area == 0) & df.present).sum()),
    }


def one(job: tuple) -> tuple[str, int, pd.DataFrame]:
    preset, seed, frames, model_name, options = job
    torch.set_num_threads(1)
    video = held_out_video(VIDEOS, preset, seed, frames, 1024, 4)
    return preset, seed, frame_rows(video, samem.load_model(model_name), options)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--presets", nargs="+", default=["thin", "medium", "thick"])
    ap.add_argument("--videos", type=int, default=4, help="tuning videos per preset")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--out", default="bench/records/learning/loss_budget.json")
    args = ap.parse_args()
    options = parse_options(args.tracker)
    jobs = [
        (preset, seed, args.frames, args.model, options)
        for preset in args.presets
        for seed in held_out_seeds(preset, args.videos, tuning=True)
    ]
    for preset, seed, *_ in jobs:  # generate the videos once, before the workers need them
        held_out_video(VIDEOS, preset, seed, args.frames, 1024, 4)
    rows: dict[str, list] = {p: [] for p in args.presets}
    per_video = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for preset, seed, df in pool.map(one, jobs):
            rows[preset].append(df)
            per_video.append({"preset": preset, "seed": seed, **budget(df)})
            print(f"{preset} {seed}: {per_video[-1]}", flush=True)
    pooled = {p: budget(pd.concat(dfs, ignore_index=True)) for p, dfs in rows.items() if dfs}
    print("\n| preset | videos | IoU, visible frames | missed | off | mask | IoU when found | gone frames |")
    print("|---|---|---|---|---|---|---|---|")
    for p, b in pooled.items():
        print(
            f"| {p} | {len(rows[p])} | {b['iou_visible']:.3f} | {b['missed']:.3f} | {b['off']:.3f} | "
            f"{b['mask']:.3f} | {b['iou_when_found']:.3f} | {b['gone_frames']} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "model": args.model,
        "tracker_options": options,
        "seeds": "tuning",
        "machine": "2-vCPU development machine, one torch thread per job",
        "pooled": pooled,
        "videos": per_video,
    }
    out.write_text(json.dumps(result, indent=1, default=float))
    lost = np.round([1 - b["iou_visible"] for b in pooled.values()], 3)
    print(f"written {out}; 1 - IoU over visible frames (= missed + off + mask): {lost}")


if __name__ == "__main__":
    main()
