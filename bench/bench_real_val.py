"""Score training checkpoints on the held-out *train* tiles of microscopy-seg-track.

Model selection for real-image fine-tuning (``configs/train/real_finetune.yaml``) must never
look at the test split; this script scores box-prompted instance IoU (as ``bench_real.py``
does on the test split) on the last ``--held-out`` train tiles, the ones the fine-tuning
config keeps out of training (``data.tiles_val``), for each checkpoint given.

    python bench/bench_real_val.py samem/weights/default.pt runs/real_finetune/step_*.pt \
        --json bench/records/real/real_val.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_real import _tracker_factory, instances, iou, read_image, read_label_mask  # noqa: E402

from samem.train.tiles import split_tiles  # noqa: E402


def score(model: str, pairs, threads: int) -> dict:
    """Mean, median and 10th percentile instance IoU of the whole particles of ``pairs``."""
    factory, _, _ = _tracker_factory(model, threads)
    ious = []
    for img_path, lab_path in pairs:
        image = read_image(img_path)
        truth = [t for t in instances(read_label_mask(lab_path)) if t.whole]
        if not truth:
            continue
        res = factory().start(image, {k + 1: t.prompt for k, t in enumerate(truth)})
        ious += [iou(np.asarray(res[k + 1].mask, bool), t.mask) for k, t in enumerate(truth)]
    a = np.asarray(ious)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "p10": float(np.percentile(a, 10)),
        "n": int(a.size),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="shipped weights or training checkpoints (last.pt)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "realdata")
    ap.add_argument("--held-out", type=int, default=4, help="last train tiles held out of fine-tuning")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from samem.train.trainer import export_weights

    _, val = split_tiles([str(args.data / "microscopy-seg-track" / "train")], args.held_out)
    out = {"tiles": [p[0].name for p in val], "scores": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.checkpoints:
            model = ckpt
            import torch

            if "optimizer" in torch.load(ckpt, map_location="cpu", weights_only=False):
                model = str(export_weights(ckpt, Path(tmp) / (Path(ckpt).stem + ".pt")))
            out["scores"][ckpt] = score(model, val, args.threads)
            print(ckpt, json.dumps(out["scores"][ckpt]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
