"""ZeroMQ sockets of the service: binding with optional CurveZMQ, and the results publisher.

With ``sockets.curve.server_secret_key`` set, every service socket is a CurveZMQ server
(encrypted) and a ZAP authenticator admits only clients whose public certificates are in
``sockets.curve.authorized_clients``. Create certificates with
``python -c "import zmq.auth; zmq.auth.create_certificates('keys', 'server')"``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from samem.errors import SamemError
from samem.stream.client import load_curve_keys
from samem.stream.protocol import encode_pub
from samem.stream.settings import SocketSettings
from samem.stream.zap import CurveAuthenticator

log = logging.getLogger(__name__)


class SocketFactory:
    """Creates bound service sockets, all secured the same way.

    Parameters
    ----------
    sockets_cfg : SocketSettings
        ``sockets`` settings (``curve`` sub-section used here).
    context : zmq.Context, optional
        Context to create sockets in (default: a new one, terminated by :meth:`close`).
    """

    def __init__(self, sockets_cfg: SocketSettings, context: zmq.Context | None = None):
        self._own = context is None
        self.context = context or zmq.Context()
        self._auth = None
        self._keys = None
        curve = sockets_cfg.curve
        if curve.server_secret_key:
            self._keys = load_curve_keys(curve.server_secret_key, need_secret=True)
            self._auth = CurveAuthenticator(self.context, curve.authorized_clients)

    @property
    def clients_refused(self) -> int | None:
        """Clients the CurveZMQ authenticator refused so far (None without CurveZMQ)."""
        return None if self._auth is None else self._auth.refused

    @property
    def last_refused(self) -> str | None:
        """Who the authenticator refused last and why (None without refusals)."""
        return None if self._auth is None else self._auth.last_refused

    @property
    def secure(self) -> bool:
        """Whether sockets use CurveZMQ."""
        return self._keys is not None

    def bind(self, kind: int, address: str, **options: int) -> tuple[zmq.Socket, str]:
        """A socket of ``kind`` bound to ``address``; returns it and the endpoint actually bound.

        ``tcp://127.0.0.1:*`` binds a free port; the returned endpoint names it.
        """
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        if self._keys is not None:
            public, secret = self._keys
            sock.curve_server = True
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise SamemError(f"cannot bind {address}: {exc}") from None
        return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        """Stop the authenticator and terminate an owned context (sockets must be closed)."""
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own:
            self.context.term()


class Publisher:
    """Thread-safe sender of ``[topic, JSON]`` messages on a PUB socket.

    PUB never blocks: a subscriber that cannot keep up loses messages at its high-water mark,
    so a slow consumer never slows the service.

    ``listeners`` are in-process consumers (the browser view, :mod:`samem.view`): each is called
    as ``listener(topic, payload)`` after the message is sent, in the sender's thread, so it
    must only hand the payload over (append to a bounded deque) and never raise or block.
    """

    def __init__(self, sock: zmq.Socket):
        self._sock = sock
        self._lock = threading.Lock()
        self.sent: dict[str, int] = {}
        self.listeners: list = []

    def send(self, topic: str, payload: Any) -> None:
        """Publish ``payload`` (JSON-serialisable; numpy values and NaN are converted)."""
        parts = encode_pub(topic, payload)
        with self._lock:
            try:
                self._sock.send_multipart(parts, flags=zmq.NOBLOCK)
            except zmq.Again:  # pragma: no cover - PUB drops instead of raising
                return
            self.sent[topic] = self.sent.get(topic, 0) + 1
        for listener in self.listeners:
            listener(topic, payload)
