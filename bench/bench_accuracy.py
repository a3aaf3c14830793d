"""Accuracy of a model and the classical baseline on held-out synthetic LPTEM videos.

For each preset (thin 5 nm, medium 50 nm, thick 150 nm liquid) a video is generated with
a seed never used in training (training draws from ``ClipStream`` seeds 0 and 10000),
tracked by ``samem eval`` (boxes from the truth's first frame) and scored. Prints a
Markdown table and writes all metrics as JSON.

    python bench/bench_accuracy.py --model default --frames 300 --size 1024 --out bench/results/accuracy

The targets of the default model (issue 6) are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from samem.eval.evaluate import evaluate
from samem.synthetic import SynthParams, write_h5

PRESETS = {"thin": 1001, "medium": 1002, "thick": 1003}
TARGETS = {  # iou, centroid px, id switches, D rel err
    "thin": (0.90, 1.5, 0, 0.05),
    "medium": (0.85, 2.0, 0, 0.05),
    "thick": (0.75, 3.0, 0, 0.10),
}


def held_out_video(folder: Path, preset: str, frames: int, size: int, particles: int) -> Path:
    """The held-out video of ``preset`` (seed from PRESETS), generated once into ``folder``."""
    video = Path(folder) / f"{preset}_{PRESETS[preset]}_{size}px_{frames}f.h5"
    if not video.exists():
        params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=particles, seed=PRESETS[preset])
        write_h5(params, video, progress=False)
    return video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--mode", choices=["roi", "full"])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/accuracy")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for preset in args.presets:
        video = held_out_video(out, preset, args.frames, args.size, args.particles)
        t0 = time.perf_counter()
        results[preset] = evaluate(video, out / f"{preset}_samem", model=args.model, mode=args.mode)
        print(f"{preset}: evaluated in {time.perf_counter() - t0:.0f} s", flush=True)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    payload = {
        "model": args.model,
        "frames": args.frames,
        "size": args.size,
        "machine": machine,
        "results": results,
    }
    (out / "accuracy.json").write_text(json.dumps(payload, indent=1, default=float))
    print(
        f"\nmodel {args.model}; {args.size} px, {args.particles} particles, {args.frames} frames; {machine}\n"
    )
    print("| preset | method | mean IoU | J&F | centroid err (px) | ID switches | D tracked vs true | fps |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, methods in results.items():
        for name, m in methods.items():
            print(
                f"| {preset} | {name} | {m['iou_mean']:.3f} | {m['jf_mean']:.1f} | "
                f"{m['centroid_err_px']:.2f} | {m['id_switches']} | {m['d_rel_err']:.1%} | {m['fps']:.1f} |"
            )
        iou, cen, ids, d = TARGETS[preset]
        print(f"| {preset} | *target* | ≥ {iou:.2f} | | ≤ {cen} | {ids} | ≤ {d:.0%} | |")


if __name__ == "__main__":
    main()
