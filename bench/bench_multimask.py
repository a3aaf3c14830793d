"""How much better a mask SAM 2's other multimask candidates would have given, per frame.

On a propagated frame SAM 2's mask decoder proposes three candidate masks with a predicted
IoU each and keeps the one predicted best (``multimask_output_for_tracking``). Trackers built
on SAM 2 (SAMURAI's motion-aware selection, for one) choose among the candidates by other
rules. This script measures the most any such rule could gain with our model: it tracks
tuning videos with the default tracker, records every candidate of every object and frame
(a forward hook on the mask decoder; tracking itself is unchanged), pastes each into the
frame as the tracker pastes its own (raw logits, before temporal smoothing and the move onto
the intensity centroid) and scores it against the truth mask. ``chosen`` is SAM 2's pick,
``oracle`` the best candidate on each frame; both over the frames on which the particle is
visible and reported present.

    python bench/bench_multimask.py --presets thin medium thick --videos 1 \
        --json bench/records/multimask/multimask.json

Videos are the tuning videos of ``bench_accuracy.py`` (seeds 2001 + 10 k, ...), generated
once into ``bench/results/videos``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import h5py
import numpy as np
import torch
from bench_accuracy import VIDEOS, held_out_seeds, held_out_video

import samem
import samem.track.tracker as tracker_module
from samem.eval.evaluate import truth_boxes
from samem.track.roi import paste, upsample_logits


class Recorder:
    """Captures the mask decoder's candidates and the ROI windows of each tracker step."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, torch.Tensor, list]] = []
        self.windows = None
        self._track_step = tracker_module.track_step
        self._encode = tracker_module.StreamingTracker._encode

    def __enter__(self):
        rec = self

        def track_step(model, features, memories, *args, **kwargs):
            got = []

            def hook(_module, _inputs, outputs):
                got.append((outputs[0].detach().clone(), outputs[1].detach().clone()))

            handle = model.sam_mask_decoder.register_forward_hook(hook)
            try:
                out = rec._track_step(model, features, memories, *args, **kwargs)
            finally:
                handle.remove()
            rec.calls.append((*got[0], list(memories)))
            return out

        def encode(self_, gray, levels, ids):
            feats, rec.windows = rec._encode(self_, gray, levels, ids)
            return feats, rec.windows

        tracker_module.track_step = track_step
        tracker_module.StreamingTracker._encode = encode
        return self

    def __exit__(self, *exc):
        tracker_module.track_step = self._track_step
        tracker_module.StreamingTracker._encode = self._encode


def candidates_of_video(video: Path, frames: int) -> np.ndarray:
    """Rows ``(frame, particle, chosen index, IoU of candidates 0..M-1, predicted IoU 0..M-1)``
    for the propagated frames on which a visible particle is reported present."""
    tracker = samem.StreamingTracker(samem.load_model("default"))
    rows = []
    with h5py.File(video, "r") as f, Recorder() as rec:
        n = min(frames, len(f["frames"]))
        for t in range(n):
            rec.calls.clear()
            frame, labels = f["frames"][t], f["truth/labels"][t]
            results = tracker.start(frame, truth_boxes(video)) if t == 0 else tracker.step(frame)
            if t == 0:
                continue
            owner = {id(o.memory): oid for oid, o in tracker._objects.items()}
            for masks, ious, memories in rec.calls:
                for i, memory in enumerate(memories):
                    oid = owner[id(memory)]
                    truth = labels == oid
                    if not truth.any() or not results[oid].present:
                        continue
                    win = rec.windows[oid]
                    scores = []
                    for j in range(masks.shape[1]):
                        cand = paste(
                            upsample_logits(masks[i : i + 1, j : j + 1], win.side, win.side) > 0,
                            win,
                            labels.shape,
                        )
                        scores.append((cand & truth).sum() / max((cand | truth).sum(), 1))
                    pred = ious[i].tolist()
                    rows.append([t, oid, int(np.argmax(pred)), *scores, *pred])
    return np.array(rows, float)


def summary(rows: np.ndarray) -> dict:
    m = (rows.shape[1] - 3) // 2
    iou, pred = rows[:, 3 : 3 + m], rows[:, 3 + m :]
    chosen = iou[np.arange(len(rows)), rows[:, 2].astype(int)]
    return {
        "frames": int(len(rows)),
        "chosen_iou": float(chosen.mean()),
        "oracle_iou": float(iou.max(axis=1).mean()),
        "candidate_iou": [float(v) for v in iou.mean(axis=0)],
        "candidate_predicted_iou": [float(v) for v in pred.mean(axis=0)],
        "chosen_is_best": float((iou.argmax(axis=1) == rows[:, 2]).mean()),
        "chosen_index_counts": np.bincount(rows[:, 2].astype(int), minlength=m).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["thin", "medium", "thick"])
    ap.add_argument("--videos", type=int, default=1, help="tuning videos per preset")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} torch threads",
        "videos": {},
    }
    for preset in args.presets:
        per_preset = []
        for seed in held_out_seeds(preset, args.videos, tuning=True):
            video = held_out_video(Path(VIDEOS), preset, seed, 300, 1024, 4)
            rows = candidates_of_video(video, args.frames)
            out["videos"][f"{preset}_{seed}"] = summary(rows)
            per_preset.append(rows)
        s = out.setdefault("presets", {})[preset] = summary(np.concatenate(per_preset))
        print(
            f"{preset}: {s['frames']} frames, IoU chosen {s['chosen_iou']:.3f},"
            f" oracle {s['oracle_iou']:.3f}, per candidate {np.round(s['candidate_iou'], 3).tolist()},"
            f" chosen is best {s['chosen_is_best']:.0%}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
