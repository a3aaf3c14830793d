"""The bounded queue between the ingest thread and the processing thread.

Policies, for when frames arrive faster than they are processed:

- ``latest`` (live, closed loop): processing always takes the newest frame; frames that
  waited behind a newer one are dropped when it is taken (and, when the queue is full, the
  oldest is evicted as under ``drop_oldest``), so a result is never older than the frame being
  processed plus one; drops are counted.
- ``drop_oldest`` (live): a new frame evicts the oldest queued frame, so processing always
  works on recent data and memory stays bounded whatever the input rate; evictions are counted.
  Under a sustained overload every processed frame has waited for a full queue.
- ``block`` (exact replay): the ingest thread waits for room, stops reading its socket, and
  ZeroMQ's high-water marks push the wait back to the sender; nothing is dropped.

Series markers (start/end) are never dropped, nor skipped: ``latest`` drops only frames
followed by a newer frame of the same series (no marker between them); when the queue holds
only markers, a put waits as under ``block``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

#: the queue policies, live first
POLICIES = ("latest", "drop_oldest", "block")


class FrameQueue:
    """Thread-safe bounded FIFO with a drop policy for frames.

    Parameters
    ----------
    maxsize : int
        Most items held.
    policy : {"latest", "drop_oldest", "block"}
        What :meth:`put` does when full and, for ``latest``, what :meth:`get` skips.
    """

    def __init__(self, maxsize: int, policy: str = "drop_oldest"):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        self.maxsize = int(maxsize)
        self.policy = policy
        self._items: deque[tuple[Any, bool]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.high_water = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: Any, droppable: bool = True, timeout: float | None = None) -> bool:
        """Add an item; returns False if it could not be added within ``timeout`` s (or closed).

        Under ``drop_oldest`` and ``latest`` a droppable item never waits: the oldest droppable
        item is evicted instead (``dropped`` counts them).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed and len(self._items) >= self.maxsize:
                if self.policy != "block" and self._evict_one():
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            if self._closed:
                return False
            self._items.append((item, droppable))
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def _evict_one(self) -> bool:
        for i, (_, droppable) in enumerate(self._items):
            if droppable:
                del self._items[i]
                self.dropped += 1
                return True
        return False

    def get(self, timeout: float | None = None) -> Any | None:
        """Remove and return the oldest item (``latest``: the newest frame of the oldest run of
        frames, the older ones counted in ``dropped``); None after ``timeout`` s or once closed
        and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item, droppable = self._items.popleft()
            if self.policy == "latest":
                while droppable and self._items and self._items[0][1]:  # a newer frame waits
                    item, droppable = self._items.popleft()
                    self.dropped += 1
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiter; later puts fail, gets drain what is left then return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
