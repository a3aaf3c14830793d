"""The ingest wire protocol: encoding and validating ``[JSON header, raw bytes]`` messages.

A series is ``start``, any number of ``frame`` messages, ``end`` (see docs/protocol.md).
Headers are UTF-8 JSON objects, never pickle. :class:`IngestParser` turns received message
parts into :class:`SeriesStart`, :class:`FrameMessage`, :class:`SeriesEnd`, or a
:class:`Rejected` with a reason code; it never raises on bad input and only changes its state
on accepted messages, so a rejected message leaves the series intact.

The same module encodes messages (used by :mod:`samem.stream.client`) and the JSON of the
results the service publishes (:func:`encode_json`, :func:`decode_pub`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samem.jsonsafe import jsonable

PROTOCOL_VERSION = 1

#: dtypes a frame may have; payload bytes are little-endian, C order (row-major)
DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")

#: every reason a message can be rejected for (keys of the service's rejection counters)
REASONS = (
    "parts",  # not 1 (start/end) or 2 (frame) parts
    "oversized",  # header, payload or announced frame larger than the configured caps
    "not_json",  # header is not UTF-8 JSON (NaN/Infinity are not JSON either)
    "bad_header",  # header is JSON but a field is missing, of the wrong type or out of range
    "bad_dtype",  # dtype not in DTYPES
    "no_series",  # frame or end with no open series (no start yet, or after end)
    "shape_changed",  # frame shape or dtype differs from the series start
    "byte_count",  # payload length is not H * W * itemsize
    "nan_frame",  # float frame with NaN or infinite pixels
    "duplicate_seq",  # seq equal to the last accepted one
    "out_of_order_seq",  # seq lower than the last accepted one
)

MAX_SEQ = 2**63 - 1
#: longest series name, characters
MAX_SERIES_CHARS = 256


def series_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a series name, or None when it can (or is None).

    A name is a string of at most :data:`MAX_SERIES_CHARS` characters without control
    characters (U+0000-U+001F, U+007F-U+009F: a NUL cannot be stored in HDF5 attributes,
    others garble logs and terminals) and without unpaired surrogates (not UTF-8).
    """
    if name is None:
        return None
    if not isinstance(name, str):
        return f"series must be a string or null, got {type(name).__name__}"
    if len(name) > MAX_SERIES_CHARS:
        return f"series must be at most {MAX_SERIES_CHARS} characters, got {len(name)}"
    for i, ch in enumerate(name):
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"series must not contain control characters; U+{code:04X} at position {i}"
        if 0xD800 <= code <= 0xDFFF:
            return f"series must be valid Unicode; unpaired surrogate U+{code:04X} at position {i}"
    return None


@dataclass(frozen=True)
class Limits:
    """Size caps for one ingest message.

    Attributes
    ----------
    max_header_bytes : int
        Largest JSON header, bytes.
    max_frame_bytes : int
        Largest frame payload (and largest H * W * itemsize a ``start`` may announce), bytes.
    max_frame_side : int
        Largest frame height or width, pixels.
    """

    max_header_bytes: int = 65536
    max_frame_bytes: int = 256 * 2**20
    max_frame_side: int = 16384


@dataclass(frozen=True)
class SeriesStart:
    """Series metadata from a ``start`` message.

    Attributes
    ----------
    shape : tuple of int
        (H, W) of every frame, pixels.
    dtype : numpy.dtype
        Pixel dtype (native byte order).
    pixel_size_nm : float or None
        nm/px; None when the sender does not know.
    frame_interval_s : float or None
        Nominal time between frames, s.
    series : str or None
        Sender's name for the series.
    meta : dict
        Any other header fields (JSON values), kept for the recording.
    """

    shape: tuple[int, int]
    dtype: np.dtype
    pixel_size_nm: float | None = None
    frame_interval_s: float | None = None
    series: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameMessage:
    """One accepted frame.

    Attributes
    ----------
    seq : int
        Sender's frame number (strictly increasing within a series).
    timestamp : float
        Acquisition time, s (sender's clock).
    data : ndarray
        (H, W) read-only view of the payload.
    gap : int
        Frames skipped by the sender since the previous accepted frame (seq jump - 1).
    """

    seq: int
    timestamp: float
    data: np.ndarray
    gap: int = 0


@dataclass(frozen=True)
class SeriesEnd:
    """End of a series; ``frames`` is the count the sender says it sent, if given."""

    frames: int | None = None


@dataclass(frozen=True)
class Rejected:
    """A message that was not accepted; ``reason`` is one of :data:`REASONS`."""

    reason: str
    detail: str
    seq: int | None = None


Message = SeriesStart | FrameMessage | SeriesEnd | Rejected


