"""The operator's live browser view of ``samem serve`` (``--view HOST:PORT``).

An aiohttp web server (HTTP + WebSocket) in its own thread with its own asyncio loop. It is a
consumer of the service like any other and never a second path for results or commands:

- :class:`FrameTap` is a *frame observer* of the service (called in the processing thread
  after each frame is published). At most ``max_fps`` times a second, and only while a
  browser is connected, it keeps references to the frame and its label image (no copy, no
  work); everything else happens in the view's thread.
- the view listens to the results publisher in-process (the ``frame``, ``stats`` and
  ``feedback`` topics, exactly what a ZeroMQ subscriber receives) for trails, the particle
  table, the ensemble MSD and feedback events;
- the browser's controls (draw a box: ``prompt``; click a particle: ``remove``; ``reset``;
  ``record`` start/stop) are control-protocol JSON commands, validated by
  :func:`samem.stream.control.parse_command` and answered by the same handler as the REP
  socket (``Service.handle_control``); counters come from its ``status`` command.

Frames reach the browser as JPEG of at most ``max_side`` px, at most ``max_fps`` a second;
a browser that cannot keep up is skipped, never waited for. A loopback bind needs no token; a
non-loopback bind needs ``--allow-remote`` and a token (given, or generated and printed),
checked on every request. WebSocket connections must come from the page's own origin.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import cv2
import numpy as np

from samem.errors import SamemError
from samem.stream.control import MAX_OBJECT_ID, parse_command
from samem.stream.protocol import encode_json
from samem.view import render

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: control commands a browser may send (not ``shutdown``: stopping stays with the operator)
BROWSER_COMMANDS = ("prompt", "remove", "reset", "record", "status")
MAX_BROWSER_MESSAGE_BYTES = 4096
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")
_STATIC = ("index.html", "view.js", "view.css")
_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}


@dataclass(frozen=True)
class ViewOptions:
    """Settings of the browser view.

    Attributes
    ----------
    host : str
        Address to bind (loopback unless ``allow_remote``).
    port : int
        TCP port; 0 picks a free one.
    allow_remote : bool
        Allow a non-loopback ``host`` (then ``token`` is required).
    token : str or None
        Access token (16-256 characters ``A-Z a-z 0-9 . _ ~ -``); required on every request
        when set.
    max_fps : float
        Most frames sent to browsers per second.
    max_side : int
        Largest side of the images sent, px (at most 1024).
    jpeg_quality : int
        JPEG quality, 1..100.
    trail_frames : int
        Positions kept per particle for its trail (frames).
    max_clients : int
        Browsers connected at once; more are refused.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    token: str | None = None
    max_fps: float = 10.0
    max_side: int = 1024
    jpeg_quality: int = 80
    trail_frames: int = 50
    max_clients: int = 8

    @property
    def remote(self) -> bool:
        return self.host not in _LOOPBACK

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else host
        query = f"/?token={self.token}" if self.token else "/"
        return f"http://{shown}:{self.port if port is None else port}{query}"


