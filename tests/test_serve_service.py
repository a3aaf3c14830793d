"""The live service in-process over loopback: tracks vs truth, bad input, bursts, control, CurveZMQ."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import zmq
from helpers import OracleTracker, Running, serve_settings, small_video, truth_boxes

from samem.errors import SamemError
from samem.io.recorder import open_results
from samem.io.table import read_table
from samem.stream.protocol import encode_frame, encode_start
from samem.stream.service import model_tracker_factory
from samem.stream.settings import load_settings


@pytest.fixture(scope="module")
def video():
    return small_video(frames=40)


def _final(topic, payload):
    return topic == "stats" and payload.get("final")


def test_end_to_end_tracks_match_truth_and_recording(tmp_path, video):
    settings = serve_settings(
        tmp_path, **{"ingest.policy": "block", "recording.flush_every": 7, "stats.every_frames": 10}
    )
    boxes = (0, truth_boxes(video))
    run = Running(settings, lambda: OracleTracker(video), boxes=boxes)
    try:
        with run.sender() as tx:
            tx.start(
                video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s, "syn"
            )
            for t, f in enumerate(video.frames):
                tx.send(f, seq=t, timestamp=100.0 + t * video.frame_interval_s)
            tx.end()
            msgs = run.collect(_final)
        status = run.command({"cmd": "status"})
    finally:
        run.close()
    frames = [p for t, p in msgs if t == "frame"]
    assert [p["seq"] for p in frames] == list(range(len(video.frames)))
    truth = video.tracks.set_index(["frame", "particle"])
    errors, inside = [], int(video.tracks["inside"].sum())
    for p in frames:
        for o in p["objects"]:
            row = truth.loc[(p["seq"], o["id"])]
            if row["inside"]:
                assert o["present"]
                errors.append(np.hypot(o["x"] - row["x"], o["y"] - row["y"]))
    # label-mask centroid vs the projected shape's exact centroid: pixelisation error < 1 px
    assert len(errors) == inside > len(frames) and max(errors) < 1.0
    assert all(p["latency_ms"] >= p["processing_ms"] >= 0 for p in frames)
    feedback = [p for t, p in msgs if t == "feedback"]
    assert len(feedback) >= len(frames) and all(
        p["snr"] is not None for p in feedback if p["seq"] is not None
    )
    periodic = [p for t, p in msgs if t == "stats" and not p["final"]]
    assert [p["seq"] for p in periodic] == [9, 19, 29, 39]
    final = msgs[-1][1]
    assert final["n_particles"] == len(boxes[1]) and final["calibrated"] is True
    assert status["ok"] and status["frames_received"] == 40 and status["frames_processed"] == 40
    assert status["frames_dropped"] == 0 and status["messages_rejected"] == 0
    with h5py.File(tmp_path / "rec.h5", "r") as f:  # closed cleanly: readable without SWMR
        np.testing.assert_array_equal(f["labels"][()], video.labels)
        np.testing.assert_array_equal(f["frames"][()], video.frames)
        np.testing.assert_array_equal(f["frame_index"][()], np.arange(40))
        tracks = read_table(f["tracks"])
        assert len(tracks) == 40 * len(boxes[1])
        assert f.attrs["pixel_size_nm"] == video.pixel_size_nm and f.attrs["model"] == "oracle"
        summary = json.loads(f["stats"].attrs["summary_json"])
        assert summary["n_particles"] == len(boxes[1])
    # the published frame topic and the recording agree
    pub = pd.DataFrame([dict(o, frame=p["seq"]) for p in frames for o in p["objects"]])
    merged = tracks.merge(pub, left_on=["frame", "particle"], right_on=["frame", "id"])
    assert len(merged) == len(tracks) and np.allclose(merged["x_x"], merged["x_y"], equal_nan=True)


def test_auto_prompt_finds_the_particles(video):
    settings = serve_settings(**{"ingest.policy": "block", "prompts.auto": True})
    run = Running(settings, lambda: OracleTracker(video))
    try:
        with run.sender() as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            for t, f in enumerate(video.frames[:5]):
                tx.send(f, seq=t)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 4)
    finally:
        run.close()
    objects = [o for o in msgs[-1][1]["objects"] if o["present"]]
    truth = video.tracks[(video.tracks.frame == 4) & video.tracks.inside]
    # every particle fully inside is tracked, each by one object
    matched = {
        min(objects, key=lambda o: np.hypot(o["x"] - r.x, o["y"] - r.y))["id"] for r in truth.itertuples()
    }
    assert len(matched) == len(truth)
    for r in truth.itertuples():
        assert min(np.hypot(o["x"] - r.x, o["y"] - r.y) for o in objects) < 1.0


def test_bad_messages_counted_reported_and_harmless(tmp_path, video):
    settings = serve_settings(tmp_path, **{"ingest.policy": "block", "ingest.max_frame_bytes": 200_000})
    run = Running(settings, lambda: OracleTracker(video), boxes=(0, truth_boxes(video)))
    shape, dtype = video.frames.shape[1:], video.frames.dtype
    good = [encode_frame(f, t, 0.0) for t, f in enumerate(video.frames[:6])]
    bad = [
        [b"{not json"],
        [b'{"type": "frame", "seq": 50, "timestamp": 0, "shape": [128, 128], "dtype": "uint8"}', b"\0" * 10],
        [b'{"type": "frame", "seq": 51, "timestamp": 0, "shape": [128, 128], "dtype": "complex64"}', b"\0"],
        encode_frame(np.zeros((64, 128), np.uint8), 52, 0.0),  # shape change mid-series
        good[1],  # duplicate seq
        encode_frame(video.frames[0], 0, 0.0),  # out of order
        [good[2][0], b"\0" * 300_000],  # over the cap
        [b"\x80\x04pickle"],
    ]
    expected = {"not_json": 2, "byte_count": 1, "bad_dtype": 1, "shape_changed": 1, "duplicate_seq": 1}
    expected.update({"out_of_order_seq": 1, "oversized": 1})
    try:
        push = run.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(run.endpoints["ingest"])
        push.send_multipart(encode_start(shape, dtype, video.pixel_size_nm, video.frame_interval_s))
        for parts in good[:2] + bad + good[2:]:
            push.send_multipart(parts)
        msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 5)
        time.sleep(0.2)
        status = run.command({"cmd": "status"})
        push.close(0)
    finally:
        run.close()
    assert [p["seq"] for t, p in msgs if t == "frame"] == list(range(6))
    assert status["messages_rejected"] == sum(expected.values())
    assert status["rejected_by_reason"] == expected
    assert status["frames_received"] == 6 and status["frames_processed"] == 6
    events = [e for t, p in msgs if t == "feedback" for e in p["events"] if e["kind"] == "message_rejected"]
    assert {e["reason"] for e in events} == set(expected)
    with open_results(tmp_path / "rec.h5") as f:
        np.testing.assert_array_equal(f["frame_index"][()], np.arange(6))
        np.testing.assert_array_equal(f["labels"][()], video.labels[:6])


def test_burst_drop_oldest_stays_bounded_and_advises(video):
    settings = serve_settings(
        **{"ingest.queue_frames": 3, "feedback.lag_warn_frames": 2, "stats.every_frames": 1000}
    )
    slow = lambda: OracleTracker(video, step_s=0.03)  # noqa: E731 - ~30 frames/s at most
    run = Running(settings, slow, boxes=(0, truth_boxes(video)))
    try:
        with run.sender(queue_frames=1000) as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            for _ in range(3):  # 120 frames as fast as possible
                for f in video.frames:
                    tx.send(f)
            tx.end()
            msgs = run.collect(lambda t, p: t == "stats" and p.get("final"))
        status = run.command({"cmd": "status"})
    finally:
        run.close()
    assert status["frames_received"] == 120
    assert status["frames_dropped"] > 0
    assert status["frames_processed"] + status["frames_dropped"] == 120
    assert run.service.queue.high_water <= 3
    seqs = [p["seq"] for t, p in msgs if t == "frame"]
    assert seqs == sorted(seqs) and seqs[-1] == 119  # drop_oldest keeps the newest
    behind = [e for t, p in msgs if t == "feedback" for e in p["events"] if e["kind"] == "falling_behind"]
    assert behind and behind[0]["suggested_fps"] is not None and behind[0]["suggested_fps"] < 60


def test_control_commands_validate_and_never_break_service(video):
    settings = serve_settings(**{"ingest.policy": "block"})
    run = Running(settings, lambda: OracleTracker(video))
    boxes = truth_boxes(video)
    try:
        assert run.command({"cmd": "prompt", "boxes": {"1": [0, 0, 5, 5]}})["error"].startswith("no series")
        with run.sender() as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            tx.send(video.frames[0], seq=0)
            run.collect(lambda t, p: t == "frame" and p["seq"] == 0)
            errors = [
                run.command(b"not json"),
                run.command({"cmd": "explode"}),
                run.command(
                    {"cmd": "prompt", "boxes": {"1": [120, 120, 140, 130]}}
                ),  # outside the 128 px frame
                run.command({"cmd": "prompt", "boxes": {"x": [1, 2, 3, 4]}}),
                run.command({"cmd": "prompt", "boxes": {"1": [5, 5, 1, 9]}}),
                run.command({"cmd": "remove", "ids": [7]}),
                run.command({"cmd": "status", "extra": 1}),
            ]
            assert all(not r["ok"] and r["error"] for r in errors)
            first = {str(k): list(map(float, b)) for k, b in boxes.items()}
            assert run.command({"cmd": "prompt", "boxes": first})["ok"]
            tx.send(video.frames[1], seq=1)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 1)
            assert sorted(o["id"] for o in msgs[-1][1]["objects"]) == sorted(boxes)
            assert run.command({"cmd": "status"})["objects"] == sorted(boxes)
            gone = sorted(boxes)[0]
            assert run.command({"cmd": "remove", "ids": [gone]})["objects"] == sorted(boxes)[1:]
            tx.send(video.frames[2], seq=2)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 2)
            assert gone not in [o["id"] for o in msgs[-1][1]["objects"]]
            assert run.command({"cmd": "reset"})["objects"] == []
            reused = run.command({"cmd": "prompt", "boxes": {str(gone): first[str(gone)]}})
            assert not reused["ok"] and "new ids" in reused["error"]
            tx.send(video.frames[3], seq=3)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 3)
            assert msgs[-1][1]["objects"] == []
            status = run.command({"cmd": "status"})
            assert status["frames_processed"] == 4 and status["frames_failed"] == 0
            assert run.command({"cmd": "shutdown"})["ok"]
            run.thread.join(timeout=30)
            assert not run.thread.is_alive()
    finally:
        run.close()


def test_remote_bind_needs_explicit_option():
    with pytest.raises(SamemError, match="allow-remote"):
        load_settings(None, {"sockets.ingest": "tcp://0.0.0.0:5555"})
    remote = {"sockets.ingest": "tcp://0.0.0.0:5555", "sockets.allow_remote": True}
    # issue 23: --allow-remote alone used to start an open remote bind with only a warning
    with pytest.raises(SamemError, match="without CurveZMQ.*--insecure-remote-anyone-can-connect"):
        load_settings(None, remote)
    settings = load_settings(None, {**remote, "sockets.insecure_remote": True})
    assert settings["sockets"]["insecure_remote"] is True
    with pytest.raises(SamemError, match="unknown serve setting"):
        load_settings(None, {"ingest.polcy": "block"})
    with pytest.raises(SamemError, match="policy"):
        load_settings(None, {"ingest.policy": "sometimes"})


def test_tracker_options_in_settings_reach_the_tracker():
    settings = load_settings(None, {"model.name": "samem_tiny", "model.tracker": {"smooth_frames": 3}})
    with pytest.warns(UserWarning):  # samem_tiny is a config: seeded random weights
        factory, _ = model_tracker_factory(settings["model"])
    assert factory().options.smooth_frames == 3
    with pytest.raises(SamemError, match="unknown tracker options \\['smooth'\\]"):
        load_settings(None, {"model.tracker": {"smooth": 3}})
    with pytest.raises(SamemError, match="'model.tracker' must be a mapping"):
        load_settings(None, {"model.tracker": 3})
    with pytest.raises(SamemError, match="reappear_score must be a number"):
        load_settings(None, {"model.tracker": {"reappear_score": "high"}})


def test_curve_authentication(tmp_path, video, caplog):
    import zmq.auth

    (tmp_path / "authorized").mkdir()
    server_pub, server_secret = zmq.auth.create_certificates(tmp_path, "server")
    client_pub, client_secret = zmq.auth.create_certificates(tmp_path / "authorized", "client")
    stranger_pub, stranger_secret = zmq.auth.create_certificates(tmp_path, "stranger")
    settings = serve_settings(
        **{
            "sockets.curve.server_secret_key": str(server_secret),
            "sockets.curve.authorized_clients": str(tmp_path / "authorized"),
        }
    )
    run = Running(settings, lambda: OracleTracker(video), boxes=(0, truth_boxes(video)))
    try:
        stranger = run.sender(
            server_public_key=server_pub, client_secret_key=stranger_secret, send_timeout_s=1
        )
        stranger.start(video.frames.shape[1:], video.frames.dtype)
        stranger.send(video.frames[0], seq=0)
        time.sleep(0.5)
        stranger.close(0)
        assert run.service.ingest.counters.messages == 0  # refused by the authenticator
        with run.sender(server_public_key=server_pub, client_secret_key=client_secret) as tx:
            tx.start(video.frames.shape[1:], video.frames.dtype, video.pixel_size_nm, video.frame_interval_s)
            tx.send(video.frames[0], seq=0)
            deadline = time.monotonic() + 20
            while run.service.frames_processed < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert run.service.frames_processed == 1
        status = run.service.status()  # the REQ client has no key: ask in-process
        assert status["clients_refused"] >= 1  # issue 23: refusals are counted in status
    finally:
        run.close()
    refusals = [r for r in caplog.records if "refused a client" in r.getMessage()]
    assert (
        refusals and refusals[0].levelname == "WARNING" and "key not authorized" in refusals[0].getMessage()
    )


def test_remote_bind_with_keys_or_the_loud_insecure_flag(tmp_path, caplog):
    import zmq.auth

    (tmp_path / "clients").mkdir()
    _, secret = zmq.auth.create_certificates(tmp_path, "server")
    remote = {"sockets.ingest": "tcp://0.0.0.0:5555", "sockets.allow_remote": True}
    keyed = {
        **remote,
        "sockets.curve.server_secret_key": str(secret),
        "sockets.curve.authorized_clients": str(tmp_path / "clients"),
    }
    assert load_settings(None, keyed)["sockets"]["curve"]["server_secret_key"] == str(secret)
    caplog.clear()
    load_settings(None, {**remote, "sockets.insecure_remote": True})
    assert any(r.levelname == "WARNING" and r.getMessage().startswith("INSECURE") for r in caplog.records)


def test_serve_cli_remote_needs_keys(tmp_path, capsys):
    from samem.cli.main import main

    assert main(["serve", "--ingest", "tcp://0.0.0.0:5999", "--allow-remote"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samem: error:") and "--curve-secret-key FILE --curve-clients DIR" in err
