"""ZAP handler that admits CurveZMQ clients whose public certificates are in one folder.

ZeroMQ asks a ZAP handler (RFC 27, ``inproc://zeromq.zap.01`` in the same context) whether a
client that completed the CURVE handshake may connect. This one runs in a plain thread with a
synchronous poller and a timeout, so :meth:`CurveAuthenticator.stop` always returns: pyzmq's
``ThreadAuthenticator`` (an asyncio loop in a thread) was seen to hang the service's shutdown
under load.

Only the CURVE mechanism is admitted; every other mechanism is refused, so a misconfigured
socket can never fall back to an open connection.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import zmq
from zmq.utils import z85

from samem.errors import SamemError

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_VERSION = b"1.0"


def authorized_keys(folder: str | Path) -> frozenset[bytes]:
    """Z85 public keys of every certificate (``*.key``, ``*.key_secret``) in ``folder``."""
    import zmq.auth

    path = Path(folder)
    if not path.is_dir():
        raise SamemError(f"authorized_clients: {path} is not a folder of client certificates")
    try:
        keys = zmq.auth.load_certificates(str(path))
    except (OSError, ValueError) as exc:
        raise SamemError(f"authorized_clients: cannot read certificates in {path} ({exc})") from None
    if not keys:
        log.warning("authorized_clients: %s holds no certificates; no client can connect", path)
    return frozenset(keys)


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace")


def decide(request: list[bytes], keys: frozenset[bytes]) -> list[bytes]:
    """The ZAP reply to one request: ``200`` for a CURVE client with a listed key, else ``400``.

    A refusal carries a seventh element, why (for the log; not sent), after the six of RFC 27.

    Parameters
    ----------
    request : list of bytes
        ZAP request frames: version, request id, domain, address, identity, mechanism,
        credentials...
    keys : frozenset of bytes
        Z85 public keys admitted.
    """
    if len(request) < 6:
        return [_VERSION, b"", b"500", b"malformed ZAP request", b"", b""]
    version, request_id, _domain, address, _identity, mechanism = request[:6]
    credentials = request[6:]
    if version != _VERSION:
        return [_VERSION, request_id, b"500", b"unsupported ZAP version", b"", b""]
    if mechanism == b"CURVE" and len(credentials) == 1 and len(credentials[0]) == 32:
        key = z85.encode(credentials[0])
        if key in keys:
            return [_VERSION, request_id, b"200", b"OK", key, b""]
        why = f"CURVE client {key.decode()} from {_text(address)}: key not authorized"
        return [_VERSION, request_id, b"400", b"key not authorized", b"", b"", why.encode()]
    why = f"{_text(mechanism)[:20]} client from {_text(address)}: only CURVE is admitted"
    return [_VERSION, request_id, b"400", b"only CURVE clients are admitted", b"", b"", why.encode()]


class CurveAuthenticator:
    """ZAP handler thread for one context.

    Parameters
    ----------
    context : zmq.Context
        The context whose CURVE server sockets it authenticates (one handler per context).
    folder : str or Path
        Folder of authorized client certificates.
    poll_ms : int
        How often the thread checks for :meth:`stop` (ms).
    """

    def __init__(self, context: zmq.Context, folder: str | Path, poll_ms: int = 100):
        self.keys = authorized_keys(folder)
        self._sock = context.socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            self._sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise SamemError(f"cannot start the CurveZMQ authenticator: {exc}") from None
        self._stop = threading.Event()
        self._poll_ms = poll_ms
        self.admitted = 0
        self.refused = 0
        self.last_refused: str | None = None
        self._thread = threading.Thread(target=self._run, name="samem-zap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(self._poll_ms):
                    continue
                reply = decide(self._sock.recv_multipart(), self.keys)
                if reply[2] == b"200":
                    self.admitted += 1
                else:
                    self._refused(reply[6].decode() if len(reply) > 6 else reply[3].decode())
                self._sock.send_multipart(reply[:6])
        finally:
            self._sock.close(0)

    def _refused(self, why: str) -> None:
        """Count a refusal; log the first and every 100th at WARNING (a scan cannot flood the log)."""
        self.refused += 1
        self.last_refused = why
        if self.refused == 1 or self.refused % 100 == 0:
            log.warning("refused a client (%d refused so far): %s", self.refused, why)

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the thread (it closes its socket); waits at most ``timeout_s``."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # pragma: no cover - poll returns within poll_ms
            log.error("the CurveZMQ authenticator did not stop within %.0f s", timeout_s)