class _Bad(Exception):
    seq: int | None = None

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _nbytes(part) -> int:
    return memoryview(part).nbytes


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool) and math.isfinite(v)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _header(part, limits: Limits) -> dict[str, Any]:
    if _nbytes(part) > limits.max_header_bytes:
        raise _Bad("oversized", f"header of {_nbytes(part)} bytes exceeds {limits.max_header_bytes}")
    try:
        text = bytes(part).decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Bad("not_json", f"header is not UTF-8 JSON ({str(exc)[:120]})") from None
    if not isinstance(obj, dict):
        raise _Bad("not_json", f"header must be a JSON object, got {type(obj).__name__}")
    return obj


def _optional_positive(obj: dict, key: str) -> float | None:
    v = obj.get(key)
    if v is None:
        return None
    if not _is_number(v) or v <= 0:
        raise _Bad("bad_header", f"{key} must be a positive number or null, got {v!r:.60}")
    return float(v)


def _shape(obj: dict, limits: Limits) -> tuple[int, int]:
    shape = obj.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(_is_int(s) for s in shape):
        raise _Bad("bad_header", f"shape must be [height, width] integers, got {shape!r:.60}")
    if not all(1 <= s <= limits.max_frame_side for s in shape):
        raise _Bad("oversized", f"shape {shape} outside 1..{limits.max_frame_side} pixels")
    return int(shape[0]), int(shape[1])


def _dtype(obj: dict) -> np.dtype:
    name = obj.get("dtype")
    if not isinstance(name, str) or name not in DTYPES:
        raise _Bad("bad_dtype", f"dtype must be one of {', '.join(DTYPES)}, got {name!r:.60}")
    return np.dtype(name)


