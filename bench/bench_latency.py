"""Live latency of ``samem serve``: from a frame's send to its result's receipt (issue 25).

A real ``samem serve`` process (shipped model, ``--boxes`` from the video's truth on frame 0,
``--tracker num_threads=THREADS``) is fed by a :class:`samem.stream.client.FrameSender` at a
fixed rate, as ``samem replay`` does, from a synthetic video (preset medium, 1024 px,
``--frames`` frames, seed ``--seed-base`` + particle count: seeds no other benchmark uses); a
SUB client on the ``frame`` topic times every result. Frame 0 (the prompt, which also warms the
model) is sent first and its result awaited; the fixed-rate clock starts after it. Per case
(particles x frames/s x ingest policy): frames sent, results received, frames the service
reports dropped (``status``), latency p50/p99/max over the results, and the 1-minute load
average before and after. ``--repeats`` runs every case that many times, the cases in turn,
and keeps every run in ``--json`` (rows with ``repeat``).

Usage::

    .venv/bin/python bench/bench_latency.py --particles 4 32 --fps 10 20 --policies latest drop_oldest \\
        --json bench/records/service/latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scaling import VIDEOS, video_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(ctx: zmq.Context, address: str, cmd: dict, timeout_s: float = 2.0) -> dict | None:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sock.connect(address)
    try:
        sock.send_json(cmd)
        return sock.recv_json()
    except zmq.Again:
        return None
    finally:
        sock.close(0)


def run_case(video: Path, fps: float, policy: str, args) -> dict:
    import h5py

    from samem.eval.evaluate import truth_boxes
    from samem.stream.client import FrameSender
    from samem.stream.protocol import decode_pub

    with h5py.File(video, "r") as f:
        frames = f["frames"][: args.frames]
    boxes = truth_boxes(video)
    ports = {k: _free_port() for k in ("ingest", "publish", "control")}
    addr = {k: f"tcp://127.0.0.1:{p}" for k, p in ports.items()}
    with tempfile.TemporaryDirectory(prefix="samem_latency_") as tmp:
        boxes_file = Path(tmp) / "boxes.json"
        boxes_file.write_text(json.dumps({"frame": 0, "boxes": {str(k): list(b) for k, b in boxes.items()}}))
        cmd = [args.samem or str(Path(sys.executable).parent / "samem"), "serve"]
        cmd += ["--ingest", addr["ingest"], "--publish", addr["publish"], "--control", addr["control"]]
        cmd += ["--boxes", str(boxes_file), "--model", args.model, "--tracker", f"num_threads={args.threads}"]
        for opt in args.tracker or []:
            cmd += ["--tracker", opt]
        if policy != "default":  # through a settings file: every policy, whatever the CLI offers
            config = Path(tmp) / "settings.yaml"
            config.write_text(f"ingest:\n  policy: {policy}\n")
            cmd += ["--config", str(config)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        if args.omp_wait_policy != "unset":
            env["OMP_WAIT_POLICY"] = args.omp_wait_policy
        load0 = os.getloadavg()[0]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ctx = zmq.Context()
        try:
            deadline = time.monotonic() + 120
            while _command(ctx, addr["control"], {"cmd": "status"}, 1.0) is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"samem serve did not start:\n{proc.stdout.read()[-3000:]}")
            received: dict[int, float] = {}
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"frame")
            sub.setsockopt(zmq.RCVTIMEO, 200)
            sub.connect(addr["publish"])
            stop = threading.Event()

            def listen():
                while not stop.is_set():
                    try:
                        parts = sub.recv_multipart()
                    except zmq.Again:
                        continue
                    now = time.monotonic()
                    topic, payload = decode_pub(parts)
                    if topic == "frame":
                        received[int(payload["seq"])] = now

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            time.sleep(0.5)  # the subscription reaches the publisher
            sent: dict[int, float] = {}
            with FrameSender(addr["ingest"], send_timeout_s=30, context=ctx) as tx:
                tx.start(frames.shape[1:], frames.dtype, 1.0, 1.0 / fps, series="bench_latency")
                sent[0] = time.monotonic()
                tx.send(frames[0], seq=0)
                deadline = time.monotonic() + 120
                while 0 not in received and time.monotonic() < deadline:  # prompt frame: model warm
                    time.sleep(0.01)
                t0 = time.monotonic()
                for i in range(1, len(frames)):
                    due = t0 + (i - 1) / fps
                    while (wait := due - time.monotonic()) > 0:
                        time.sleep(min(wait, 0.005))
                    sent[i] = time.monotonic()
                    tx.send(frames[i], seq=i)
                tx.end()
                deadline = time.monotonic() + 60
                status = None
                while time.monotonic() < deadline:
                    status = _command(ctx, addr["control"], {"cmd": "status"})
                    if status and status["frames_processed"] + status["frames_dropped"] >= len(frames):
                        break
                    time.sleep(0.1)
                time.sleep(0.3)
            stop.set()
            listener.join(2)
            sub.close(0)
            _command(ctx, addr["control"], {"cmd": "shutdown"})
        finally:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            ctx.term()
    load1 = os.getloadavg()[0]
    timed = [s for s in received if s >= 1 + args.warmup]
    lat = np.array([(received[s] - sent[s]) * 1e3 for s in timed]) if timed else np.array([np.nan])
    return {
        "particles": len(boxes),
        "fps_sent": fps,
        "policy": status.get("policy") if status else policy,
        "frames_sent": len(sent),
        "results_received": len(received),
        "frames_dropped": status.get("frames_dropped") if status else None,
        "frames_processed": status.get("frames_processed") if status else None,
        "latency_frames": len(timed),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(np.max(lat)),
        "mean_ms": float(np.mean(lat)),
        "load_before": load0,
        "load_after": load1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--particles", type=int, nargs="+", default=[4, 32])
    ap.add_argument("--fps", type=float, nargs="+", default=[10.0, 20.0])
    ap.add_argument(
        "--policies", nargs="+", default=["default"], help="ingest policies ('default': configs/serve.yaml's)"
    )
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--seed-base", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=5, help="results after the prompt frame not timed")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--omp-wait-policy", default="PASSIVE")
    ap.add_argument("--samem", help="samem executable (default: the one beside this Python)")
    ap.add_argument("--videos-dir", default=str(VIDEOS))
    ap.add_argument("--repeats", type=int, default=1, help="runs of every case, in turn (all kept in --json)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    rows = []
    videos = {
        n: video_path(Path(args.videos_dir), "medium", n, args.frames, 1024, args.seed_base + n)
        for n in args.particles
    }
    cases = [(n, fps, policy) for n in args.particles for fps in args.fps for policy in args.policies]
    for repeat in range(args.repeats):  # every case once per round: a slow spell hits all cases alike
        for n, fps, policy in cases:
            row = {**run_case(videos[n], fps, policy, args), "repeat": repeat}
            rows.append(row)
            print(
                f"{n} particles, {fps:g} frames/s, {row['policy']}: {row['results_received']}/"
                f"{row['frames_sent']} results, {row['frames_dropped']} dropped, latency p50 "
                f"{row['p50_ms']:.0f} p99 {row['p99_ms']:.0f} max {row['max_ms']:.0f} ms "
                f"(load {row['load_before']:.1f}/{row['load_after']:.1f}; run {repeat + 1})",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"threads": args.threads, "tracker": args.tracker, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
