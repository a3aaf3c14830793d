"""Training curves of a ``samem train`` run from its metrics.jsonl.

    python bench/plot_training.py docs/model/default/metrics.jsonl --out docs/img/training_default.png

Left: total loss and its mask terms per logged step; right: IoU on the propagated frames of
the training batches (smoothed) and on the held-out validation clips (live weights, and the
moving average where the run keeps one), and with `crop.vanish_prob` the fraction of
vanished objects the model calls absent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < n:
        return y
    return np.convolve(y, np.ones(n) / n, mode="valid")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics")
    ap.add_argument("--out", default="docs/img/training_default.png")
    ap.add_argument("--window", type=int, default=20, help="moving-average window (logged steps)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.metrics).read_text().splitlines() if line.strip()]
    train = [r for r in rows if "total" in r]
    val = [r for r in rows if "val_iou" in r]
    step = np.array([r["step"] for r in train])
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    w = args.window
    for key, label in (
        ("total", "total"),
        ("dice", "dice"),
        ("iou", "IoU prediction"),
        ("score", "object score"),
    ):
        y = np.array([r[key] for r in train])
        ax1.plot(step[w - 1 :] if len(y) >= w else step, smooth(y, w), label=label, lw=1.2)
    ax1.set_yscale("log")
    ax1.set_xlabel("training step")
    ax1.set_ylabel(f"loss ({w}-log moving mean)")
    ax1.legend(frameon=False, fontsize=8)
    tiou = np.array([r["track_iou"] for r in train])
    ax2.plot(step[w - 1 :] if len(tiou) >= w else step, smooth(tiou, w), label="training batches", lw=1.2)
    if val:
        ax2.plot([r["step"] for r in val], [r["val_iou"] for r in val], "o-", label="held-out clips", ms=3)
    ema = [r for r in val if "val_iou_ema" in r]
    if ema:
        ax2.plot([r["step"] for r in ema], [r["val_iou_ema"] for r in ema], "s-", label="held-out, EMA", ms=3)
    absent = [r for r in val if "val_absent" in r]
    if absent:
        ax2.plot(
            [r["step"] for r in absent],
            [r["val_absent"] for r in absent],
            "^--",
            ms=3,
            label="held-out, vanished objects called absent (fraction)",
        )
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("training step")
    ax2.set_ylabel("mask IoU, propagated frames / fraction")
    ax2.legend(frameon=False, fontsize=8)
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    print(out)


if __name__ == "__main__":
    main()