class IngestParser:
    """Validate ingest messages against the protocol and the open series.

    Parameters
    ----------
    limits : Limits
        Size caps.

    Attributes
    ----------
    series : SeriesStart or None
        The open series (None before ``start`` and after ``end``).
    last_seq : int or None
        seq of the last accepted frame of the open series.
    """

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.series: SeriesStart | None = None
        self.last_seq: int | None = None

    def parse(self, parts: Sequence, n_parts: int | None = None, total_bytes: int | None = None) -> Message:
        """Validate one multipart message.

        Parameters
        ----------
        parts : sequence of bytes-like
            The message parts (``bytes``, ``memoryview`` or ``zmq.Frame``).
        n_parts : int, optional
            True part count when the receiver stored only the first few parts.
        total_bytes : int, optional
            Size of the whole message when the receiver stored only the first few parts.

        Returns
        -------
        SeriesStart, FrameMessage, SeriesEnd or Rejected
            Never raises for malformed input.
        """
        try:
            n = len(parts) if n_parts is None else n_parts
            total = sum(_nbytes(p) for p in parts) if total_bytes is None else total_bytes
            return self._parse(parts, n, total)
        except _Bad as bad:
            return Rejected(bad.reason, bad.detail, bad.seq)

    def _parse(self, parts: Sequence, n: int, total: int) -> Message:
        if n < 1 or n > 2 or len(parts) < n:
            raise _Bad("parts", f"expected 1 or 2 message parts, got {n} ({total} bytes in all)")
        whole = self.limits.max_header_bytes + self.limits.max_frame_bytes
        if total > whole:
            raise _Bad("oversized", f"message of {total} bytes exceeds header + frame caps ({whole})")
        cap = self.limits.max_frame_bytes
        if n == 2 and _nbytes(parts[1]) > cap:
            raise _Bad("oversized", f"payload of {_nbytes(parts[1])} bytes exceeds {cap}")
        obj = _header(parts[0], self.limits)
        kind = obj.get("type")
        if kind == "frame":
            return self._frame(obj, parts[1] if n == 2 else None)
        if n != 1:
            raise _Bad("parts", f"a {kind!r:.20} message has 1 part, got {n}")
        version = obj.get("version", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION or isinstance(version, bool):
            raise _Bad("bad_header", f"version {version!r:.20} unsupported, need {PROTOCOL_VERSION}")
        if kind == "start":
            return self._start(obj)
        if kind == "end":
            return self._end(obj)
        raise _Bad("bad_header", f"type must be 'start', 'frame' or 'end', got {kind!r:.40}")

    def _start(self, obj: dict) -> SeriesStart:
        shape = _shape(obj, self.limits)
        dtype = _dtype(obj)
        if shape[0] * shape[1] * dtype.itemsize > self.limits.max_frame_bytes:
            raise _Bad("oversized", f"frames of {shape} {dtype} exceed {self.limits.max_frame_bytes} bytes")
        series = obj.get("series")
        problem = series_name_problem(series)
        if problem is not None:
            raise _Bad("bad_header", problem)
        known = {"type", "version", "shape", "dtype", "pixel_size_nm", "frame_interval_s", "series"}
        start = SeriesStart(
            shape=shape,
            dtype=dtype,
            pixel_size_nm=_optional_positive(obj, "pixel_size_nm"),
            frame_interval_s=_optional_positive(obj, "frame_interval_s"),
            series=series,
            meta={k: v for k, v in obj.items() if k not in known},
        )
        self.series, self.last_seq = start, None
        return start

    def _end(self, obj: dict) -> SeriesEnd:
        frames = obj.get("frames")
        if frames is not None and (not _is_int(frames) or frames < 0):
            raise _Bad("bad_header", f"frames must be a non-negative integer or null, got {frames!r:.40}")
        if self.series is None:
            raise _Bad("no_series", "end without an open series")
        self.series, self.last_seq = None, None
        return SeriesEnd(frames)

    def _frame(self, obj: dict, payload) -> FrameMessage:
        seq = obj.get("seq")
        if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
            raise _Bad("bad_header", f"seq must be an integer in 0..2**63-1, got {seq!r:.40}")
        try:
            return self._frame_checked(obj, payload, seq)
        except _Bad as bad:
            bad.seq = seq
            raise

    def _frame_checked(self, obj: dict, payload, seq: int) -> FrameMessage:
        timestamp = obj.get("timestamp")
        if not _is_number(timestamp):
            raise _Bad("bad_header", f"timestamp must be a finite number (s), got {timestamp!r:.40}")
        shape = _shape(obj, self.limits)
        dtype = _dtype(obj)
        if payload is None:
            raise _Bad("parts", "a frame message has 2 parts (header, pixels), got 1")
        series = self.series
        if series is None:
            raise _Bad("no_series", "frame without an open series (send start first)")
        if shape != series.shape or dtype != series.dtype:
            raise _Bad(
                "shape_changed",
                f"frame {list(shape)} {dtype} differs from the series {list(series.shape)} {series.dtype}",
            )
        expected = shape[0] * shape[1] * dtype.itemsize
        if _nbytes(payload) != expected:
            raise _Bad("byte_count", f"payload has {_nbytes(payload)} bytes, expected {expected}")
        if self.last_seq is not None and seq <= self.last_seq:
            if seq == self.last_seq:
                raise _Bad("duplicate_seq", f"seq {seq} already received")
            raise _Bad("out_of_order_seq", f"seq {seq} after {self.last_seq}")
        data = np.frombuffer(payload, dtype=dtype.newbyteorder("<")).reshape(shape)
        if dtype.kind == "f" and not np.isfinite(data).all():
            raise _Bad("nan_frame", "frame contains NaN or infinite pixels")
        if not data.dtype.isnative:  # pragma: no cover - big-endian hosts only
            data = data.astype(dtype)
        gap = 0 if self.last_seq is None else seq - self.last_seq - 1
        self.last_seq = seq
        return FrameMessage(seq=seq, timestamp=float(timestamp), data=data, gap=gap)


# --------------------------------------------------------------------------- encoding


def encode_json(obj: Any) -> bytes:
    """Strict JSON (UTF-8) of ``obj``; numpy values converted, NaN and infinities as null."""
    return json.dumps(jsonable(obj), allow_nan=False, separators=(",", ":")).encode()


def encode_start(
    shape: tuple[int, int],
    dtype: str | np.dtype,
    pixel_size_nm: float | None = None,
    frame_interval_s: float | None = None,
    series: str | None = None,
    **meta: Any,
) -> list[bytes]:
    """Parts of a ``start`` message. ``meta`` adds JSON fields (e.g. ``microscope="..."``)."""
    header = {
        "type": "start",
        "version": PROTOCOL_VERSION,
        "shape": [int(shape[0]), int(shape[1])],
        "dtype": np.dtype(dtype).name,
        "pixel_size_nm": pixel_size_nm,
        "frame_interval_s": frame_interval_s,
        "series": series,
        **meta,
    }
    return [encode_json(header)]


def encode_frame(frame: np.ndarray, seq: int, timestamp: float) -> list:
    """Parts of a ``frame`` message: the header and the little-endian C-order pixel buffer.

    Parameters
    ----------
    frame : ndarray
        (H, W) image of a dtype in :data:`DTYPES`.
    seq : int
        Frame number, increasing within the series.
    timestamp : float
        Acquisition time, s.
    """
    frame = np.ascontiguousarray(frame, dtype=frame.dtype.newbyteorder("<"))
    header = {
        "type": "frame",
        "seq": int(seq),
        "timestamp": float(timestamp),
        "shape": [int(s) for s in frame.shape],
        "dtype": frame.dtype.name,
    }
    return [encode_json(header), memoryview(frame).cast("B")]


def encode_end(frames: int | None = None) -> list[bytes]:
    """Parts of an ``end`` message; ``frames`` is the number of frames sent, if known."""
    return [encode_json({"type": "end", "version": PROTOCOL_VERSION, "frames": frames})]


def encode_pub(topic: str, payload: Any) -> list[bytes]:
    """Parts of a published result: ``[topic, JSON]``."""
    return [topic.encode(), encode_json(payload)]


def decode_pub(parts: Sequence[bytes]) -> tuple[str, dict]:
    """Inverse of :func:`encode_pub`: ``(topic, payload)``."""
    return bytes(parts[0]).decode(), json.loads(bytes(parts[1]))
