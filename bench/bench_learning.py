"""Held-out accuracy of training checkpoints: does more training approach the targets?

Each checkpoint (a ``samem train`` ``last.pt`` copy or exported weights) tracks the
held-out videos of ``bench_accuracy.py`` (same seeds, never used in training, pooled the same way); the script
writes one JSON row per checkpoint and plots mean IoU (band: the videos' range) and centroid
error against the training step, with the issue-6 targets as dashed lines.

    python bench/bench_learning.py runs/snapshots/step_*.pt --frames 300 --out bench/results/learning

Rows already in ``OUT/learning.json`` are kept, so checkpoints can be added as training goes.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch
from bench_accuracy import PRESETS, TARGETS, VIDEOS, held_out_seeds, held_out_video, pool
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from samem.eval.evaluate import evaluate
from samem.model.checkpoint import read_checkpoint

ROW_KEYS = (
    "iou_mean",
    "jf_mean",
    "centroid_err_px",
    "id_switches",
    "d_rel_err",
    "coverage",
    "present_when_gone",
)


def checkpoint_step(path: Path) -> int:
    """Training step stored in a checkpoint's meta (else the number in its file name)."""
    meta = read_checkpoint(path).get("meta", {})
    if "step" in meta:
        return int(meta["step"])
    found = re.findall(r"\d+", path.stem)
    if not found:
        raise SystemExit(f"{path}: no step in its meta or name")
    return int(found[-1])


def plot(rows: list[dict], out: Path, marks: list[str] = ()) -> None:
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    colors = {"thin": "C0", "medium": "C1", "thick": "C2"}
    for preset, color in colors.items():
        pts = sorted((r["step"], r[preset]) for r in rows if preset in r)
        if not pts:
            continue
        steps = [p[0] for p in pts]
        ax1.plot(steps, [p[1]["iou_mean"] for p in pts], "o-", color=color, label=preset, ms=4)
        spread = [p[1].get("iou_per_video", [p[1]["iou_mean"]]) for p in pts]
        low, high = [min(v) for v in spread], [max(v) for v in spread]
        ax1.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
        ax2.plot(steps, [p[1]["centroid_err_px"] for p in pts], "o-", color=color, label=preset, ms=4)
        iou, cen, _, _ = TARGETS[preset]
        ax1.axhline(iou, color=color, ls="--", lw=0.8)
        ax2.axhline(cen, color=color, ls="--", lw=0.8)
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("mean mask IoU (held-out videos)")
    ax2.set_yscale("log")
    ax2.yaxis.set_major_formatter(ScalarFormatter())
    ax2.yaxis.set_minor_formatter(ScalarFormatter())
    for mark in marks:  # "STEP=label": a change of training recipe
        step, _, label = mark.partition("=")
        for ax in (ax1, ax2):
            ax.axvline(float(step), color="0.5", lw=0.8, ls=":")
        ax1.annotate(
            label, (float(step), 0.02), fontsize=7, color="0.4", rotation=90, ha="right", va="bottom"
        )
    ax2.set_ylabel("centroid error (px)")
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize=8, title="dashed: target; band: videos", title_fontsize=8)
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--videos", type=int, default=3, help="held-out videos per preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/learning"))
    ap.add_argument("--plot", type=Path, help="figure path (default OUT/learning.png)")
    ap.add_argument("--mark", nargs="*", default=[], help="STEP=label: dotted line at a recipe change")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "learning.json"
    rows = json.loads(table.read_text())["rows"] if table.exists() else []
    machine = f"{platform.processor() or platform.machine()}, {args.threads} torch threads"
    for ckpt in args.checkpoints:
        step = checkpoint_step(ckpt)
        row = {"step": step, "checkpoint": str(ckpt)}
        for preset in args.presets:
            t0 = time.perf_counter()
            per_video = []
            for seed in held_out_seeds(preset, args.videos):
                video = held_out_video(VIDEOS, preset, seed, args.frames, args.size, args.particles)
                per_video.append(
                    evaluate(video, args.out / f"{preset}_run", model=str(ckpt), baseline=None)["samem"]
                )
            m = pool(per_video)
            row[preset] = {k: m[k] for k in ROW_KEYS}
            row[preset]["iou_per_video"] = [v["iou_mean"] for v in m["videos"]]
            print(
                f"step {step} {preset}: IoU {m['iou_mean']:.3f}, centroid {m['centroid_err_px']:.2f} px, "
                f"ID switches {m['id_switches']}, D {m['d_rel_err']:.1%} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        rows = [r for r in rows if r["step"] != step] + [row]
        rows.sort(key=lambda r: r["step"])
        payload = {"machine": machine, "frames": args.frames, "videos_per_preset": args.videos, "rows": rows}
        table.write_text(json.dumps(payload, indent=1, default=float))
    plot(rows, args.plot or args.out / "learning.png", args.mark)
    print(f"{len(rows)} checkpoints; table {table}; figure {args.plot or args.out / 'learning.png'}")
    for r in rows:
        ious = [r[p]["iou_mean"] for p in args.presets if p in r]
        print(f"step {r['step']}: mean IoU over presets {np.mean(ious):.3f}")


if __name__ == "__main__":
    main()
