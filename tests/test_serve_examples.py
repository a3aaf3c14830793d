"""The example consumer scripts in examples/ against a running service."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers import OracleTracker, Running, serve_settings, small_video, truth_boxes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _script(name, address, *args):
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), "--address", address, "--timeout-s", "60", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_consumers_print_frames_stats_feedback_and_control_works():
    video = small_video(frames=20, n_particles=3, seed=1)
    settings = serve_settings(
        **{
            "stats.every_frames": 5,
            "feedback.edge_margin_px": 40,
            "feedback.lag_warn_frames": 10_000,  # only recentring advice, however loaded the machine
            "ingest.policy": "block",
        }
    )
    run = Running(settings, lambda: OracleTracker(video), boxes=(0, truth_boxes(video)))
    procs = {}
    try:
        pub = run.endpoints["publish"]
        procs = {
            "frames": _script("consume_frames.py", pub, "--count", "3"),
            "stats": _script("consume_stats.py", pub, "--count", "1"),
            "feedback": _script("consume_feedback.py", pub, "--count", "1"),
        }
        deadline = time.monotonic() + 120
        seq = 0
        with run.sender() as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            # the scripts subscribe once their interpreter is up: keep frames coming until all are done
            while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
                tx.send(video.frames[seq % len(video.frames)], seq=seq)
                seq += 1
                time.sleep(0.05)
        out = {k: p.communicate(timeout=30) for k, p in procs.items()}
        control = subprocess.run(
            [sys.executable, str(EXAMPLES / "control.py"), "status", "--address", run.endpoints["control"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        run.close()
    for name, p in procs.items():
        assert p.returncode == 0, (name, out[name][1])
    frames = out["frames"][0].splitlines()
    assert len(frames) == 3 and all(line.startswith("frame ") and "3 objects" in line for line in frames)
    assert "3 particles" in out["stats"][0] and "nm^2/s" in out["stats"][0]
    assert "recentre on particle" in out["feedback"][0] and "nm" in out["feedback"][0]
    assert control.returncode == 0 and '"frames_received"' in control.stdout
