"""Sending frames to ``samem serve``: what acquisition software (or a replay) runs.

Needs only numpy and pyzmq::

    from samem.stream.client import FrameSender

    with FrameSender("tcp://127.0.0.1:5555") as tx:
        tx.start(shape=(1024, 1024), dtype="uint16", pixel_size_nm=0.4, frame_interval_s=0.05)
        for seq, frame in enumerate(camera):
            tx.send(frame, seq=seq)        # timestamp defaults to time.time()
        tx.end()

:func:`replay` streams a file opened with :func:`samem.io.readers.open_video` at a given
frame rate as a simulated microscope (``samem replay``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from samem.errors import SamemError
from samem.stream.protocol import encode_end, encode_frame, encode_start


def load_curve_keys(path: str | Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """Read a ZeroMQ certificate file (``zmq.auth.create_certificates`` format).

    Returns
    -------
    public, secret : bytes, bytes or None
        Z85 keys; ``secret`` is None in a public-only certificate.
    """
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise SamemError(f"{path}: not a readable ZeroMQ certificate ({exc})") from None
    if need_secret and not secret:
        raise SamemError(f"{path}: holds no secret key (use the .key_secret file)")
    return public, secret


class FrameSender:
    """Push a series of frames to a ``samem serve`` ingest socket.

    Parameters
    ----------
    address : str
        Ingest address of the service, e.g. ``"tcp://127.0.0.1:5555"``.
    send_timeout_s : float or None
        Give up (``SamemError``) when a frame cannot be queued for this long because the
        service is not receiving; None waits forever.
    queue_frames : int
        Frames buffered on the sending side before :meth:`send` waits (ZeroMQ high-water mark).
    server_public_key : str or Path, optional
        Service's public certificate: enables CurveZMQ encryption and authentication.
    client_secret_key : str or Path, optional
        This client's secret certificate (required with ``server_public_key``).
    context : zmq.Context, optional
        Shared ZeroMQ context (default: the process-wide instance).
    """

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        send_timeout_s: float | None = 10.0,
        queue_frames: int = 8,
        server_public_key: str | Path | None = None,
        client_secret_key: str | Path | None = None,
        context: zmq.Context | None = None,
    ):
        self.address = address
        self._sock = (context or zmq.Context.instance()).socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, max(1, int(queue_frames)))
        self._sock.setsockopt(zmq.LINGER, 0)
        if send_timeout_s is not None:
            self._sock.setsockopt(zmq.SNDTIMEO, max(0, int(send_timeout_s * 1000)))
        if server_public_key is not None:
            if client_secret_key is None:
                raise SamemError("CurveZMQ needs the client's secret certificate too (client_secret_key)")
            server_public, _ = load_curve_keys(server_public_key, need_secret=False)
            public, secret = load_curve_keys(client_secret_key, need_secret=True)
            self._sock.curve_serverkey = server_public
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
        try:
            self._sock.connect(address)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise SamemError(f"cannot connect to {address!r}: {exc}") from None
        self._seq = 0
        self.frames_sent = 0

    def _send(self, parts: list) -> None:
        try:
            self._sock.send_multipart(parts, copy=False)
        except zmq.Again:
            raise SamemError(f"no samem service is receiving at {self.address} (send timed out)") from None

    def start(
        self,
        shape: tuple[int, int],
        dtype: str | np.dtype,
        pixel_size_nm: float | None = None,
        frame_interval_s: float | None = None,
        series: str | None = None,
        **meta: Any,
    ) -> None:
        """Open a series: frame (H, W) in pixels, dtype, pixel size (nm/px), frame interval (s)."""
        self._seq = 0
        self._send(encode_start(shape, dtype, pixel_size_nm, frame_interval_s, series, **meta))

    def send(self, frame: np.ndarray, seq: int | None = None, timestamp: float | None = None) -> int:
        """Send one (H, W) frame; ``seq`` defaults to one more than the last, ``timestamp`` (s) to now.

        Returns
        -------
        int
            The seq sent.
        """
        seq = self._seq if seq is None else int(seq)
        self._send(encode_frame(np.asarray(frame), seq, time.time() if timestamp is None else timestamp))
        self._seq = seq + 1
        self.frames_sent += 1
        return seq

    def end(self) -> None:
        """Close the series (the service finalises statistics and flushes its recording)."""
        self._send(encode_end(self.frames_sent))

    def close(self, linger_s: float = 5.0) -> None:
        """Close the socket, waiting up to ``linger_s`` for queued messages to be delivered."""
        if not self._sock.closed:
            self._sock.close(linger=int(linger_s * 1000))

    def __enter__(self) -> FrameSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ReplayReport:
    """Outcome of :func:`replay`: frames sent, elapsed wall time (s), achieved rate (frames/s)."""

    frames: int
    elapsed_s: float
    late_frames: int

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def replay(
    reader,
    sender: FrameSender,
    fps: float | None,
    start: int = 0,
    stop: int | None = None,
    series: str | None = None,
    progress: Iterable | None = None,
) -> ReplayReport:
    """Stream frames of a video reader like a microscope would.

    Parameters
    ----------
    reader : samem.io.base.VideoReader
        Source frames and metadata (pixel size, frame interval).
    sender : FrameSender
        Connected sender.
    fps : float or None
        Sending rate, frames/s (paced against the wall clock); None or 0 sends as fast as the
        service accepts.
    start, stop : int
        Frame range to send (seq = frame index in the file).
    series : str, optional
        Series name (default: the file name).
    progress : callable, optional
        Wraps the frame index iterable (e.g. ``tqdm``).

    Returns
    -------
    ReplayReport
    """
    stop = len(reader) if stop is None else min(stop, len(reader))
    if not 0 <= start < stop:
        raise SamemError(f"frame range {start}..{stop} is empty for a video of {len(reader)} frames")
    if fps is not None and fps < 0:
        raise SamemError(f"fps must be positive (or 0 for as fast as possible), got {fps}")
    meta = reader.metadata
    sender.start(
        reader.frame_shape,
        reader.dtype,
        pixel_size_nm=meta.get("pixel_size_nm"),
        frame_interval_s=meta.get("frame_interval_s"),
        series=series or Path(str(reader.path)).name,
        source=str(reader.path),
    )
    indices = range(start, stop)
    t0 = time.monotonic()
    late = 0
    for k, i in enumerate(progress(indices) if progress else indices):
        if fps:
            due = t0 + k / fps
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0 / fps:
                late += 1
        sender.send(reader[i], seq=i)
    sender.end()
    return ReplayReport(frames=stop - start, elapsed_s=time.monotonic() - t0, late_frames=late)
