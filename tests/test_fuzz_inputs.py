"""Property-based fuzzing of what users and peers hand the service: control commands, object
ids, boxes files, settings (overrides and YAML files), series names and multipart messages.

Each property says what must hold for *any* input: a result or one clear refusal, never an
exception. The frame protocol's own fuzzing is in test_stream_protocol.py. Runs in well under
a minute (bench/fuzz_service.py runs much longer campaigns against a live service).
"""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samem.errors import SamemError
from samem.stream.backpressure import POLICIES
from samem.stream.control import (
    COMMANDS,
    MAX_OBJECT_ID,
    Command,
    load_boxes_file,
    parse_command,
    parse_object_id,
)
from samem.stream.protocol import IngestParser, Limits, Rejected, SeriesStart, series_name_problem
from samem.stream.settings import load_settings

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=6,
)
id_like = (
    st.integers(-5, 70000)
    | st.text(alphabet="0123456789+- _٤²１", max_size=7)
    | st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True)
    | json_values
)
box_like = st.lists(st.floats() | st.integers(-10, 300) | json_values, max_size=5) | json_values


def _check_refusal(text: str) -> None:
    assert isinstance(text, str) and text and "\n" not in text and "Traceback" not in text


@FAST
@given(raw=st.binary(max_size=200))
def test_control_parser_never_raises_on_bytes(raw):
    r = parse_command(raw)
    if isinstance(r, str):
        _check_refusal(r)
    else:
        assert isinstance(r, Command) and r.cmd in COMMANDS


@FAST
@given(
    cmd=st.sampled_from([*COMMANDS, "explode"]) | json_values,
    boxes=st.dictionaries(st.text(max_size=7) | st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True), box_like)
    | json_values,
    ids=st.lists(id_like, max_size=5) | json_values,
    extra=st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)
def test_control_commands_are_valid_or_refused(cmd, boxes, ids, extra):
    obj = {"cmd": cmd, "boxes": boxes, "ids": ids, **extra}
    for drop in ({"ids"}, {"boxes"}, set()):
        r = parse_command(json.dumps({k: v for k, v in obj.items() if k not in drop}).encode())
        if isinstance(r, str):
            _check_refusal(r)
            continue
        assert r.cmd in COMMANDS
        for oid, (x0, y0, x1, y1) in r.boxes.items():
            assert type(oid) is int and 1 <= oid <= MAX_OBJECT_ID and x1 > x0 and y1 > y0
        assert all(type(i) is int and 1 <= i <= MAX_OBJECT_ID for i in r.ids)
        assert len(set(r.ids)) == len(r.ids)


@FAST
@given(value=id_like)
def test_object_ids_have_one_spelling(value):
    oid = parse_object_id(value)
    if oid is None:
        return
    assert type(oid) is int and 1 <= oid <= MAX_OBJECT_ID
    if isinstance(value, str):  # only the canonical ASCII spelling of the number
        assert re.fullmatch(r"[1-9][0-9]*", value) and str(oid) == value
    else:
        assert value == oid and not isinstance(value, bool)


@FAST
@given(text=st.text(max_size=200) | json_values.map(json.dumps))
def test_boxes_file_loads_or_is_one_clear_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("boxes") / "b.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        frame, boxes = load_boxes_file(path)
    except SamemError as exc:
        _check_refusal(str(exc))
        return
    assert type(frame) is int and frame >= 0 and boxes
    assert all(1 <= k <= MAX_OBJECT_ID and b[2] > b[0] and b[3] > b[1] for k, b in boxes.items())


SETTING_KEYS = [
    "ingest.queue_frames",
    "ingest.policy",
    "ingest.max_frame_bytes",
    "ingest.hard_limit_factor",
    "prompts.max_per_prompt",
    "prompts.max_objects",
    "recording.flush_every",
    "recording.compression",
    "stats.every_frames",
    "sockets.ingest",
    "sockets.allow_remote",
    "sockets.insecure_remote",
    "autoprompt.polarity",
    "feedback.rate_margin",
    "defaults.pixel_size_nm",
    "nonsense.key",
    "ingest",
]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=st.dictionaries(st.sampled_from(SETTING_KEYS), json_values, max_size=4))
def test_settings_load_or_are_one_clear_error(overrides):
    try:
        cfg = load_settings(None, overrides)
    except SamemError as exc:
        _check_refusal(str(exc))
        return
    assert cfg["ingest"]["queue_frames"] >= 1 and cfg["ingest"]["policy"] in POLICIES
    assert 1 <= cfg["prompts"]["max_per_prompt"] <= 65535 and cfg["ingest"]["hard_limit_factor"] >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=120) | json_values.map(lambda v: json.dumps({"ingest": v})))
def test_settings_files_load_or_are_one_clear_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "serve.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path)
    except SamemError as exc:
        assert str(exc) and "Traceback" not in str(exc)


@FAST
@given(name=st.text(max_size=300) | json_values)
def test_series_names_accepted_only_if_a_recording_can_store_them(name):
    """Issue 23 (4) as a property: whatever the parser accepts, an HDF5 attribute can hold."""
    header = json.dumps({"type": "start", "shape": [4, 4], "dtype": "uint8", "series": name})
    msg = IngestParser().parse([header.encode()])
    assert isinstance(msg, SeriesStart | Rejected)
    assert isinstance(msg, SeriesStart) == (series_name_problem(name) is None)
    if isinstance(msg, SeriesStart) and msg.series is not None:
        with h5py.File(f"mem-{abs(hash(name))}.h5", "w", driver="core", backing_store=False) as f:
            f.attrs["source"] = msg.series
            assert f.attrs["source"] == msg.series


@FAST
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    claimed_extra=st.integers(0, 10),
)
def test_multipart_messages_refused_by_count_and_total(sizes, claimed_extra):
    limits = Limits(max_header_bytes=1000, max_frame_bytes=2000, max_frame_side=64)
    parts = [b"{" + b" " * max(s - 2, 0) + b"}" if i == 0 else b"\0" * s for i, s in enumerate(sizes)]
    n = len(parts) + claimed_extra
    total = sum(sizes) + 5000 * claimed_extra
    msg = IngestParser(limits).parse(parts[:2], n_parts=n, total_bytes=total)
    assert isinstance(msg, Rejected)  # no series is open: nothing here is acceptable
    if n > 2 or len(parts) < n:  # too many parts, or fewer kept than the message had
        assert msg.reason == "parts" and f"got {n} ({total} bytes" in msg.detail
    elif total > 3000:
        assert msg.reason == "oversized"


def test_properties_see_the_bugs_they_guard():
    """The strategies reach the inputs of issue 23 (a property that never meets them is void)."""
    assert parse_object_id("\u00b2") is None and parse_object_id("0041") is None
    assert series_name_problem("a\0b") is not None
    assert isinstance(parse_command(b'{"cmd":"remove","ids":["\\u00b2"]}'), str)
    np.testing.assert_equal(parse_command(b'{"cmd":"remove","ids":["41"]}').ids, [41])
