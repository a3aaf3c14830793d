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
