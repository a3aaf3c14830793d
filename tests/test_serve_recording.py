"""Recording failures in the live service are counted and reported, never silent (issue 23)."""

from __future__ import annotations

import logging
import shutil
import time

import h5py
import numpy as np
import pytest
from helpers import SLOW_SHAPE as SHAPE
from helpers import Running, SlowTracker, serve_settings

from samem.io.recorder import Recorder


def _wait_status(run, cond, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = run.command({"cmd": "status"})
        if cond(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"status condition not met: {status}")


def _events(msgs, kind):
    return [e for t, p in msgs if t == "feedback" for e in p["events"] if e["kind"] == kind]


def test_nul_in_series_name_is_refused_not_a_silent_empty_recording(tmp_path):
    """Issue 23 (4): "series": "a\\u0000b" under --record left an empty stub and frames_failed 0."""
    import zmq

    run = Running(serve_settings(tmp_path, **{"ingest.policy": "block"}), lambda: SlowTracker(0.0))
    try:
        push = run.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(run.endpoints["ingest"])
        push.send(b'{"type": "start", "shape": [64, 64], "dtype": "uint8", "series": "a\\u0000b"}')
        msgs = run.collect(lambda t, p: t == "feedback" and p["events"])
        push.close(0)
        status = _wait_status(run, lambda s: s["messages_rejected"] == 1)
    finally:
        run.close()
    (event,) = _events(msgs, "message_rejected")
    assert event["reason"] == "bad_header" and "U+0000" in event["detail"]
    assert status["rejected_by_reason"] == {"bad_header": 1} and not (tmp_path / "rec.h5").exists()


def test_recording_that_cannot_be_created_is_counted_and_reported(tmp_path, caplog):
    folder = tmp_path / "gone"
    folder.mkdir()
    run = Running(
        serve_settings(None, **{"ingest.policy": "block", "recording.file": str(folder / "rec.h5")}),
        lambda: SlowTracker(0.0),
    )
    frame = np.zeros(SHAPE, np.uint8)
    caplog.set_level(logging.WARNING)
    try:
        shutil.rmtree(folder)  # e.g. a data disk unmounted while the service runs
        with run.sender() as tx:
            tx.start(SHAPE, "uint8", 1.0, 0.05, series="run-1")
            for seq in range(3):
                tx.send(frame, seq=seq)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 2)
            status = _wait_status(run, lambda s: s["frames_processed"] == 3)
    finally:
        run.close()
    assert [p["seq"] for t, p in msgs if t == "frame"] == [0, 1, 2]  # still tracked and published
    assert status["recording_failures"] == 1 and status["frames_not_recorded"] == 3
    assert status["frames_failed"] == 0
    rec = status["recording"]
    assert rec["ok"] is False and "no such folder" in rec["error"] and rec["file"].endswith("rec.h5")
    (event,) = _events(msgs, "recording_failed")
    assert "no such folder" in event["detail"] and event["recording_failures"] == 1
    assert any(r.levelname == "WARNING" and "recording failure 1" in r.getMessage() for r in caplog.records)


def test_write_failure_mid_series_keeps_publishing_and_keeps_what_was_flushed(tmp_path, monkeypatch):
    original = Recorder.append

    def failing(self, frame_index, *a, **k):
        if frame_index == 5:
            raise OSError(28, "No space left on device")
        return original(self, frame_index, *a, **k)

    monkeypatch.setattr(Recorder, "append", failing)
    settings = serve_settings(tmp_path, **{"ingest.policy": "block", "recording.flush_every": 2})
    run = Running(settings, lambda: SlowTracker(0.0))
    frame = np.zeros(SHAPE, np.uint8)
    try:
        with run.sender() as tx:
            tx.start(SHAPE, "uint8", 1.0, 0.05, series="run-2")
            for seq in range(10):
                tx.send(frame, seq=seq)
            msgs = run.collect(lambda t, p: t == "frame" and p["seq"] == 9)
            status = _wait_status(run, lambda s: s["frames_processed"] == 10)
            tx.end()
    finally:
        run.close()
    assert len([p for t, p in msgs if t == "frame"]) == 10
    assert status["recording_failures"] == 1 and status["frames_not_recorded"] == 5
    assert "No space left" in status["recording"]["error"]
    (event,) = _events(msgs, "recording_failed")
    assert "cannot write frame 5" in event["detail"]
    with h5py.File(tmp_path / "rec.h5", "r") as f:  # closed after the failure: readable
        np.testing.assert_array_equal(f["frame_index"][()], np.arange(5))


def test_recorder_leaves_no_stub_when_creation_fails(tmp_path):
    with pytest.raises(Exception, match="cannot create the recording"):
        Recorder(tmp_path / "r.h5", (4, 4), np.uint8, 1.0, 1.0, attrs={"source": "a\0b"})
    assert list(tmp_path.iterdir()) == []
