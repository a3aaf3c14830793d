"""``samem serve``: the live service that ties ingest, session, sinks and control together.

Threads: *ingest* (PULL socket -> validation -> bounded queue, :mod:`samem.stream.ingest`),
*processing* (queue -> :class:`samem.stream.session.Session` -> PUB topics and the HDF5
recorder; also runs control commands between frames, so the session has one owner) and the
caller's thread, which answers the REP control socket and waits for shutdown.

Each ``start`` message opens a series: a new tracker and session, and a new recording
(``FILE`` for the first series, ``FILE-2.h5`` ... for later ones). ``end``, a new ``start``
or shutdown closes it: final statistics are published and written, the recording closed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import zmq

from samem import __version__
from samem.errors import SamemError
from samem.io.recorder import Recorder
from samem.stats.summary import write_stats
from samem.stream.backpressure import FrameQueue
from samem.stream.control import MAX_COMMAND_BYTES, Command, parse_command, reply
from samem.stream.ingest import IngestThread, Queued
from samem.stream.protocol import FrameMessage, IngestParser, Limits, SeriesEnd, SeriesStart, encode_json
from samem.stream.session import Session, check_boxes_file_limits
from samem.stream.settings import IngestSettings, ModelSettings, ServeSettings
from samem.stream.sockets import Publisher, SocketFactory

log = logging.getLogger(__name__)

TrackerFactory = Callable[[], Any]


def model_tracker_factory(model_cfg: ModelSettings) -> tuple[TrackerFactory, str]:
    """Load the model once (``model`` settings); return a factory of fresh trackers and the
    model's description."""
    from samem.model import load_model
    from samem.track import StreamingTracker

    model = load_model(model_cfg.name, config=model_cfg.config, device=model_cfg.device)
    mode, options = model_cfg.tracker_mode, dict(model_cfg.tracker or {})
    return (lambda: StreamingTracker(model, mode=mode, **options)), str(
        getattr(model, "samem_source", model_cfg.name)
    )


def series_path(path: Path, index: int) -> Path:
    """Recording file of the ``index``-th series (1-based): ``rec.h5``, ``rec-2.h5``, ..."""
    return path if index == 1 else path.with_name(f"{path.stem}-{index}{path.suffix}")


def part_size_cap(ingest: IngestSettings) -> int:
    """ZeroMQ's per-part limit (``MAXMSGSIZE``) on the ingest socket, bytes.

    ``hard_limit_factor`` x the largest legal part (header or frame payload): a part up to
    that size is received and rejected as ``oversized`` by the parser; a larger one makes
    ZeroMQ drop the connection before the part is buffered. ZeroMQ has no cap on the number
    of parts: a message is buffered whole before it is delivered (docs/protocol.md).
    """
    largest = max(ingest.max_frame_bytes, ingest.max_header_bytes)
    return max(1, ingest.hard_limit_factor * largest)


