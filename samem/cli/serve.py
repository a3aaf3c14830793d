"""``samem serve``: live tracking over ZeroMQ (docs/service.md, docs/protocol.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from samem.cli import add_tracker_argument, apply_tracker_arguments


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="live tracking service: frames in over ZeroMQ, tracks/stats/feedback out",
        description="Receive frames on a PULL socket, track particles with SAM 2, publish per-frame "
        "results, statistics and closed-loop feedback on a PUB socket, and answer control commands "
        "on a REP socket. Settings: configs/serve.yaml, --config FILE, then these options.",
    )
    p.add_argument("--ingest", metavar="ADDR", help="PULL address for frames (default tcp://127.0.0.1:5555)")
    p.add_argument("--publish", metavar="ADDR", help="PUB address for results (default tcp://127.0.0.1:5556)")
    p.add_argument(
        "--control", metavar="ADDR", help="REP address for commands (default tcp://127.0.0.1:5557)"
    )
    p.add_argument("--record", metavar="FILE", help="record results (and raw frames) to this HDF5 file")
    p.add_argument(
        "--boxes", metavar="FILE", help='box prompts {"frame": 0, "boxes": {"1": [x0, y0, x1, y1]}}'
    )
    p.add_argument(
        "--auto-prompt", action="store_true", default=None, help="detect particles to start tracking"
    )
    p.add_argument("--model", metavar="M", help="model: default, a checkpoint path or a model config")
    p.add_argument("--config", metavar="FILE", help="YAML settings merged over configs/serve.yaml")
    add_tracker_argument(p)
    p.add_argument(
        "--policy",
        choices=["latest", "drop_oldest", "block"],
        help="when frames arrive faster than processed (default latest: newest frame, skipped ones dropped)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        default=None,
        help="allow non-loopback binds (needs CurveZMQ keys, or the insecure option below)",
    )
    p.add_argument(
        "--curve-secret-key", metavar="FILE", help="the service's secret CurveZMQ certificate (.key_secret)"
    )
    p.add_argument(
        "--curve-clients", metavar="DIR", help="folder of the public certificates of authorised clients"
    )
    p.add_argument(
        "--insecure-remote-anyone-can-connect",
        dest="insecure_remote",
        action="store_true",
        default=None,
        help="allow a non-loopback bind WITHOUT CurveZMQ: anyone who can reach the ports can send "
        "frames and commands (closed networks only)",
    )
    p.add_argument(
        "--view",
        metavar="HOST:PORT",
        help="serve a live browser view of the tracking on HOST:PORT, e.g. 127.0.0.1:8765 (port 0: a free "
        "one); a non-loopback HOST needs --allow-remote and then a token (docs/service.md)",
    )
    p.add_argument(
        "--view-token",
        metavar="TOKEN",
        help="access token of the view (16-256 characters A-Z a-z 0-9 . _ ~ -); generated and printed for a "
        "non-loopback --view when not given",
    )
    p.set_defaults(func=run)


def _run(args: argparse.Namespace) -> int:
    from samem.errors import SamemError
    from samem.stream.control import load_boxes_file
    from samem.stream.service import Service, model_tracker_factory
    from samem.stream.session import check_boxes_file_limits
    from samem.stream.settings import load_settings

    settings = load_settings(
        args.config,
        {
            "sockets.ingest": args.ingest,
            "sockets.publish": args.publish,
            "sockets.control": args.control,
            "sockets.allow_remote": args.allow_remote,
            "sockets.insecure_remote": args.insecure_remote,
            "sockets.curve.server_secret_key": args.curve_secret_key,
            "sockets.curve.authorized_clients": args.curve_clients,
            "recording.file": args.record,
            "prompts.boxes_file": args.boxes,
            "prompts.auto": args.auto_prompt,
            "model.name": args.model,
            "ingest.policy": args.policy,
        },
    )
    settings = apply_tracker_arguments(settings, args.tracker)
    view_opts = None
    if args.view is not None:
        from samem.view.server import view_options

        view_opts = view_options(args.view, settings.sockets.allow_remote, args.view_token)
    elif args.view_token is not None:
        raise SamemError("--view-token needs --view HOST:PORT")
    record = settings.recording.file
    if record:
        from pathlib import Path

        if Path(record).exists():
            raise SamemError(f"{record} exists; choose another recording file or remove it")
        if not Path(record).parent.is_dir():
            raise SamemError(f"{Path(record).parent}: no such folder for the recording")
    boxes = load_boxes_file(settings.prompts.boxes_file) if settings.prompts.boxes_file else None
    check_boxes_file_limits(boxes, settings)  # before the model loads
    factory, model_name = model_tracker_factory(settings.model)
    service = Service(settings, factory, model_name=model_name, boxes=boxes)
    endpoints = service.start()
    view = None
    if view_opts is not None:
        from samem.view.server import ViewServer

        view = ViewServer(view_opts, service.handle_control, recording=bool(record))
        try:
            endpoints["view"] = view.start()
        except SamemError:
            service.close()
            raise
        view.attach(service)
    from samem.cli.userlog import release

    release()  # set up: from now on warnings print as they happen
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    print(json.dumps({"samem_serve": "ready", **endpoints}), flush=True)
    print(
        f"samem serve: ingest {endpoints['ingest']}, publish {endpoints['publish']}, control "
        f"{endpoints['control']} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    if view is not None:
        print(f"samem serve: live view at {endpoints['view']}", file=sys.stderr, flush=True)
    try:
        service.serve_forever()
    finally:
        if view is not None:
            view.stop()
    status = service.status()
    print(
        f"samem serve: stopped; {status['frames_processed']} frames processed, "
        f"{status['frames_dropped']} dropped, {status['messages_rejected']} messages rejected",
        file=sys.stderr,
    )
    return 0


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
