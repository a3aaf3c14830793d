"""Bounded queue between ingest and processing: drop_oldest stays bounded, block loses nothing."""

from __future__ import annotations

import threading
import time

import pytest

from samem.stream.backpressure import FrameQueue


def test_drop_oldest_keeps_newest_and_counts():
    q = FrameQueue(3, "drop_oldest")
    for i in range(10):
        assert q.put(i)
    assert len(q) == 3 and q.dropped == 7 and q.high_water == 3
    assert [q.get(0) for _ in range(3)] == [7, 8, 9]
    assert q.get(timeout=0.01) is None


def test_markers_are_never_dropped():
    q = FrameQueue(3, "drop_oldest")
    q.put("start", droppable=False)
    for i in range(5):
        q.put(i)
    assert [q.get(0) for _ in range(3)] == ["start", 3, 4]
    q = FrameQueue(2, "drop_oldest")
    q.put("a", droppable=False)
    q.put("b", droppable=False)
    assert q.put(1, timeout=0.05) is False  # nothing droppable: waits like block, then gives up
    assert q.dropped == 0


def test_fast_producer_slow_consumer_bounded_memory():
    q = FrameQueue(4, "drop_oldest")
    got = []

    def consume():
        while True:
            item = q.get(timeout=1.0)
            if item is None:
                return
            got.append(item)
            time.sleep(0.002)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(2000):
        q.put(i)
    q.close()
    t.join(timeout=10)
    assert not t.is_alive()
    assert q.high_water <= 4
    assert len(got) + q.dropped == 2000 and q.dropped > 0
    assert got == sorted(got) and got[-1] == 1999  # order kept, newest processed


def test_block_loses_nothing_and_waits():
    q = FrameQueue(2, "block")
    got = []

    def consume():
        while (item := q.get(timeout=2.0)) is not None:
            got.append(item)
            time.sleep(0.001)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(300):
        assert q.put(i, timeout=5.0)
    q.close()
    t.join(timeout=10)
    assert got == list(range(300)) and q.dropped == 0 and q.high_water <= 2


def test_block_put_times_out_and_close_wakes():
    q = FrameQueue(1, "block")
    q.put(0)
    t0 = time.monotonic()
    assert q.put(1, timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.05
    threading.Timer(0.05, q.close).start()
    assert q.put(2) is False  # woken by close
    assert q.get() == 0 and q.get() is None
    with pytest.raises(ValueError):
        FrameQueue(0)


def test_latest_takes_the_newest_frame_and_counts_the_skipped():
    q = FrameQueue(8, "latest")
    for i in range(5):
        assert q.put(i)
    assert q.get(0) == 4 and q.dropped == 4  # the four older frames are skipped, counted
    assert q.get(timeout=0.01) is None
    for i in range(12):  # a full queue evicts the oldest, as drop_oldest does
        q.put(i)
    assert q.dropped == 4 + 4 and q.high_water == 8
    assert q.get(0) == 11 and q.dropped == 4 + 11


def test_latest_never_skips_markers_nor_crosses_them():
    q = FrameQueue(8, "latest")
    for item, droppable in [
        ("start", False),
        (0, True),
        (1, True),
        ("end", False),
        ("start2", False),
        (2, True),
    ]:
        q.put(item, droppable=droppable)
    # the last frame of a series is processed before its end marker; markers all arrive in order
    assert [q.get(0) for _ in range(4)] == ["start", 1, "end", "start2"]
    assert q.get(0) == 2 and q.dropped == 1


def test_latest_fast_producer_slow_consumer_stays_bounded():
    q = FrameQueue(8, "latest")
    got = []

    def consume():
        while True:
            item = q.get(timeout=1.0)
            if item is None:
                return
            got.append(item)
            time.sleep(0.003)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(1000):
        q.put(i)
        if i % 10 == 0:
            time.sleep(0.001)
    q.close()
    t.join(timeout=10)
    assert not t.is_alive()
    assert len(got) + q.dropped == 1000 and q.dropped > 0
    assert got == sorted(got) and got[-1] == 999
    assert q.high_water <= 8


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="policy"):
        FrameQueue(2, "newest")