def parse_view_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[IPv6]:PORT``) to ``(host, port)``; :class:`SamemError` otherwise."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s/]+):(\d{1,5})", text or "")
    if m is None:
        raise SamemError(f"--view {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if port > 65535:
        raise SamemError(f"--view {text!r}: port must be 0..65535")
    return host, port


def view_options(
    address: str, allow_remote: bool = False, token: str | None = None, **settings: Any
) -> ViewOptions:
    """Validated :class:`ViewOptions` from the command line.

    A non-loopback host without ``allow_remote`` is refused; with it, ``token`` is required and
    generated when not given. ``settings`` override the other fields (checked ranges).
    """
    host, port = parse_view_address(address)
    remote = host not in _LOOPBACK
    if remote and not allow_remote:
        raise SamemError(
            f"--view {address} would serve the view to the network; pass --allow-remote (access then "
            "needs a token: --view-token TOKEN, or one is generated and printed)"
        )
    if token is not None and not _TOKEN.fullmatch(token):
        raise SamemError("--view-token must be 16-256 characters of A-Z a-z 0-9 . _ ~ -")
    if remote and token is None:
        token = secrets.token_urlsafe(24)
    opts = ViewOptions(host=host, port=port, allow_remote=bool(allow_remote), token=token, **settings)
    if not 0 < opts.max_fps <= 30:
        raise SamemError(f"view max_fps must be in (0, 30], got {opts.max_fps}")
    if not 64 <= opts.max_side <= render.MAX_SIDE:
        raise SamemError(f"view max_side must be 64..{render.MAX_SIDE} px, got {opts.max_side}")
    if not 1 <= opts.jpeg_quality <= 100:
        raise SamemError(f"view jpeg_quality must be 1..100, got {opts.jpeg_quality}")
    if not 1 <= opts.trail_frames <= 10000 or not 1 <= opts.max_clients <= 100:
        raise SamemError("view trail_frames must be 1..10000 and max_clients 1..100")
    return opts


class FrameTap:
    """Frame observer of the service (``Service.frame_observers``): keeps the latest frame, its
    labels and calibration at most ``max_fps`` times a second, and only while ``wanted()``.

    Runs in the processing thread: a clock check and one attribute assignment per kept frame.
    """

    def __init__(self, max_fps: float, wanted: Callable[[], bool]):
        self.period_s = 1.0 / float(max_fps)
        self.wanted = wanted
        self.latest: tuple | None = None
        self.kept = 0
        self._last_s = -math.inf

    def __call__(self, msg, result, session) -> None:
        now = time.monotonic()
        if now - self._last_s < self.period_s or not self.wanted():
            return
        self._last_s = now
        self.kept += 1
        self.latest = (
            int(msg.seq),
            float(msg.timestamp),
            msg.data,
            result.labels,
            session.pixel_size_nm if session is not None else None,
            session.frame_interval_s if session is not None else None,
            getattr(session, "last_statistics", None),
        )


class ViewState:
    """What the page shows, built in the view's thread from the published topics.

    Parameters
    ----------
    trail_frames : int
        Positions kept per particle (frames).
    """

    MAX_EVENTS = 50

    def __init__(self, trail_frames: int = 50):
        self.trail_frames = int(trail_frames)
        self.inbox: deque = deque(maxlen=4096)
        self.clear()

    def clear(self) -> None:
        self.trails: dict[int, deque] = {}
        self.present: dict[int, bool] = {}
        self.lost: set[int] = set()
        self.track_frames: dict[int, int] = {}
        self.tracked: list[int] = []
        self.fits: dict[int, dict] = {}
        self.ensemble: dict | None = None
        self.snr: dict[int, float] = {}
        self.frame_snr: float | None = None
        self.events: deque = deque(maxlen=self.MAX_EVENTS)
        self.last_seq: int | None = None
        self.stats_seq: int | None = None

    def listener(self, topic: str, payload: Any) -> None:
        """Publisher listener (sender's thread): hand over, nothing else."""
        self.inbox.append((topic, payload))

    def drain(self) -> bool:
        """Apply the messages received since the last call; True when something changed."""
        changed = False
        while True:
            try:
                topic, msg = self.inbox.popleft()
            except IndexError:
                return changed
            changed = True
            try:
                self._apply(topic, msg)
            except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - service bug
                log.warning("view: could not use a %s message: %s", topic, exc)

    def _apply(self, topic: str, msg: Mapping[str, Any]) -> None:
        if topic == "frame":
            seq = int(msg["seq"])
            if self.last_seq is not None and seq <= self.last_seq:  # a new series
                self.clear()
            self.last_seq = seq
            self.tracked = sorted(int(o["id"]) for o in msg["objects"])
            for o in msg["objects"]:
                oid = int(o["id"])
                self.present[oid] = bool(o["present"])
                if o["present"] and o["x"] is not None and o["y"] is not None:
                    trail = self.trails.setdefault(oid, deque(maxlen=self.trail_frames))
                    trail.append((seq, float(o["x"]), float(o["y"])))
                    self.track_frames[oid] = self.track_frames.get(oid, 0) + 1
        elif topic == "stats":
            if "particles" in msg:
                self.fits = {int(p["particle"]): p for p in msg["particles"]}
                self.ensemble = msg.get("ensemble")
                self.stats_seq = msg.get("seq")
        elif topic == "feedback":
            if msg.get("snr") is not None:
                self.frame_snr = float(msg["snr"])
            for e in msg.get("events", []):
                kind = e.get("kind")
                oid = e.get("id")
                if kind == "object_lost" and oid is not None:
                    self.lost.add(int(oid))
                elif kind == "object_found" and oid is not None:
                    self.lost.discard(int(oid))
                self.events.append({"seq": msg.get("seq"), "time": time.time(), **e})

    def particles(self) -> list[dict[str, Any]]:
        """Table rows: tracked particles first, then those with fits that are no longer tracked."""
        rows = []
        for oid in self.tracked + sorted(set(self.fits) - set(self.tracked)):
            fit = self.fits.get(oid, {})
            if oid not in self.tracked:
                state = "ended"
            elif oid in self.lost:
                state = "lost"
            else:
                state = "present" if self.present.get(oid) else "absent"
            rows.append(
                {
                    "id": oid,
                    "state": state,
                    "track_frames": self.track_frames.get(oid, fit.get("n_present", 0)),
                    "D": fit.get("D_nm2_s"),
                    "D_err": fit.get("D_err_nm2_s"),
                    "alpha": fit.get("alpha"),
                    "alpha_err": fit.get("alpha_err"),
                    "sigma": fit.get("sigma_nm"),
                    "snr": self.snr.get(oid),
                }
            )
        return rows


def _json(message: Mapping[str, Any]) -> str:
    """Strict JSON text; the fast path for messages of plain finite values, else NaN as null."""
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return encode_json(message).decode()


def _msd_curve(statistics) -> dict[str, Any] | None:
    """Ensemble MSD points and its fit from a :class:`samem.stats.summary.Statistics`."""
    if statistics is None:
        return None
    emsd = statistics.emsd
    if emsd is None or len(emsd) == 0:
        return None
    ens = statistics.summary.get("ensemble", {})
    return {
        "lag_s": emsd["lag_s"].tolist(),
        "msd_nm2": emsd["msd_nm2"].tolist(),
        "sem_nm2": emsd["sem_nm2"].tolist() if "sem_nm2" in emsd else None,
        "fit": {
            "D_alpha": ens.get("D_alpha_nm2_s_alpha"),
            "alpha": ens.get("alpha"),
            "offset": ens.get("offset_alpha_nm2"),
            "D": ens.get("D_nm2_s"),
            "D_err": ens.get("D_err_nm2_s"),
            "alpha_err": ens.get("alpha_err"),
        },
        "units": statistics.summary.get("units", {}),
    }


class ViewServer:
    """The browser view: an aiohttp server in its own thread.

    Parameters
    ----------
    options : ViewOptions
    control : callable
        ``control(raw_json_bytes) -> reply dict``: the service's control handler.
    recording : bool
        Whether the service was given a recording file (the record buttons work).
    """

    def __init__(self, options: ViewOptions, control: Callable[[bytes], dict], recording: bool = False):
        self.options = options
        self.control = control
        self.recording = bool(recording)
        self.state = ViewState(options.trail_frames)
        self.tap = FrameTap(options.max_fps, lambda: bool(self._clients))
        self.url: str | None = None
        self.port: int | None = None
        self.frames_sent = 0
        self.refused = 0
        self._clients: dict[Any, dict] = {}
        self._static = {
            name: resources.files("samem.view").joinpath("static", name).read_bytes() for name in _STATIC
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._last_frame: tuple | None = None
        self._last_stats_obj = None
        self._msd: dict | None = None
        self._status: dict = {}

    # ------------------------------------------------------------------ wiring
    def attach(self, service) -> None:
        """Register as a frame observer and publisher listener of a started ``Service``."""
        service.frame_observers.append(self.tap)
        service.publisher.listeners.append(self.state.listener)

    def start(self, timeout_s: float = 30.0) -> str:
        """Bind and serve in a background thread; returns the page's URL (with the token)."""
        self._thread = threading.Thread(target=self._run, name="samem-view", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise SamemError("the browser view did not start in time")
        if self._error is not None:
            err = self._error
            if isinstance(err, SamemError):
                raise err
            raise SamemError(
                f"cannot serve the view on {self.options.host}:{self.options.port}: {err}"
            ) from None
        return self.url or ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close connections and stop the server thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BROWSER_MESSAGE_BYTES)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/ws", self._websocket)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.options.host, self.options.port, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                where = f"{self.options.host}:{self.options.port}"
                raise SamemError(f"cannot serve the view on {where} ({exc.strerror or exc})") from None
            sockets = site._server.sockets if site._server is not None else []  # noqa: SLF001
            self.port = int(sockets[0].getsockname()[1]) if sockets else self.options.port
            self.url = self.options.url(self.port)
            self._ready.set()
            ticker = asyncio.create_task(self._tick_forever())
            await self._stop.wait()
            ticker.cancel()
            for ws in list(self._clients):
                await ws.close()
        finally:
            await runner.cleanup()

    # ------------------------------------------------------------------ access control
    def _token_ok(self, request) -> bool:
        token = self.options.token
        if token is None:
            return True
        given = request.query.get("token") or request.cookies.get("samem_view_token") or ""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        return hmac.compare_digest(given.encode(), token.encode())

    def _host_ok(self, request) -> bool:
        """On a loopback bind, the Host header must name loopback (no DNS rebinding)."""
        if self.options.remote:
            return True
        host = request.host or ""
        if host.startswith("["):  # [IPv6]:port
            host = host[1:].split("]", 1)[0]
        else:
            host = host.rsplit(":", 1)[0]
        return host in _LOOPBACK

    @property
    def _guard(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            if not self._host_ok(request):
                self.refused += 1
                return web.Response(status=403, text="samem view: bad Host header\n")
            if not self._token_ok(request):
                self.refused += 1
                return web.Response(
                    status=401, text="samem view: a token is required (the URL printed by samem serve)\n"
                )
            response = await handler(request)
            if not response.prepared:
                response.headers["X-Content-Type-Options"] = "nosniff"
                response.headers["Cache-Control"] = "no-store"
                response.headers["Content-Security-Policy"] = (
                    "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; "
                    "frame-ancestors 'none'"
                )
            return response

        return guard

    # ------------------------------------------------------------------ HTTP
    async def _index(self, request):
        from aiohttp import web

        response = web.Response(body=self._static["index.html"], content_type="text/html")
        if self.options.token and request.query.get("token"):
            response.set_cookie("samem_view_token", self.options.token, httponly=True, samesite="Strict")
        return response

    async def _static_file(self, request):
        from aiohttp import web

        name = request.match_info["name"]
        if name not in _STATIC or name == "index.html":
            raise web.HTTPNotFound()
        return web.Response(body=self._static[name], content_type=_TYPES[name.rsplit(".", 1)[1]])

    async def _websocket(self, request):
        from aiohttp import WSMsgType, web

        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            self.refused += 1
            return web.Response(status=403, text="samem view: cross-origin WebSocket refused\n")
        if len(self._clients) >= self.options.max_clients:
            return web.Response(status=503, text="samem view: too many browsers connected\n")
        ws = web.WebSocketResponse(max_msg_size=MAX_BROWSER_MESSAGE_BYTES, heartbeat=20.0)
        await ws.prepare(request)
        self._clients[ws] = {"task": None}
        self._last_frame = None  # the new browser gets the current frame
        try:
            await self._send(ws, self._state_message(), force=True)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    answer = await self._command(message.data)
                    await self._send(ws, answer, force=True)
                elif message.type in (WSMsgType.BINARY,):
                    await self._send(
                        ws, {"type": "reply", "reply": {"ok": False, "error": "send text"}}, True
                    )
        finally:
            self._clients.pop(ws, None)
        return ws

    async def _command(self, text: str) -> dict[str, Any]:
        raw = text.encode("utf-8", "replace")
        if len(raw) > MAX_BROWSER_MESSAGE_BYTES:
            return {"type": "reply", "reply": {"ok": False, "error": "command too large"}}
        cmd = parse_command(raw)
        if isinstance(cmd, str):
            return {"type": "reply", "reply": {"ok": False, "error": cmd}}
        if cmd.cmd not in BROWSER_COMMANDS:
            return {
                "type": "reply",
                "reply": {"ok": False, "error": f"{cmd.cmd} is not available in the view"},
            }
        reply = await asyncio.get_running_loop().run_in_executor(None, self.control, raw)
        return {"type": "reply", "cmd": cmd.cmd, "reply": reply}

    async def _send(self, ws, message: Mapping[str, Any] | str, force: bool = False) -> None:
        """Send to one browser (a message, or its JSON text encoded once for all browsers); a
        browser still busy with the previous message is skipped."""
        client = self._clients.get(ws)
        if client is None or ws.closed:
            return
        task = client["task"]
        if task is not None and not task.done():
            if not force:
                return
            await asyncio.wait([task], timeout=5.0)
        text = message if isinstance(message, str) else _json(message)
        client["task"] = asyncio.ensure_future(ws.send_str(text))

    # ------------------------------------------------------------------ the tick
    async def _tick_forever(self) -> None:
        period = 1.0 / self.options.max_fps
        last_state = 0.0
        while True:
            await asyncio.sleep(period)
            try:
                self.state.drain()
                frame_msg = None
                latest = self.tap.latest
                if self._clients and latest is not None and latest is not self._last_frame:
                    self._last_frame = latest
                    frame_msg = _json(self._frame_message(latest))
                now = time.monotonic()
                if self._clients and now - last_state >= 0.5:
                    last_state = now
                    state = _json(self._state_message())
                    for ws in list(self._clients):
                        await self._send(ws, state)
                if frame_msg is not None:
                    self.frames_sent += 1
                    for ws in list(self._clients):
                        await self._send(ws, frame_msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # the view must survive anything a frame brings
                log.exception("view: update failed")

    def _frame_message(self, latest: tuple) -> dict[str, Any]:
        seq, timestamp, frame, labels, px, dt, statistics = latest
        scale = render.display_scale(frame.shape, self.options.max_side)
        lo, hi = render.contrast_limits(frame)
        small, lab = render.downsample(render.to_uint8(frame, lo, hi), labels, scale)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 greyscale
            raise RuntimeError("JPEG encoding failed")
        if lab is not None:
            small_raw, _ = render.downsample(np.asarray(frame, dtype=np.float32), None, scale)
            self.state.snr = render.particle_snr(small_raw, lab)
        outlines = render.contours(lab) if lab is not None else {}
        trails = {
            str(oid): [[round(x * scale, 1), round(y * scale, 1)] for _, x, y in t]
            for oid, t in self.state.trails.items()
            if oid in self.state.tracked
        }
        if statistics is not None and statistics is not self._last_stats_obj:
            self._last_stats_obj = statistics
            self._msd = _msd_curve(statistics)
        return {
            "type": "frame",
            "seq": seq,
            "timestamp": timestamp if math.isfinite(timestamp) else None,
            "time_s": None if dt is None else seq * dt,
            "image": "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode(),
            "width": int(small.shape[1]),
            "height": int(small.shape[0]),
            "frame_width": int(frame.shape[1]),
            "frame_height": int(frame.shape[0]),
            "scale": scale,
            "pixel_size_nm": px,
            "frame_interval_s": dt,
            "contours": {str(k): v for k, v in outlines.items() if 0 < k <= MAX_OBJECT_ID},
            "trails": trails,
        }

    def _state_message(self) -> dict[str, Any]:
        try:
            status = self.control(b'{"cmd": "status"}')
        except Exception as exc:  # noqa: BLE001 - a counter read racing the ingest thread
            log.debug("view: status failed: %s", exc)
            status = self._status
        self._status = status
        return {
            "type": "state",
            "status": {
                k: status.get(k)
                for k in (
                    "frames_received",
                    "frames_processed",
                    "frames_dropped",
                    "messages_rejected",
                    "frames_failed",
                    "processing_fps",
                    "lag",
                    "recording",
                    "recording_paused",
                    "series",
                    "objects",
                    "next_object_id",
                    "uptime_s",
                )
            },
            "recording_available": self.recording,
            "particles": self.state.particles(),
            "frame_snr": self.state.frame_snr,
            "msd": self._msd,
            "events": list(self.state.events)[-20:],
            "view": {"frames_sent": self.frames_sent, "max_fps": self.options.max_fps},
        }
