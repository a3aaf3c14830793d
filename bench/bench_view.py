"""Tracker frames/s of ``samem serve`` with a browser attached to ``--view`` and without.

One ``samem serve --view 127.0.0.1:0`` process (model as given, auto-prompt, ``block`` policy);
the same synthetic video is replayed as fast as the service takes it, alternately without a
browser and with headless Chromium (Playwright, Debian's /usr/bin/chromium) showing the view,
``--rounds`` times each, so that load from other programs on a shared machine hits both
conditions alike. Per run: frames processed / wall time (end to end) and the tracker's own
rate (``status`` processing_fps). Prints JSON; ``--out FILE`` writes it.

    python bench/bench_view.py --frames 80 --size 256 --rounds 3 --out bench/records/view/view.json
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

CLI = [sys.executable, "-m", "samem.cli.main"]
ANY = "tcp://127.0.0.1:*"


def _ready(proc, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1.0)
        if r:
            line = proc.stdout.readline()
            if line.startswith("{"):
                return json.loads(line)
    raise RuntimeError("samem serve did not start")


def _status(ctx, endpoint):
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 30000)
    req.connect(endpoint)
    req.send_json({"cmd": "status"})
    out = req.recv_json()
    req.close(0)
    return out


def _run_once(ctx, ep, reader, sub):
    from samem.stream.client import FrameSender, replay
    from samem.stream.protocol import decode_pub

    before = _status(ctx, ep["control"])["frames_processed"]
    t0 = time.monotonic()
    with FrameSender(ep["ingest"], send_timeout_s=300, context=ctx) as tx:
        replay(reader, tx, fps=None)
    while True:  # the final stats of the series come after its last frame
        if sub.poll(600000) == 0:
            raise RuntimeError("no final statistics")
        topic, msg = decode_pub(sub.recv_multipart())
        if topic == "stats" and msg.get("final"):
            break
    elapsed = time.monotonic() - t0
    status = _status(ctx, ep["control"])
    n = status["frames_processed"] - before
    return {"frames": n, "wall_fps": n / elapsed, "tracker_fps": status["processing_fps"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=80)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="default")
    p.add_argument("--out", help="write the JSON here")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from samem.io.readers import open_video
    from samem.synthetic import SynthParams, generate, write_h5

    tmp = Path(tempfile.mkdtemp(prefix="bench_view_"))
    params = SynthParams.from_preset(
        "medium", frames=args.frames, size=args.size, n_particles=4, seed=7, pixel_size_nm=1.0
    )
    src = write_h5(generate(params), tmp / "video.h5")
    (tmp / "serve.yaml").write_text("stats:\n  every_frames: 25\n")
    proc = subprocess.Popen(
        CLI
        + [
            "serve",
            "--ingest",
            ANY,
            "--publish",
            ANY,
            "--control",
            ANY,
            "--model",
            args.model,
            "--auto-prompt",
        ]
        + ["--policy", "block", "--config", str(tmp / "serve.yaml"), "--view", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    runs = {"without_browser": [], "with_browser": []}
    try:
        ep = _ready(proc)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"stats")
        sub.connect(ep["publish"])
        time.sleep(0.5)
        with sync_playwright() as pw, open_video(src) as reader:
            _run_once(ctx, ep, reader, sub)  # warm-up (not counted)
            for _ in range(args.rounds):
                runs["without_browser"].append(_run_once(ctx, ep, reader, sub))
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(ep["view"])
                page.wait_for_selector("#conn.ok")
                drawn0 = page.evaluate("window.samemView.framesDrawn")
                run = _run_once(ctx, ep, reader, sub)
                run["frames_drawn"] = page.evaluate("window.samemView.framesDrawn") - drawn0
                runs["with_browser"].append(run)
                browser.close()
        sub.close(0)
    finally:
        proc.terminate()
        proc.wait(60)
        ctx.destroy(linger=0)
    med = {k: statistics.median(r["wall_fps"] for r in v) for k, v in runs.items()}
    trk = {k: statistics.median(r["tracker_fps"] for r in v) for k, v in runs.items()}
    load = os.getloadavg()
    result = {
        "video": {"frames": args.frames, "size_px": args.size, "particles": 4, "preset": "medium"},
        "model": args.model,
        "cpus": os.cpu_count(),
        "loadavg_1_5_15_at_end": [round(x, 2) for x in load],
        "runs": runs,
        "median_wall_fps": med,
        "median_tracker_fps": trk,
        "ratio_with_over_without_wall": med["with_browser"] / med["without_browser"],
        "ratio_with_over_without_tracker": trk["with_browser"] / trk["without_browser"],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
