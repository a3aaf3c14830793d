"""Re-found events of the tracker on tuning videos: is the particle really there?

Runs the tracker (default model, given tracker options) over tuning videos (``bench_accuracy``
seeds ``--seeds tuning``), records per frame and particle the reported presence, SAM 2's
predicted IoU, the true IoU and the centroid, and then looks at every *re-found event*: the
first frame on which an object reported absent on its previous frame is reported present
again. An event is *real* when the particle is visible in the truth there and the mask
overlaps it (IoU > 0.2), else *noise*. Printed per kind: the predicted IoU, the distance of
the last seen centroid to the frame border and the distance from it to the re-found one (both
in particle sizes, the square root of the object's area on its first frames), and the number
of absent frames before. This is the evidence behind the presence rule (docs/model_card.md)::

    python bench/bench_refind.py --presets medium thick --videos 6 --tracker reappear_iou=0

(2-vCPU machine, one torch thread; about 20 s per video).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import VIDEOS, held_out_seeds, held_out_video  # noqa: E402

import samem  # noqa: E402
from samem.eval.evaluate import truth_boxes  # noqa: E402
from samem.eval.metrics import iou  # noqa: E402
from samem.track.options import parse_options  # noqa: E402


def frame_rows(video: Path, model, options: dict) -> pd.DataFrame:
    """Per frame and particle: presence, predicted and true IoU, centroid (px)."""
    tracker = samem.StreamingTracker(model, mode="roi", **options)
    boxes = truth_boxes(video)
    rows = []
    with h5py.File(video, "r") as f:
        frames, labels = f["frames"], f["truth/labels"]
        for t in range(frames.shape[0]):
            res = tracker.start(frames[t], boxes) if t == 0 else tracker.step(frames[t])
            lab = labels[t]
            for pid, r in res.items():
                truth = lab == pid
                rows.append(
                    {
                        "t": t,
                        "pid": pid,
                        "present": r.present,
                        "pred_iou": r.iou,
                        "iou": iou(r.mask, truth),
                        "area": int(r.mask.sum()),
                        "true_area": int(truth.sum()),
                        "x": r.centroid[0],
                        "y": r.centroid[1],
                    }
                )
    return pd.DataFrame(rows)


def refound_events(df: pd.DataFrame, shape: tuple[int, int]) -> pd.DataFrame:
    """The re-found events of one video (module docstring)."""
    h, w = shape
    events = []
    for pid, d in df.groupby("pid"):
        d = d.sort_values("t").reset_index(drop=True)
        size = float(np.sqrt(d.area[:10].median()))
        last, gap, was_present = None, 0, True
        for r in d.itertuples():
            if r.present and not was_present and last is not None:
                events.append(
                    {
                        "pid": pid,
                        "t": r.t,
                        "real": bool(r.true_area > 0 and r.iou > 0.2),
                        "pred_iou": r.pred_iou,
                        "edge_sizes": min(last[0], last[1], w - 1 - last[0], h - 1 - last[1]) / size,
                        "jump_sizes": float(np.hypot(r.x - last[0], r.y - last[1])) / size,
                        "gap_frames": gap,
                    }
                )
            if r.present:
                last, gap = (r.x, r.y), 0
            else:
                gap += 1
            was_present = r.present
    return pd.DataFrame(events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--presets", nargs="+", default=["medium", "thick"])
    ap.add_argument("--videos", type=int, default=6, help="tuning videos per preset")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--out", default="bench/results/refind")
    args = ap.parse_args()
    torch.set_num_threads(1)
    options = parse_options(args.tracker)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = samem.load_model(args.model)
    all_events = []
    for preset in args.presets:
        for seed in held_out_seeds(preset, args.videos, tuning=True):
            video = held_out_video(VIDEOS, preset, seed, args.frames, 1024, 4)
            df = frame_rows(video, model, options)
            df.to_csv(out / f"{preset}_{seed}_frames.csv", index=False)
            ev = refound_events(df, (1024, 1024))
            if not ev.empty:
                all_events.append(ev.assign(preset=preset, seed=seed))
            print(f"{preset} {seed}: {len(ev)} re-found events", flush=True)
    if not all_events:
        print("no re-found events")
        return
    events = pd.concat(all_events, ignore_index=True)
    events.to_csv(out / "events.csv", index=False)
    cols = ["pred_iou", "edge_sizes", "jump_sizes", "gap_frames"]
    print(f"\n{len(events)} events; tracker options {options or 'defaults'}")
    print(events.groupby("real")[cols].describe().T.to_string())
    for margin in (0.5, 1.0, 1.5):
        near = events.edge_sizes < margin
        real = events.real
        print(
            f"within {margin} sizes of the border: {int((real & near).sum())}/{int(real.sum())} real, "
            f"{int((~real & near).sum())}/{int((~real).sum())} noise"
        )


if __name__ == "__main__":
    main()
