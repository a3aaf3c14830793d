"""``make demo``: a synthetic experiment through the live service, end to end.

Generates a synthetic LPTEM video with known diffusion coefficients, starts ``samem serve``
in a subprocess (auto-prompt, exact-replay backpressure, recording), replays the video into
it like a microscope, collects the published results, and prints a summary (particles, D per
particle against the truth, processing rate) and writes the figures. Run as
``python -m samem.cli.demo [--out DIR] [--frames N] [--size PX] [--model M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq

from samem.errors import SamemError

CLI = [sys.executable, "-m", "samem.cli.main"]
ANY = "tcp://127.0.0.1:*"


def _wait_ready(proc: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("{"):
                return json.loads(line)
    raise SamemError("samem serve did not start (see its messages above)")


def _match_truth(first_positions: dict, truth_first) -> dict:
    """Tracked object id -> nearest truth particle on the first frame it was seen."""
    out = {}
    for oid, (frame, x, y) in first_positions.items():
        rows = truth_first[truth_first.frame == frame]
        if len(rows):
            d = np.hypot(rows.x - x, rows.y - y)
            out[oid] = (int(rows.particle.iloc[int(np.argmin(d))]), float(d.min()))
    return out


def run_demo(
    out: Path,
    frames: int,
    size: int,
    model: str,
    preset: str,
    fps: float,
    view: str | None = None,
    open_browser: bool = False,
) -> int:
    from samem.io.readers import open_video
    from samem.io.recorder import open_results
    from samem.io.table import read_table
    from samem.stats.plots import plot_all
    from samem.stats.summary import read_stats
    from samem.stream.client import FrameSender, replay
    from samem.stream.protocol import decode_pub
    from samem.synthetic import SynthParams, generate, write_h5

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("synthetic.h5", "recording.h5", "serve.yaml"):
        (out / stale).unlink(missing_ok=True)
    print(f"[1/4] synthetic video: {preset} preset, {frames} frames of {size} x {size} px", flush=True)
    params = SynthParams.from_preset(
        preset, frames=frames, size=size, n_particles=4, seed=7, pixel_size_nm=1.0
    )
    video = generate(params)
    src = write_h5(video, out / "synthetic.h5")
    # the tracker runs in the model's own mode (ROI crops for the shipped default)
    (out / "serve.yaml").write_text("stats:\n  every_frames: 50\n")

    print(f"[2/4] starting samem serve (model {model!r}, auto-prompt, recording)", flush=True)
    serve = subprocess.Popen(
        CLI
        + ["serve", "--ingest", ANY, "--publish", ANY, "--control", ANY, "--model", model, "--auto-prompt"]
        + ["--policy", "block", "--record", str(out / "recording.h5"), "--config", str(out / "serve.yaml")]
        + (["--view", view] if view else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        ep = _wait_ready(serve, timeout_s=300)
        if view:
            print(f"  live view: {ep['view']}", flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(ep["view"])  # returns at once; False (ignored) without a browser
                time.sleep(2.0)  # let the page connect before the first frames
        sub.connect(ep["publish"])
        time.sleep(0.5)
        print(f"[3/4] replaying into {ep['ingest']} at {fps or 'max'} frames/s", flush=True)
        t0 = time.monotonic()
        with open_video(src) as reader, FrameSender(ep["ingest"], send_timeout_s=120, context=ctx) as tx:
            replay(reader, tx, fps=fps)
        first, final, n_frames, events = {}, None, 0, {}
        deadline = time.monotonic() + 600
        while final is None and time.monotonic() < deadline:
            if not sub.poll(1000):
                if serve.poll() is not None:
                    raise SamemError("samem serve exited early")
                continue
            topic, msg = decode_pub(sub.recv_multipart())
            if topic == "frame":
                n_frames += 1
                for o in msg["objects"]:
                    if o["present"] and o["id"] not in first:
                        first[o["id"]] = (msg["seq"], o["x"], o["y"])
            elif topic == "feedback":
                for e in msg["events"]:
                    events[e["kind"]] = events.get(e["kind"], 0) + 1
            elif topic == "stats" and msg.get("final"):
                final = msg
        elapsed = time.monotonic() - t0
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 30000)
        req.connect(ep["control"])
        req.send_json({"cmd": "status"})
        status = req.recv_json()
        req.send_json({"cmd": "shutdown"})
        req.recv_json()
        req.close(0)
        serve.wait(timeout=120)
    finally:
        sub.close(0)
        if serve.poll() is None:
            serve.terminate()
            serve.wait(timeout=60)
        ctx.term()

    print("[4/4] summary", flush=True)
    truth_D = video.particles.set_index("particle")["D_nm2_s"]
    match = _match_truth(first, video.tracks)
    tracking_fps = status["processing_fps"]
    print(
        f"  frames: {status['frames_received']} received, {status['frames_processed']} processed, "
        f"{status['frames_dropped']} dropped, {status['messages_rejected']} rejected"
    )
    print(
        f"  rate: {n_frames / elapsed:.1f} frames/s end to end, "
        f"{tracking_fps if tracking_fps is not None else float('nan'):.1f} frames/s in the tracker; "
        f"feedback events: {events or 'none'}"
    )
    particles = (final or {}).get("particles", [])
    print(f"  particles tracked: {len(particles)} (truth: {len(truth_D)})")
    print("  id  truth  dist_px  D_nm2_s (fit +- err)   D_true_nm2_s  alpha")
    for p in particles:
        pid, dist = match.get(p["particle"], (None, float("nan")))
        true = truth_D.get(pid, float("nan")) if pid is not None else float("nan")
        D, err = p.get("D_nm2_s"), p.get("D_err_nm2_s")
        d_txt = f"{D:9.1f} +- {err:7.1f}" if D is not None and err is not None else "      n/a          "
        alpha = p.get("alpha")
        a_txt = f"{alpha:.2f}" if alpha is not None else "n/a"
        print(f"  {p['particle']:>2}  {pid!s:>5}  {dist:7.1f}  {d_txt}   {true:12.1f}  {a_txt}")
    with open_results(out / "recording.h5") as f:
        tracks = read_table(f["tracks"])
        stats = read_stats(f["stats"]) if "stats" in f else None
    tracks.attrs.update(pixel_size_nm=video.pixel_size_nm, frame_interval_s=video.frame_interval_s)
    present = tracks[tracks.present]
    if stats is not None and len(present):
        paths = plot_all(present, out, stats=stats, frame_shape=(size, size), formats=("png",))
        print(f"  figures: {', '.join(str(p) for p in paths)}")
    print(f"  recording: {out / 'recording.h5'}; synthetic truth: {src}")
    from samem.model.checkpoint import DEFAULT_WEIGHTS

    if str(model) == "default" and not DEFAULT_WEIGHTS.is_file() and not os.environ.get("SAMEM_DEMO_QUIET"):
        print("  note: no trained default weights are installed; a random model's D values mean nothing")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m samem.cli.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--frames", type=int, default=120, help="frames to generate")
    p.add_argument("--size", type=int, default=256, help="frame side, px")
    p.add_argument("--model", default="default", help="model for samem serve")
    p.add_argument("--preset", default="medium", help="synthetic preset: thin, medium, thick")
    p.add_argument("--fps", type=float, default=0.0, help="replay rate, frames/s (0: as fast as processed)")
    p.add_argument("--view", metavar="HOST:PORT", help="serve the live browser view (samem serve --view)")
    p.add_argument("--open", action="store_true", help="open the live view in the default web browser")
    args = p.parse_args(argv)
    try:
        return run_demo(
            Path(args.out), args.frames, args.size, args.model, args.preset, args.fps, args.view, args.open
        )
    except SamemError as exc:
        print(f"samem demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
