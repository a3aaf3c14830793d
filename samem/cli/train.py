"""``samem train``: train or fine-tune the SAM 2 architecture on LPTEM clips."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a SAM 2 model on synthetic LPTEM clips (resumable)",
        description=(
            "Full-model training of the SAM 2 architecture with memory propagation through short clips, "
            "as the tracker runs it. Re-running with the same run.out resumes from its last.pt. "
            "Overrides are section.key=value, e.g. optim.lr=1e-4 data.clips_per_batch=4 "
            "model.init=sam2.1_hiera_tiny.pt model.config=sam2.1_hiera_t."
        ),
    )
    p.add_argument("--config", default="default", help="configs/train/NAME.yaml or a path (default: default)")
    p.add_argument(
        "--init", help="checkpoint to fine-tune from (Meta's sam2.1_hiera_*.pt, SAM-EM's, samem's)"
    )
    p.add_argument(
        "--out",
        help="run folder (checkpoints, metrics.jsonl); same as run.out=... (default: ~/samem-runs/CONFIG)",
    )
    p.add_argument("--steps", type=int, help="stop after this many more steps (default: run to optim.steps)")
    p.add_argument("--export", metavar="PT", help="after training, write slim weights (model + config) here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samem.train.config import load_train_config
    from samem.train.trainer import Trainer, export_weights

    overrides = list(args.overrides)
    if args.init:
        overrides.append(f"model.init={args.init}")
    if args.out:
        overrides.append(f"run.out={args.out}")
    cfg = load_train_config(args.config, overrides)
    trainer = Trainer(cfg)
    last = trainer.fit(steps=args.steps, progress=not args.no_progress)
    if last:
        print(f"step {trainer.step}: loss {last['total']:.4f}, propagated-frame IoU {last['track_iou']:.3f}")
    print(f"checkpoint: {trainer.out / 'last.pt'}; metrics: {trainer.out / 'metrics.jsonl'}")
    if args.export:
        out = export_weights(trainer.out / "last.pt", Path(args.export))
        print(f"exported weights: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
