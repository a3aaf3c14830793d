"""``samem analyze``: track a recorded video with the same session as the live service."""

from __future__ import annotations

import argparse

from samem.cli import add_tracker_argument, apply_tracker_arguments, frame_progress


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="track particles in a video file: results.h5, tracks.csv, stats.json, plots",
        description="Run the live service's session over INPUT (HDF5, TIFF stack, MP4/AVI, folder of "
        "JPEG/PNG/TIFF images) and write DIR/results.h5, DIR/tracks.csv, DIR/stats.json and figures.",
    )
    p.add_argument("input", help="video file or folder of images")
    prompts = p.add_mutually_exclusive_group(required=True)
    prompts.add_argument(
        "--boxes", metavar="FILE", help='{"frame": 0, "boxes": {"1": [x0, y0, x1, y1], ...}}'
    )
    prompts.add_argument(
        "--auto-prompt", action="store_true", help="detect the particles on the first frame(s)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", metavar="M", help="model: default, a checkpoint path or a model config")
    p.add_argument("--config", metavar="FILE", help="YAML settings merged over configs/serve.yaml")
    add_tracker_argument(p)
    p.add_argument("--pixel-size-nm", type=float, help="nm/px, overrides the file's calibration")
    p.add_argument(
        "--frame-interval-s", type=float, help="s between frames, overrides the file's calibration"
    )
    p.add_argument("--save-frames", action="store_true", help="also copy the raw frames into results.h5")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument(
        "--movie", action="store_true", help="also write DIR/tracked.mp4: contours, ids, trails (samem movie)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in DIR")
    p.set_defaults(func=run)


def _run(args: argparse.Namespace) -> int:
    from samem.io.readers import open_video
    from samem.stream.control import load_boxes_file
    from samem.stream.offline import analyze_video
    from samem.stream.service import model_tracker_factory
    from samem.stream.session import check_boxes_file_limits
    from samem.stream.settings import load_settings

    settings = load_settings(
        args.config, {"model.name": args.model, "prompts.auto": args.auto_prompt or None}
    )
    settings = apply_tracker_arguments(settings, args.tracker)
    boxes = load_boxes_file(args.boxes) if args.boxes else None
    check_boxes_file_limits(boxes, settings)  # before the model loads
    with open_video(args.input, args.pixel_size_nm, args.frame_interval_s):
        pass  # a missing or unreadable input fails now, before the model loads
    factory, model_name = model_tracker_factory(settings.model)
    report = analyze_video(
        args.input,
        args.out,
        factory(),
        settings,
        boxes=boxes,
        auto_prompt=args.auto_prompt,
        pixel_size_nm=args.pixel_size_nm,
        frame_interval_s=args.frame_interval_s,
        save_frames=args.save_frames,
        overwrite=args.overwrite,
        plots=not args.no_plots,
        model_name=model_name,
        progress=frame_progress("analyze"),
    )
    if args.movie:
        from pathlib import Path

        from samem.view.movie import render_movie

        movie = render_movie(
            Path(args.out) / "results.h5",
            Path(args.out) / "tracked.mp4",
            video=args.input,
            overwrite=True,
            progress=frame_progress("movie"),
        )
        report.files.append(movie)
    print(
        f"analysed {report.frames} frames ({report.fps:.1f} frames/s): {report.particles} particles; "
        f"wrote {len(report.files)} files to {args.out}"
    )
    return 0


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