class Service:
    """The live tracking service.

    Parameters
    ----------
    settings : mapping
        Validated settings (:func:`samem.stream.settings.load_settings`).
    tracker_factory : callable
        Returns a fresh tracker for each series.
    model_name : str
        Description of the model, stored in recordings.
    boxes : tuple (frame, {id: box}), optional
        Box prompts from a file, applied to every series.
    context : zmq.Context, optional
        ZeroMQ context (default: a private one).
    """

    def __init__(
        self,
        settings: ServeSettings,
        tracker_factory: TrackerFactory,
        model_name: str = "unknown",
        boxes=None,
        context: zmq.Context | None = None,
    ):
        self.settings = settings
        self.tracker_factory = tracker_factory
        self.model_name = model_name
        self.boxes = boxes
        self.max_per_prompt = settings.prompts.max_per_prompt
        check_boxes_file_limits(boxes, settings)
        self.auto_prompt = settings.prompts.auto
        rec = settings.recording.file
        self.record_path = Path(rec) if rec else None
        ing = settings.ingest
        self.limits = Limits(ing.max_header_bytes, ing.max_frame_bytes, ing.max_frame_side)
        self.queue = FrameQueue(ing.queue_frames, ing.policy)
        self._stop = threading.Event()
        self._commands: queue.Queue[tuple[Command, Future]] = queue.Queue()
        self._context = context
        self.endpoints: dict[str, str] = {}
        self.session: Session | None = None
        self.series: SeriesStart | None = None
        self.recorder: Recorder | None = None
        self._series_count = 0
        self.frames_processed = 0
        self.frames_failed = 0
        self.recording_failures = 0  # recordings that could not be created, written or closed
        self.frames_not_recorded = 0  # processed frames missing from the recording because of them
        self.recording_error: str | None = None  # the last failure
        self._recording_file: Path | None = None  # this series' file, also when it failed
        self._recording_failed_series = False
        self.last_latency_s: float | None = None
        self.last_processing_fps: float | None = None
        self._started_s = time.monotonic()
        self._threads: list[threading.Thread] = []
        self.recording_paused = False  # the ``record`` command's stop (until its start)
        #: in-process consumers of processed frames (the browser view, :mod:`samem.view`): called
        #: as ``observer(message, result, session)`` in the processing thread after each frame is
        #: published; they must only keep references (no copies, no work) and never block
        self.frame_observers: list[Callable[[FrameMessage, Any, Session], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> dict[str, str]:
        """Bind the sockets and start the ingest and processing threads; returns the endpoints."""
        socks = self.settings.sockets
        ing = self.settings.ingest
        self.factory = SocketFactory(socks, self._context)
        hard_cap = part_size_cap(ing)
        bound: list[zmq.Socket] = []
        try:
            for name, kind, options in (
                ("ingest", zmq.PULL, {"RCVHWM": max(2, ing.queue_frames), "MAXMSGSIZE": hard_cap}),
                ("publish", zmq.PUB, {"SNDHWM": 1000}),
                ("control", zmq.REP, {"MAXMSGSIZE": 2 * MAX_COMMAND_BYTES}),
            ):
                sock, self.endpoints[name] = self.factory.bind(kind, socks[name], **options)
                bound.append(sock)
        except SamemError:
            self._close_sockets(*bound)
            self.factory.close()
            raise
        pull, pub, self.control = bound
        self._pub_sock = pub
        self.publisher = Publisher(pub)
        self.ingest = IngestThread(pull, IngestParser(self.limits), self.queue, self._stop, self.publisher)
        processing = threading.Thread(target=self._process_loop, name="samem-process", daemon=True)
        self._threads = [self.ingest, processing]
        for t in self._threads:
            t.start()
        log.info("serving: %s", self.endpoints)
        return dict(self.endpoints)

    def stop(self) -> None:
        """Ask everything to stop (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def serve_forever(self, poll_ms: int = 100) -> None:
        """Answer control requests until :meth:`stop` or a ``shutdown`` command, then close."""
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(poll_ms):
                    if not self._stop.is_set() and not all(t.is_alive() for t in self._threads):
                        log.error("a service thread died; shutting down")
                        self.stop()
                    continue
                parts = self.control.recv_multipart()
                try:
                    if len(parts) == 1:
                        answer = self.handle_control(parts[0])
                    else:
                        answer = reply(False, error="send a command as one message part")
                except Exception as exc:  # a bug must not leave the REP socket without a reply
                    log.exception("control request failed")
                    answer = reply(False, error=f"internal error: {exc}")
                self.control.send(encode_json(answer))
        finally:
            self.close()

    def close(self, join_timeout_s: float = 30.0) -> None:
        """Stop threads, finish the open series (flush and close the recording), close sockets."""
        self._stop.set()
        self.queue.close()
        for t in self._threads:
            t.join(join_timeout_s)
        self._close_sockets(getattr(self, "control", None), getattr(self, "_pub_sock", None))
        if hasattr(self, "factory"):
            self.factory.close()

    @staticmethod
    def _close_sockets(*socks) -> None:
        for s in socks:
            if s is not None and not s.closed:
                s.close(0)

    # ------------------------------------------------------------------ processing thread
    def _process_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._run_commands()
                item = self.queue.get(timeout=0.05)
                if item is not None:
                    self._handle(item)
            deadline = time.monotonic() + 10.0  # graceful: process what was already received
            while time.monotonic() < deadline and (item := self.queue.get(timeout=0)) is not None:
                self._handle(item)
        finally:
            self._end_series("shutdown")
            self._run_commands(fail="service is shutting down")

    def _handle(self, item: Queued) -> None:
        msg = item.message
        try:
            if isinstance(msg, SeriesStart):
                self._end_series("new series")
                self._begin_series(msg)
            elif isinstance(msg, SeriesEnd):
                self._end_series("end")
            elif isinstance(msg, FrameMessage):
                self._frame(msg, item.received_s)
        except Exception:  # keep serving: one bad frame or series must not stop the service
            self.frames_failed += isinstance(msg, FrameMessage)
            log.exception("failed to handle %s", type(msg).__name__)

    def _begin_series(self, start: SeriesStart) -> None:
        defaults = self.settings.defaults
        px = start.pixel_size_nm if start.pixel_size_nm is not None else defaults.pixel_size_nm
        dt = start.frame_interval_s if start.frame_interval_s is not None else defaults.frame_interval_s
        self._series_count += 1
        self.series = start
        self.session = Session(
            self.tracker_factory(),
            start.shape,
            px,
            dt,
            self.settings,
            boxes=self.boxes,
            auto_prompt=self.auto_prompt,
        )
        self._recording_failed_series = False
        if self.record_path is not None and not self.recording_paused:
            k = self._series_count
            while series_path(self.record_path, k).exists():
                k += 1
            self._recording_file = series_path(self.record_path, k)
            try:
                self.recorder = self._open_recorder(self._recording_file, start, px, dt)
            except Exception as exc:  # the series is still tracked and published
                self._recording_failed(f"cannot record series {start.series!r}", exc)
                return
            log.info("recording to %s", self.recorder.path)

    def _open_recorder(self, path: Path, start: SeriesStart, px, dt) -> Recorder:
        rec = self.settings.recording
        return Recorder(
            path,
            start.shape,
            start.dtype,
            px,
            dt,
            save_frames=rec.save_frames,
            flush_every=rec.flush_every,
            compression=rec.compression,
            attrs={
                "source": start.series or "samem serve",
                "model": self.model_name,
                "config_json": self.settings.to_dict(),
                "series_json": {"series": start.series, **start.meta},
                "samem_version": __version__,
            },
        )

    def _frame(self, msg: FrameMessage, received_s: float) -> None:
        if self.session is None:  # the series could not be opened (logged when it failed)
            self.frames_failed += 1
            return
        result = self.session.process(msg.seq, msg.data, msg.timestamp)
        self._record(msg, result)
        self.frames_processed += 1
        self.last_latency_s = time.monotonic() - received_s
        frame_msg = result.frame_message()
        frame_msg.update(latency_ms=1000.0 * self.last_latency_s, lag_frames=len(self.queue))
        self.publisher.send("frame", frame_msg)
        fb = result.feedback
        load = self.session.feedback.on_load(
            time.monotonic(), len(self.queue), self.queue.dropped, self.session.processing_fps
        )
        if load is not None:
            fb["events"].append(load)
        self.publisher.send("feedback", fb)
        if result.stats is not None:
            self.publisher.send("stats", {"seq": msg.seq, "final": False, **result.stats})
        for observer in self.frame_observers:
            try:
                observer(msg, result, self.session)
            except Exception:  # an observer's bug must never cost tracking
                log.exception("frame observer failed")

    # ------------------------------------------------------------------ recording failures
    def _record(self, msg: FrameMessage, result) -> None:
        """Append one processed frame to the recording; a failure is counted, never raised."""
        if self.record_path is None or self.recording_paused:
            return
        recorder = self.recorder
        if recorder is None:  # this series' recording could not be created or broke earlier
            self.frames_not_recorded += 1
            return
        try:
            recorder.append(msg.seq, msg.timestamp, result.labels, result.rows, msg.data)
        except Exception as exc:
            self.frames_not_recorded += 1
            self.recorder = None  # stop writing this series: keep what was flushed intact
            self._recording_failed(f"cannot write frame {msg.seq} to {recorder.path}", exc)
            try:
                recorder.close()
            except Exception:  # noqa: BLE001 - already reported; make sure the handle is released
                recorder.abort()

    def _recording_failed(self, what: str, exc: BaseException) -> None:
        """Count, log at WARNING and announce (feedback topic) one recording failure."""
        self.recording_failures += 1
        self._recording_failed_series = True
        self.recording_error = f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
        log.warning(
            "recording failure %d (%d frames not recorded so far): %s",
            self.recording_failures,
            self.frames_not_recorded,
            self.recording_error,
        )
        event = {
            "kind": "recording_failed",
            "file": None if self._recording_file is None else str(self._recording_file),
            "detail": self.recording_error,
            "recording_failures": self.recording_failures,
            "frames_not_recorded": self.frames_not_recorded,
        }
        publisher = getattr(self, "publisher", None)
        if publisher is not None:
            publisher.send("feedback", {"seq": None, "snr": None, "events": [event]})

    def _end_series(self, why: str) -> None:
        session, recorder = self.session, self.recorder
        self.session = self.recorder = None
        if session is None:
            return
        self.last_processing_fps = session.processing_fps
        stats, error = None, None
        try:
            if session.live.particles:
                stats = session.statistics()
        except Exception as exc:  # the recording and the final message must still happen
            error = f"statistics could not be computed ({type(exc).__name__}: {str(exc)[:200]})"
            log.warning("series %s: %s", why, error)
        finally:
            if recorder is not None:
                try:
                    recorder.close(
                        stats_writer=(lambda f: write_stats(f, stats)) if stats is not None else None
                    )
                    log.info("recording closed: %s (%d frames)", recorder.path, recorder.frames_written)
                except Exception as exc:
                    self._recording_failed(f"cannot close {recorder.path}", exc)
                    if not recorder.closed:
                        recorder.abort()
        if stats is not None or error is not None:  # after the recording is closed: it may be opened now
            final = {**(stats.summary if stats is not None else {"error": error})}
            final["calibrated"] = session.calibrated
            self.publisher.send("stats", {"seq": session.last_seq, "final": True, "reason": why, **final})

    # ------------------------------------------------------------------ control
    def handle_control(self, raw: bytes) -> dict[str, Any]:
        """Answer one control request (runs in the caller's thread)."""
        cmd = parse_command(bytes(raw))
        if isinstance(cmd, str):
            return reply(False, error=cmd)
        if cmd.cmd == "status":
            return reply(True, **self.status())
        if cmd.cmd == "shutdown":
            self.stop()
            return reply(True, message="shutting down")
        if cmd.cmd == "prompt" and len(cmd.boxes) > self.max_per_prompt:  # refused without waiting
            return reply(
                False,
                error=f"a prompt holds {len(cmd.boxes)} boxes; at most {self.max_per_prompt} are allowed "
                "per prompt (setting prompts.max_per_prompt)",
            )
        future: Future = Future()
        self._commands.put((cmd, future))
        try:
            return future.result(timeout=self.settings.control.reply_timeout_s)
        except FutureTimeout:
            future.cancel()
            return reply(
                False, error="the processing thread did not answer in time (busy); command not applied"
            )

    def _run_commands(self, fail: str | None = None) -> None:
        while True:
            try:
                cmd, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            if fail is not None:
                future.set_result(reply(False, error=fail))
                continue
            try:
                future.set_result(self._apply(cmd))
            except SamemError as exc:
                future.set_result(reply(False, error=str(exc)))
            except (
                Exception
            ) as exc:  # pragma: no cover - a bug, reported to the caller, service keeps running
                log.exception("control command %s failed", cmd.cmd)
                future.set_result(reply(False, error=f"internal error: {exc}"))

    def _apply(self, cmd: Command) -> dict[str, Any]:
        if cmd.cmd == "record":
            return self._record_command(cmd.action)
        session = self.session
        if session is None:
            return reply(False, error="no series is open (send a start message first)")
        if cmd.cmd == "prompt":
            session.prompt(cmd.boxes)
            return reply(True, pending=sorted(cmd.boxes), objects=session.object_ids)
        if cmd.cmd == "remove":
            session.remove(cmd.ids)
            return reply(True, objects=session.object_ids)
        session.reset()  # "reset"
        return reply(True, objects=[])

    def _record_command(self, action: str | None) -> dict[str, Any]:
        """The ``record`` command (processing thread): ``stop`` closes the recording (statistics so
        far written into it) and records nothing until ``start``, which opens the next free file
        (``FILE-k.h5``) for the open series, or waits for the next series."""
        if self.record_path is None:
            return reply(False, error="no recording file: start samem serve with --record FILE")
        if action == "stop":
            if self.recording_paused:
                return reply(False, error="recording is already stopped")
            self.recording_paused = True
            recorder, self.recorder = self.recorder, None
            if recorder is None:
                return reply(True, recording=False)
            session, stats = self.session, None
            try:
                if session is not None and session.live.particles:
                    stats = session.statistics()
            except Exception as exc:  # the recording must still be closed
                log.warning("statistics could not be computed for %s: %s", recorder.path, exc)
            try:
                recorder.close(stats_writer=(lambda f: write_stats(f, stats)) if stats is not None else None)
            except Exception as exc:
                self._recording_failed(f"cannot close {recorder.path}", exc)
                if not recorder.closed:
                    recorder.abort()
            log.info("recording stopped: %s (%d frames)", recorder.path, recorder.frames_written)
            return reply(True, recording=False, file=str(recorder.path), frames=recorder.frames_written)
        if not self.recording_paused and self.recorder is not None:
            return reply(False, error=f"already recording to {self.recorder.path}")
        self.recording_paused = False
        session, start = self.session, self.series
        if session is None or start is None:
            return reply(True, recording=True, file=None, message="recording starts with the next series")
        k = self._series_count
        while series_path(self.record_path, k).exists():
            k += 1
        self._recording_file = series_path(self.record_path, k)
        self._recording_failed_series = False
        try:
            self.recorder = self._open_recorder(
                self._recording_file, start, session.pixel_size_nm, session.frame_interval_s
            )
        except Exception as exc:
            self._recording_failed(f"cannot record series {start.series!r}", exc)
            return reply(False, error=self.recording_error)
        log.info("recording to %s", self.recorder.path)
        return reply(True, recording=True, file=str(self.recorder.path))

    def _recording_status(self) -> dict[str, Any] | None:
        if self.session is None or self.record_path is None:
            return None
        recorder = self.recorder
        return {
            "file": str(recorder.path if recorder is not None else self._recording_file),
            "frames_flushed": recorder.frames_flushed if recorder is not None else None,
            "ok": not self._recording_failed_series,
            "error": self.recording_error if self._recording_failed_series else None,
        }

    def status(self) -> dict[str, Any]:
        """Counters, lag and objects (the ``status`` command's reply)."""
        c = self.ingest.counters
        session = self.session
        series = self.series
        return {
            "frames_received": c.frames_received,
            "frames_processed": self.frames_processed,
            "frames_dropped": self.queue.dropped,
            "frames_failed": self.frames_failed,
            "frames_missing_upstream": c.frames_missing_upstream,
            "messages_rejected": c.messages_rejected,
            "rejected_by_reason": dict(c.rejected),
            "lag": {
                "frames": len(self.queue),
                "latency_ms": None if self.last_latency_s is None else 1000.0 * self.last_latency_s,
            },
            "objects": session.object_ids if session else [],
            "processing_fps": session.processing_fps if session else self.last_processing_fps,
            "series": None
            if series is None or session is None
            else {
                "name": series.series,
                "shape": list(series.shape),
                "dtype": series.dtype.name,
                "pixel_size_nm": session.pixel_size_nm,
                "frame_interval_s": session.frame_interval_s,
            },
            "recording": self._recording_status(),
            "recording_paused": self.recording_paused,
            "next_object_id": session.next_object_id if session else None,
            "clients_refused": self.factory.clients_refused if hasattr(self, "factory") else None,
            "recording_failures": self.recording_failures,
            "frames_not_recorded": self.frames_not_recorded,
            "policy": self.queue.policy,
            "uptime_s": time.monotonic() - self._started_s,
            "endpoints": self.endpoints,
        }
