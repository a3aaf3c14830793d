"""``samem eval``: samem and the classical baseline against a synthetic video's ground truth."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from samem.cli import add_tracker_argument

ROWS = [
    ("mean IoU", "iou_mean", "{:.3f}"),
    ("J&F (0-100)", "jf_mean", "{:.1f}"),
    ("centroid error (px)", "centroid_err_px", "{:.2f}"),
    ("centroid error (nm)", "centroid_err_nm", "{:.2f}"),
    ("worst particle (px)", "centroid_err_worst_px", "{:.2f}"),
    ("ID switches", "id_switches", "{:d}"),
    ("MOTA", "mota", "{:.3f}"),
    ("IDF1", "idf1", "{:.3f}"),
    ("coverage (correct)", "coverage", "{:.3f}"),
    ("wrong while present", "wrong_while_present", "{:.3f}"),
    ("present when gone", "present_when_gone", "{:.3f}"),
    ("D tracked vs true", "d_rel_err", "{:.1%}"),
    ("frames/s", "fps", "{:.1f}"),
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="accuracy of samem and the classical baseline on a synthetic video with ground truth",
        description=(
            "Prompts every particle with its box on the truth's first frame, tracks the video with samem "
            "(or scores an existing results.h5) and with the classical baseline (bandpass + trackpy locate "
            "+ link, local-threshold masks), and reports IoU, J&F, centroid error, ID switches, MOTA/IDF1, "
            "coverage (frames reported present within one equivalent radius of the truth), wrong while "
            "present (frames reported present farther off, or while the particle is gone) and the error of "
            "D from tracked vs true trajectories."
        ),
    )
    p.add_argument("truth", help="synthetic video with /truth (from samem synth)")
    p.add_argument("--model", default="default", help="model name, config or checkpoint (default: default)")
    p.add_argument("--mode", choices=["roi", "full"], help="tracker mode (default: the model's)")
    add_tracker_argument(p)
    p.add_argument("--results", help="score this existing results.h5 instead of running samem")
    p.add_argument("--baseline", default="classical", choices=["classical", "none"], help="reference method")
    p.add_argument("--json", metavar="OUT", help="write all metrics as JSON here")
    p.add_argument("--out", help="keep samem's analysis outputs in this folder (default: a temporary one)")
    p.set_defaults(func=run)


def _fmt(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return fmt.format(value)


def run(args: argparse.Namespace) -> int:
    from samem.cli import frame_progress
    from samem.errors import SamemError
    from samem.eval.evaluate import evaluate
    from samem.track.options import parse_options

    if not Path(args.truth).exists():
        raise SamemError(f"{args.truth}: no such file")
    tracker_options = parse_options(args.tracker)
    with tempfile.TemporaryDirectory(prefix="samem-eval-") as tmp:
        out_dir = Path(args.out) if args.out else Path(tmp)
        metrics = evaluate(
            args.truth,
            out_dir,
            model=args.model,
            baseline=args.baseline,
            results=args.results,
            mode=args.mode,
            progress=frame_progress("samem"),
            tracker_options=tracker_options,
        )
    methods = list(metrics)
    print(f"{'metric':<22}" + "".join(f"{m:>14}" for m in methods))
    for label, key, fmt in ROWS:
        print(f"{label:<22}" + "".join(f"{_fmt(fmt, metrics[m].get(key)):>14}" for m in methods))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1, default=float))
        print(f"metrics written to {args.json}")
    return 0
