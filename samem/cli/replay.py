"""``samem replay``: stream a recorded video into a running ``samem serve`` like a microscope."""

from __future__ import annotations

import argparse

from samem.cli import frame_progress


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "replay",
        help="stream a video file into samem serve as a simulated microscope",
        description="Send every frame of INPUT (HDF5, TIFF, MP4/AVI, image folder) to a samem serve "
        "ingest socket at a fixed frame rate, using the ingest protocol (docs/protocol.md).",
    )
    p.add_argument("input", help="video file or folder of images")
    p.add_argument("--to", default="tcp://127.0.0.1:5555", metavar="ADDRESS", help="service ingest address")
    p.add_argument(
        "--fps", type=float, default=10.0, help="frames/s to send; 0 = as fast as the service accepts"
    )
    p.add_argument("--start", type=int, default=0, help="first frame to send")
    p.add_argument("--stop", type=int, default=None, help="frame to stop before (default: the end)")
    p.add_argument("--pixel-size-nm", type=float, default=None, help="nm/px, overrides the file's metadata")
    p.add_argument("--frame-interval-s", type=float, default=None, help="s, overrides the file's metadata")
    p.add_argument("--series", default=None, help="series name (default: the file name)")
    p.add_argument(
        "--timeout-s", type=float, default=30.0, help="give up after this long without the service accepting"
    )
    p.add_argument("--server-key", default=None, help="service's public CurveZMQ certificate")
    p.add_argument("--client-key", default=None, help="this client's secret CurveZMQ certificate")
    p.set_defaults(func=run)


def _run(args: argparse.Namespace) -> int:
    from samem.io.readers import open_video
    from samem.stream.client import FrameSender, replay

    with open_video(args.input, args.pixel_size_nm, args.frame_interval_s) as reader:
        with FrameSender(
            args.to,
            send_timeout_s=args.timeout_s,
            server_public_key=args.server_key,
            client_secret_key=args.client_key,
        ) as sender:
            from samem.cli.userlog import release

            release()  # input opened: from now on warnings print as they happen
            report = replay(
                reader,
                sender,
                fps=args.fps,
                start=args.start,
                stop=args.stop,
                series=args.series,
                progress=frame_progress("replay"),
            )
    print(
        f"sent {report.frames} frames in {report.elapsed_s:.1f} s ({report.fps:.1f} frames/s"
        + (f", {report.late_frames} late" if report.late_frames else "")
        + f") to {args.to}"
    )
    return 0


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
