"""Ingest protocol: round trips, every rejection reason, and fuzzing (thousands of cases)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samem.stream.protocol import (
    DTYPES,
    REASONS,
    FrameMessage,
    IngestParser,
    Limits,
    Rejected,
    SeriesEnd,
    SeriesStart,
    decode_pub,
    encode_end,
    encode_frame,
    encode_json,
    encode_pub,
    encode_start,
)

SMALL = Limits(max_header_bytes=4096, max_frame_bytes=64 * 64 * 4, max_frame_side=64)


def _open(shape=(4, 5), dtype="uint16", limits=SMALL):
    p = IngestParser(limits)
    msg = p.parse(encode_start(shape, dtype, pixel_size_nm=0.5, frame_interval_s=0.1, series="s1", user="x"))
    assert isinstance(msg, SeriesStart)
    return p


def _hdr(**fields):
    return json.dumps(fields).encode()


def test_round_trip_series():
    p = IngestParser()
    start = p.parse(
        encode_start((3, 4), np.uint16, pixel_size_nm=0.7, frame_interval_s=0.02, series="a", kv=80)
    )
    assert start.shape == (3, 4) and start.dtype == np.uint16
    assert start.pixel_size_nm == 0.7 and start.frame_interval_s == 0.02
    assert start.series == "a" and start.meta == {"kv": 80}
    frames = [np.arange(12, dtype=np.uint16).reshape(3, 4) * (i + 1) for i in range(3)]
    for seq, f in zip([10, 11, 15], frames):
        msg = p.parse(encode_frame(f, seq, 100.0 + seq))
        assert isinstance(msg, FrameMessage)
        np.testing.assert_array_equal(msg.data, f)
        assert msg.timestamp == 100.0 + seq
    assert msg.gap == 3  # 12, 13, 14 missing
    assert isinstance(p.parse(encode_end(3)), SeriesEnd)
    assert p.series is None


def test_big_endian_input_is_sent_little_endian():
    p = _open(dtype="uint16")
    f = np.arange(20, dtype=">u2").reshape(4, 5)
    msg = p.parse(encode_frame(f, 0, 0.0))
    np.testing.assert_array_equal(msg.data, f.astype(np.uint16))


FRAME = np.ones((4, 5), np.uint16)


@pytest.mark.parametrize(
    "parts, reason",
    [
        ([], "parts"),
        ([b"{}", b"", b""], "parts"),
        ([b"\xff\xfe"], "not_json"),
        ([b"{'type': 'start'}"], "not_json"),
        ([b"[1, 2]"], "not_json"),
        ([b'{"type": "start", "shape": [4, 5], "dtype": "uint16", "pixel_size_nm": NaN}'], "not_json"),
        ([b" " * 5000], "oversized"),
        ([_hdr(type="start", shape=[4, 5], dtype="uint16"), b"x"], "parts"),
        ([_hdr(type="hello")], "bad_header"),
        ([_hdr(type="start", shape=[4], dtype="uint16")], "bad_header"),
        ([_hdr(type="start", shape=[4, 5.0], dtype="uint16")], "bad_header"),
        ([_hdr(type="start", shape=[4, True], dtype="uint16")], "bad_header"),
        ([_hdr(type="start", shape=[0, 5], dtype="uint16")], "oversized"),
        ([_hdr(type="start", shape=[65, 5], dtype="uint16")], "oversized"),
        ([_hdr(type="start", shape=[64, 64], dtype="float64", extra="x" * 10)], "oversized"),
        ([_hdr(type="start", shape=[4, 5], dtype="complex64")], "bad_dtype"),
        ([_hdr(type="start", shape=[4, 5], dtype="object")], "bad_dtype"),
        ([_hdr(type="start", shape=[4, 5], dtype="uint16", pixel_size_nm=-1)], "bad_header"),
        ([_hdr(type="start", shape=[4, 5], dtype="uint16", version=2)], "bad_header"),
        ([_hdr(type="start", shape=[4, 5], dtype="uint16", series=7)], "bad_header"),
        ([_hdr(type="end", frames=-1)], "bad_header"),
        (
            [_hdr(type="frame", seq=-1, timestamp=0, shape=[4, 5], dtype="uint16"), FRAME.tobytes()],
            "bad_header",
        ),
        (
            [_hdr(type="frame", seq=1.5, timestamp=0, shape=[4, 5], dtype="uint16"), FRAME.tobytes()],
            "bad_header",
        ),
        (
            [_hdr(type="frame", seq=2**63, timestamp=0, shape=[4, 5], dtype="uint16"), FRAME.tobytes()],
            "bad_header",
        ),
        (
            [_hdr(type="frame", seq=1, timestamp="now", shape=[4, 5], dtype="uint16"), FRAME.tobytes()],
            "bad_header",
        ),
        ([_hdr(type="frame", seq=1, timestamp=0, shape=[4, 5], dtype="uint16")], "parts"),
        (
            [
                _hdr(type="frame", seq=1, timestamp=0, shape=[4, 6], dtype="uint16"),
                np.ones((4, 6), "u2").tobytes(),
            ],
            "shape_changed",
        ),
        (
            [
                _hdr(type="frame", seq=1, timestamp=0, shape=[4, 5], dtype="uint8"),
                np.ones((4, 5), "u1").tobytes(),
            ],
            "shape_changed",
        ),
        (
            [_hdr(type="frame", seq=1, timestamp=0, shape=[4, 5], dtype="uint16"), FRAME.tobytes()[:-1]],
            "byte_count",
        ),
        (
            [_hdr(type="frame", seq=1, timestamp=0, shape=[4, 5], dtype="uint16"), b"\0" * (64 * 64 * 4 + 1)],
            "oversized",
        ),
    ],
)
def test_each_rejection_reason(parts, reason):
    p = _open()
    before = (p.series, p.last_seq)
    msg = p.parse(parts)
    assert isinstance(msg, Rejected), msg
    assert msg.reason == reason, msg
    assert msg.reason in REASONS
    assert (p.series, p.last_seq) == before  # a rejected message never changes the state


def test_seq_rules_and_nan():
    p = _open(dtype="float32")
    f = np.zeros((4, 5), np.float32)
    assert isinstance(p.parse(encode_frame(f, 5, 0.0)), FrameMessage)
    dup = p.parse(encode_frame(f, 5, 0.0))
    assert dup.reason == "duplicate_seq" and dup.seq == 5
    assert p.parse(encode_frame(f, 4, 0.0)).reason == "out_of_order_seq"
    bad = f.copy()
    bad[1, 2] = np.nan
    assert p.parse(encode_frame(bad, 6, 0.0)).reason == "nan_frame"
    bad[1, 2] = np.inf
    assert p.parse(encode_frame(bad, 6, 0.0)).reason == "nan_frame"
    assert isinstance(p.parse(encode_frame(f, 6, 0.0)), FrameMessage)  # seq 6 still free after the rejections


def test_no_series_before_start_and_after_end():
    p = IngestParser(SMALL)
    assert p.parse(encode_frame(FRAME, 0, 0.0)).reason == "no_series"
    assert p.parse(encode_end()).reason == "no_series"
    p = _open()
    assert isinstance(p.parse(encode_end()), SeriesEnd)
    assert p.parse(encode_frame(FRAME, 0, 0.0)).reason == "no_series"


def test_new_start_replaces_series_and_resets_seq():
    p = _open()
    p.parse(encode_frame(FRAME, 9, 0.0))
    assert isinstance(p.parse(encode_start((2, 2), "uint8")), SeriesStart)
    msg = p.parse(encode_frame(np.zeros((2, 2), np.uint8), 0, 0.0))
    assert isinstance(msg, FrameMessage) and msg.gap == 0


def test_pub_json_is_strict():
    parts = encode_pub(
        "frame", {"x": np.float32(1.5), "nan": float("nan"), "a": np.arange(3), "i": np.int64(7)}
    )
    topic, payload = decode_pub(parts)
    assert topic == "frame"
    assert payload == {"x": 1.5, "nan": None, "a": [0, 1, 2], "i": 7}
    assert b"NaN" not in encode_json({"v": [float("inf")]})


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=4,
)

header_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["start", "frame", "end", "other"]) | json_values,
        "seq": st.integers(-3, 2**64) | json_values,
        "timestamp": st.floats() | json_values,
        "shape": st.lists(st.integers(-2, 70), min_size=0, max_size=3) | json_values,
        "dtype": st.sampled_from([*DTYPES, "int8", "bool", "<u2", ""]) | json_values,
        "pixel_size_nm": st.floats() | json_values,
        "frame_interval_s": st.floats() | json_values,
        "frames": st.integers(-2, 10) | json_values,
        "version": st.integers(0, 2) | json_values,
        "series": json_values,
    },
)


def _as_header(fields: dict) -> bytes:
    return json.dumps(
        fields, allow_nan=True
    ).encode()  # NaN allowed here on purpose: the parser must reject it


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.binary(max_size=300), max_size=4))
def test_fuzz_raw_bytes_never_raise(parts):
    for p in (IngestParser(SMALL), _open()):
        msg = p.parse(parts)
        assert isinstance(msg, SeriesStart | FrameMessage | SeriesEnd | Rejected)
        if isinstance(msg, Rejected):
            assert msg.reason in REASONS


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=header_fields, payload=st.one_of(st.none(), st.binary(max_size=200)), opened=st.booleans())
def test_fuzz_structured_headers_never_raise(fields, payload, opened):
    p = _open() if opened else IngestParser(SMALL)
    before = (p.series, p.last_seq)
    parts = [_as_header(fields)] + ([] if payload is None else [payload])
    msg = p.parse(parts)
    if isinstance(msg, Rejected):
        assert msg.reason in REASONS
        assert (p.series, p.last_seq) == before
    elif isinstance(msg, FrameMessage):
        assert msg.data.shape == p.series.shape and msg.data.dtype == p.series.dtype
        assert np.all(np.isfinite(msg.data)) if msg.data.dtype.kind == "f" else True
        assert p.last_seq == msg.seq


@st.composite
def streams(draw):
    """A series of valid frames ("ok", "skip" = after a seq gap) mixed with corrupted ones."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    kinds = ["ok"] + draw(
        st.lists(
            st.sampled_from(["ok", "skip", "dup", "back", "trunc", "nan", "shape", "garbage"]), max_size=25
        )
    )
    return shape, dtype, kinds


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), data=st.data())
def test_fuzz_streams_keep_invariants(stream, data):
    shape, dtype, kinds = stream
    p = IngestParser(SMALL)
    assert isinstance(p.parse(encode_start(shape, dtype)), SeriesStart)
    seq = data.draw(st.integers(0, 100))
    last, sent_valid, accepted = None, [], []
    n = shape[0] * shape[1]
    for kind in kinds:
        frame = np.array(
            data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n)), dtype=dtype
        ).reshape(shape)
        if kind == "skip":
            seq += data.draw(st.integers(1, 3))
        if kind in ("ok", "skip"):
            parts = encode_frame(frame, seq, float(seq))
            sent_valid.append(seq)
        elif kind == "dup":
            parts = encode_frame(frame, last, 0.0)
        elif kind == "back":
            parts = encode_frame(frame, last - 1, 0.0)
        elif kind == "trunc":
            header, payload = encode_frame(frame, seq, 0.0)
            parts = [header, bytes(payload)[:-1]]
        elif kind == "nan":
            bad = frame.astype(np.float32 if dtype != np.float32 else np.float64)
            if dtype.kind == "f":
                bad = frame.copy()
            bad.flat[0] = np.nan
            parts = encode_frame(bad, seq, 0.0)  # NaN (float) or a dtype change (integer series)
        elif kind == "shape":
            parts = encode_frame(np.zeros((shape[0] + 1, shape[1]), dtype), seq, 0.0)
        else:
            parts = [data.draw(st.binary(max_size=40)), b"\0"]
        msg = p.parse(parts)
        if isinstance(msg, FrameMessage):
            np.testing.assert_array_equal(msg.data, frame)
            accepted.append(msg.seq)
            last = msg.seq
            seq += 1
        else:
            assert kind not in ("ok", "skip"), (kind, msg)
            assert msg.reason in REASONS
    assert accepted == sent_valid  # every valid frame and nothing else, in order
    assert all(b > a for a, b in zip(accepted, accepted[1:]))


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("a\u0000b", "U+0000 at position 1"),
        ("\x1b[31mred", "U+001B at position 0"),
        ("tab\there", "U+0009"),
        ("c1\u0085", "U+0085"),
        ("half\ud800", "unpaired surrogate U+D800"),
        ("x" * 257, "at most 256 characters"),
        (17, "string or null"),
    ],
)
def test_series_names_validated_at_the_boundary(name, fragment):
    """Issue 23 (4): a NUL in the name made the recording fail silently (HDF5 attributes)."""
    header = json.dumps({"type": "start", "shape": [4, 5], "dtype": "uint16", "series": name}).encode()
    msg = IngestParser(SMALL).parse([header])
    assert isinstance(msg, Rejected) and msg.reason == "bad_header" and fragment in msg.detail


@pytest.mark.parametrize("name", [None, "", "run-17", "Probe ü 試料 🔬", "x" * 256])
def test_good_series_names_accepted(name):
    msg = IngestParser(SMALL).parse(encode_start((4, 5), "uint16", series=name))
    assert isinstance(msg, SeriesStart) and msg.series == name
