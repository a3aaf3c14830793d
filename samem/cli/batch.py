"""``samem batch INPUTS... --out DIR``: analyse many videos on a dask cluster.

Exit status: 0 when every video is done or was already finished, 1 when some videos failed
(listed on stderr and in ``DIR/summary.csv``), 2 for a user error before anything ran.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch",
        help="analyse many videos (files, folders, patterns) on a LocalCluster or a dask cluster",
        description=(
            "Run the `samem analyze` pipeline on every input video as a dask.distributed task and "
            "write DIR/<video name>/ per video plus DIR/summary.csv, summary.json, particles.csv and "
            "plots across videos. Finished videos are skipped when run again."
        ),
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video files, folders of videos or frames, patterns"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--auto-prompt",
        action="store_true",
        help="prompt videos without a VIDEO.boxes.json next to them with the automatic detector",
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="address of a running dask scheduler (tcp://host:8786)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers, i.e. videos at once")
    p.add_argument("--force", action="store_true", help="analyse finished videos again")
    p.add_argument("--model", help="model name or checkpoint, as for samem analyze")
    p.add_argument("--pixel-size-nm", type=float, metavar="NM", help="pixel size for every video, nm/px")
    p.add_argument("--frame-interval-s", type=float, metavar="S", help="frame interval for every video, s")
    p.add_argument(
        "--analyze-config",
        metavar="FILE",
        help="analysis settings merged over configs/serve.yaml (analyze --config)",
    )
    p.add_argument("--save-frames", action="store_true", help="also copy the raw frames into each results.h5")
    p.add_argument("--no-plots", action="store_true", help="skip the per-video figures")
    p.add_argument("--config", metavar="FILE", help="YAML overriding configs/batch.yaml")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _run(args: argparse.Namespace) -> int:
    from samem.batch import load_batch_config, run_batch

    options = {
        k: v
        for k, v in (
            ("model", args.model),
            ("pixel_size_nm", args.pixel_size_nm),
            ("frame_interval_s", args.frame_interval_s),
            ("config", args.analyze_config),
            ("save_frames", True if args.save_frames else None),
            ("plots", False if args.no_plots else None),
        )
        if v is not None
    }
    result = run_batch(
        args.inputs,
        args.out,
        auto_prompt=args.auto_prompt,
        scheduler=args.scheduler,
        workers=args.workers,
        force=args.force,
        options=options,
        config=load_batch_config(args.config),
        progress=False if args.no_progress else None,
    )
    table = pd.DataFrame(result.rows)
    shown = [
        c
        for c in ("name", "status", "particles", "frames", "D_mean", "D_unit", "alpha_mean", "processing_fps")
        if c in table
    ]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for group in result.report.get("particles_pooled", []):
        print(
            f"all videos ({group['videos']} videos, {group['particles']} fitted particles): "
            f"D = {_pm(group['D_mean'], group['D_se'])} {group['D_unit']}, "
            f"alpha = {_pm(group['alpha_mean'], group['alpha_se'])}"
        )
    print(f"summary: {result.out / 'summary.csv'}")
    if result.failed:
        for row in result.failed:
            print(f"samem batch: {row['name']} failed: {row.get('error')}", file=sys.stderr)
        print(f"samem batch: {len(result.failed)} of {len(result.rows)} videos failed", file=sys.stderr)
        return 1
    return 0


def _pm(value, error) -> str:
    """``value ± error`` with 4 significant digits; "n/a" for a missing value."""
    if value is None:
        return "n/a"
    return f"{value:.4g}" + (f" ± {error:.2g}" if error is not None else "")


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
