"""FrameSender and replay: what a microscope sends arrives intact, paced, in order."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest
import zmq

from samem.errors import SamemError
from samem.io.readers import open_video
from samem.stream.client import FrameSender, replay
from samem.stream.protocol import FrameMessage, IngestParser, SeriesEnd, SeriesStart


@pytest.fixture
def pull():
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(0)


def _receive(sock, n):
    p = IngestParser()
    return [p.parse(sock.recv_multipart()) for _ in range(n)]


def test_sender_round_trip(pull):
    sock, address = pull
    frames = np.random.default_rng(1).integers(0, 60000, size=(3, 8, 9)).astype(np.uint16)
    with FrameSender(address) as tx:
        tx.start((8, 9), "uint16", pixel_size_nm=0.3, frame_interval_s=0.04, series="run1", operator="me")
        for f in frames:
            tx.send(f)
        tx.send(frames[0], seq=10, timestamp=5.0)
        tx.end()
    msgs = _receive(sock, 6)
    assert isinstance(msgs[0], SeriesStart) and msgs[0].meta == {"operator": "me"}
    assert [m.seq for m in msgs[1:5]] == [0, 1, 2, 10]
    for m, f in zip(msgs[1:4], frames):
        assert isinstance(m, FrameMessage)
        np.testing.assert_array_equal(m.data, f)
    assert msgs[4].timestamp == 5.0 and abs(msgs[1].timestamp - time.time()) < 60
    assert isinstance(msgs[5], SeriesEnd) and msgs[5].frames == 4


def test_send_times_out_without_service():
    # nothing listens: the pipe fills (high-water mark 1) and the next send gives up
    tx = FrameSender("tcp://127.0.0.1:1", send_timeout_s=0.2, queue_frames=1)
    try:
        with pytest.raises(SamemError, match="no samem service"):
            for _ in range(5):
                tx.send(np.zeros((4, 4), np.uint8))
    finally:
        tx.close(0)


def test_bad_address_and_missing_secret():
    with pytest.raises(SamemError, match="cannot connect"):
        FrameSender("nonsense://x")
    with pytest.raises(SamemError, match="secret"):
        FrameSender("tcp://127.0.0.1:1", server_public_key="server.key")


def test_replay_paced_file(tmp_path, pull):
    sock, address = pull
    path = tmp_path / "v.h5"
    video = np.arange(12 * 5 * 6, dtype=np.uint8).reshape(12, 5, 6)
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=video).attrs.update({"pixel_size_nm": 0.9, "frame_interval_s": 0.5})
    with open_video(path) as reader, FrameSender(address) as tx:
        report = replay(reader, tx, fps=40.0, start=2, stop=10)
    assert report.frames == 8
    # 8 frames at 40 frames/s: the last is due 7/40 s after the first
    assert report.elapsed_s >= 7 / 40
    msgs = _receive(sock, 10)
    assert msgs[0].pixel_size_nm == 0.9 and msgs[0].frame_interval_s == 0.5 and msgs[0].series == "v.h5"
    assert [m.seq for m in msgs[1:9]] == list(range(2, 10))
    np.testing.assert_array_equal(msgs[5].data, video[6])
    assert isinstance(msgs[9], SeriesEnd)
    with open_video(path) as reader, FrameSender(address) as tx:
        with pytest.raises(SamemError, match="empty"):
            replay(reader, tx, fps=0, start=12)
