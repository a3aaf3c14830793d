"""The ingest thread: receive messages, validate them, count, and queue accepted ones.

Runs apart from processing so that under ``drop_oldest`` the socket is always drained and
old frames are dropped in the bounded queue (memory does not grow with the input rate),
while under ``block`` a full queue stops the reading and the wait propagates to the sender.
Rejected messages are counted by reason, logged (first of each reason, then every 100th)
and announced on the ``feedback`` topic (at most every 0.5 s per reason, with running counts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import zmq

from samem.stream.backpressure import FrameQueue
from samem.stream.protocol import FrameMessage, IngestParser, Rejected, SeriesEnd, SeriesStart
from samem.stream.sockets import Publisher

log = logging.getLogger(__name__)

#: message parts kept per message (a legal message has 1 or 2); the rest of a longer message is
#: read, counted and released at once
MAX_PARTS = 2


@dataclass
class IngestCounters:
    """Counts kept by the ingest thread (read by status; ints, updated under the GIL)."""

    messages: int = 0
    frames_received: int = 0
    frames_missing_upstream: int = 0
    series_started: int = 0
    series_ended: int = 0
    messages_rejected: int = 0
    rejected: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Queued:
    """A queued message with its arrival time (``time.monotonic()``, s)."""

    message: SeriesStart | FrameMessage | SeriesEnd
    received_s: float


def receive(sock: zmq.Socket) -> tuple[list, int, int]:
    """One multipart message: its first :data:`MAX_PARTS` parts (zero-copy), its part count
    and its total size in bytes (a running total over every part).

    ZeroMQ hands a multipart message over only once all its parts have arrived (it caps each
    part at ``MAXMSGSIZE`` but not their number); parts beyond :data:`MAX_PARTS` are released
    as soon as they are counted, so the service itself never holds more than two parts.
    """
    frame = sock.recv(copy=False)
    parts, n, total = [frame], 1, len(frame)
    while frame.more:
        frame = sock.recv(copy=False)
        n += 1
        total += len(frame)
        if n <= MAX_PARTS:
            parts.append(frame)
    return parts, n, total


class IngestThread(threading.Thread):
    """Receive on a PULL socket until ``stop`` is set.

    Parameters
    ----------
    sock : zmq.Socket
        Bound PULL socket (used only by this thread).
    parser : IngestParser
        Validator (owned by this thread).
    queue : FrameQueue
        Where accepted messages go.
    stop : threading.Event
        Set to end the thread.
    publisher : Publisher, optional
        For rejection notices.
    """

    def __init__(
        self,
        sock: zmq.Socket,
        parser: IngestParser,
        queue: FrameQueue,
        stop: threading.Event,
        publisher: Publisher | None = None,
    ):
        super().__init__(name="samem-ingest", daemon=True)
        self.sock, self.parser, self.queue, self.stop = sock, parser, queue, stop
        self.publisher = publisher
        self.counters = IngestCounters()
        self._announced: dict[str, float] = {}

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                if not poller.poll(100):
                    continue
                parts, n, total = receive(self.sock)
                self.handle(self.parser.parse(parts, n_parts=n, total_bytes=total))
        finally:
            self.sock.close(0)

    def handle(self, msg) -> None:
        c = self.counters
        c.messages += 1
        if isinstance(msg, Rejected):
            self._reject(msg)
            return
        if isinstance(msg, FrameMessage):
            c.frames_received += 1
            c.frames_missing_upstream += msg.gap
        elif isinstance(msg, SeriesStart):
            c.series_started += 1
            log.info("series %s: %s %s frames", msg.series or "(unnamed)", msg.shape, msg.dtype)
        else:
            c.series_ended += 1
        item = Queued(msg, time.monotonic())
        droppable = isinstance(msg, FrameMessage)
        while not self.queue.put(item, droppable=droppable, timeout=0.1):
            if self.stop.is_set():
                return

    def _reject(self, msg: Rejected) -> None:
        c = self.counters
        c.messages_rejected += 1
        c.rejected[msg.reason] += 1
        n = c.rejected[msg.reason]
        if n == 1 or n % 100 == 0:
            log.warning("rejected message (%s, %d so far): %s", msg.reason, n, msg.detail)
        now = time.monotonic()
        if self.publisher is not None and now - self._announced.get(msg.reason, -1.0) >= 0.5:
            self._announced[msg.reason] = now
            event = {
                "kind": "message_rejected",
                "reason": msg.reason,
                "detail": msg.detail,
                "seq": msg.seq,
                "count": n,
                "messages_rejected": c.messages_rejected,
            }
            self.publisher.send("feedback", {"seq": None, "snr": None, "events": [event]})
