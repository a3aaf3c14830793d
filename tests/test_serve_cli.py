"""``samem serve`` + ``samem replay`` as real processes on the tiny model; SIGTERM and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import h5py
import numpy as np
import zmq
from helpers import CLI, cli_command, small_video

from samem.io.recorder import open_results
from samem.stream.autoprompt import detect
from samem.stream.protocol import decode_pub
from samem.synthetic import write_h5


def test_serve_replay_sigterm_and_sigkill(tmp_path, serve):
    proc, ep = serve
    video = small_video(frames=8, n_particles=3, seed=3)
    src = write_h5(video, tmp_path / "synth.h5")
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(ep["publish"])
    time.sleep(0.5)
    try:
        replay = subprocess.run(
            CLI + ["replay", str(src), "--to", ep["ingest"], "--fps", "0"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert replay.returncode == 0, replay.stderr
        assert "sent 8 frames" in replay.stdout
        msgs, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline:
            if sub.poll(500):
                msgs.append(decode_pub(sub.recv_multipart()))
                if msgs[-1][0] == "stats" and msgs[-1][1].get("final"):
                    break
        frames = [p for t, p in msgs if t == "frame"]
        assert [p["seq"] for p in frames] == list(range(8))
        # the service started itself: one object per particle the detector sees on frame 0
        ids = [o["id"] for o in frames[0]["objects"]]
        assert ids == list(range(1, len(detect(video.frames[0])) + 1))
        # (the detector's recall is tested in test_stream_autoprompt.py; here: no phantom objects)
        assert 0 < len(ids) <= int(video.tracks[video.tracks.frame == 0]["inside"].sum())
        keys = {"id", "x", "y", "area", "score", "present", "edge", "sigma"}
        assert all(set(o) == keys for p in frames for o in p["objects"])
        assert [p["seq"] for t, p in msgs if t == "stats" and not p["final"]] == [4]
        status = cli_command(ctx, ep["control"], {"cmd": "status"})
        assert status["frames_processed"] == 8 and status["frames_dropped"] == 0
        with h5py.File(tmp_path / "rec.h5", "r") as f:  # series closed by "end": complete, not SWMR-only
            np.testing.assert_array_equal(f["frames"][()], video.frames)
            assert f["labels"].shape == video.labels.shape and f.attrs["model"].startswith("random-init")

        # second series, paced; SIGKILL mid-recording keeps everything up to the last flush
        slow = subprocess.Popen(
            CLI + ["replay", str(src), "--to", ep["ingest"], "--fps", "4", "--series", "slow"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            flushed, deadline = 0, time.monotonic() + 60
            while flushed < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
                rec = cli_command(ctx, ep["control"], {"cmd": "status"})["recording"]
                flushed = rec["frames_flushed"] if rec else 0
            assert flushed >= 2 and rec["file"].endswith("rec-2.h5")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            slow.kill()
            slow.wait(timeout=30)
        with open_results(tmp_path / "rec-2.h5") as f:
            n = f["frame_index"].shape[0]
            assert n >= flushed
            np.testing.assert_array_equal(f["frames"][:flushed], video.frames[:flushed])
            assert set(f["tracks"]["frame"]) >= set(range(flushed))
    finally:
        sub.close(0)
        ctx.term()


def test_sigterm_flushes_and_closes_the_recording(tmp_path, serve):
    proc, ep = serve
    video = small_video(frames=6, n_particles=2, seed=5)
    ctx = zmq.Context()
    try:
        from samem.stream.client import FrameSender

        with FrameSender(ep["ingest"], context=ctx) as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            for f in video.frames:
                tx.send(f)
            # no "end": the series is still open when the service is stopped
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if cli_command(ctx, ep["control"], {"cmd": "status"})["frames_processed"] == 6:
                    break
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped; 6 frames processed" in proc.stderr.read()
    finally:
        ctx.term()
    with h5py.File(tmp_path / "rec.h5", "r") as f:  # opens without SWMR: closed cleanly
        assert f["labels"].shape[0] == 6
        np.testing.assert_array_equal(f["frame_index"][()], np.arange(6))


def test_serve_user_errors_exit_2(tmp_path, capsys):
    from samem.cli.main import main

    existing = tmp_path / "rec.h5"
    existing.write_bytes(b"")
    for args, message in [
        (["--record", str(existing)], "exists"),
        (["--ingest", "tcp://0.0.0.0:5999"], "allow-remote"),
        (["--boxes", str(tmp_path / "nope.json")], "cannot read boxes"),
        (["--config", str(tmp_path / "nope.yaml")], "not found"),
    ]:
        assert main(["serve", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("samem: error:") and message in err and "Traceback" not in err
