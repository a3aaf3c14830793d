"""``samem movie``: an annotated movie of a results file (contours, ids, trails, scale bar, time)."""

from __future__ import annotations

import argparse

from samem.cli import frame_progress


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "movie",
        help="render results.h5 as a movie with contours, ids, trails, scale bar and time stamp",
        description="Draw every tracked particle's contour, id and trail, a scale bar (nm), the frame number "
        "and time and a progress bar on each frame of the video, and write OUT: .mp4, .gif, or a folder of "
        "PNG frames. Frames come from RESULTS when it holds them, else from --video.",
    )
    p.add_argument("results", help="results.h5 from samem analyze, or a samem serve recording")
    p.add_argument(
        "--out", required=True, metavar="OUT", help="tracked.mp4, tracked.gif or a folder (PNG frames)"
    )
    p.add_argument("--video", metavar="VIDEO", help="the tracked video, when RESULTS holds no frames")
    p.add_argument("--fps", type=float, help="movie frames/s (default: the recording's rate, 1..30)")
    p.add_argument("--trail", type=int, default=30, metavar="N", help="frames of trail behind each particle")
    p.add_argument("--max-side", type=int, default=1024, metavar="PX", help="largest movie side, px (1024)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT")
    p.set_defaults(func=run)


def _run(args: argparse.Namespace) -> int:
    from samem.view.movie import render_movie

    out = render_movie(
        args.results,
        args.out,
        video=args.video,
        fps=args.fps,
        trail_frames=args.trail,
        max_side=args.max_side,
        overwrite=args.overwrite,
        progress=frame_progress("movie"),
    )
    print(f"wrote {out}")
    return 0


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
