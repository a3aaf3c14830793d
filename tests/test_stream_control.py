"""Control commands: object ids, boxes, limits and the boxes file (issue 23)."""

from __future__ import annotations

import json

import pytest

from samem.errors import SamemError
from samem.stream.control import Command, load_boxes_file, parse_command, parse_object_id


def _cmd(obj) -> Command | str:
    return parse_command(json.dumps(obj, ensure_ascii=False).encode())


@pytest.mark.parametrize("good", [1, 41, 65535, "1", "41", "65535"])
def test_canonical_ids_accepted(good):
    assert parse_object_id(good) == int(good)
    assert _cmd({"cmd": "remove", "ids": [good]}).ids == [int(good)]
    assert _cmd({"cmd": "prompt", "boxes": {str(good): [0, 0, 2, 2]}}).boxes == {int(good): (0, 0, 2, 2)}


@pytest.mark.parametrize(
    "bad",
    [
        "\u00b2",
        "\u0664\u0662",
        "\uff14\uff12",
        "0041",
        "00",
        "0",
        "+5",
        "-5",
        " 5",
        "5 ",
        "1_000",
        "1e3",
        "65536",
        "9" * 40,
        "",
        0,
        -1,
        65536,
        2**80,
        True,
        1.0,
        None,
        [1],
        {"a": 1},
    ],
)
def test_non_canonical_or_non_ascii_ids_refused_with_a_reason(bad):
    """Issue 23 (5): '²' raised inside the parser, '٤٢' became 42, '0041' merged with '41'."""
    assert parse_object_id(bad) is None
    r = _cmd({"cmd": "remove", "ids": [bad]})
    assert isinstance(r, str) and "1..65535" in r and "ASCII" in r
    if isinstance(bad, str):
        r = _cmd({"cmd": "prompt", "boxes": {bad: [0, 0, 2, 2]}})
        assert isinstance(r, str) and repr(bad)[:30] in r and "ASCII" in r


def test_ids_that_would_merge_are_refused():
    raw = b'{"cmd": "prompt", "boxes": {"41": [0, 0, 2, 2], "41": [4, 4, 6, 6]}}'
    r = parse_command(raw)
    assert isinstance(r, str) and "'41'" in r and "twice" in r
    r = _cmd({"cmd": "remove", "ids": [41, "41"]})
    assert isinstance(r, str) and "41" in r and "twice" in r


def test_boxes_file_ids_follow_the_same_rules(tmp_path):
    p = tmp_path / "boxes.json"
    p.write_text('{"frame": 0, "boxes": {"0041": [0, 0, 2, 2]}}')
    with pytest.raises(SamemError, match="'0041'.*ASCII"):
        load_boxes_file(p)
    p.write_text('{"frame": 0, "boxes": {"7": [0, 0, 2, 2], "7": [1, 1, 3, 3]}}')
    with pytest.raises(SamemError, match="twice"):
        load_boxes_file(p)
    p.write_text('{"frame": 2, "boxes": {"7": [0, 0, 2, 2]}}')
    assert load_boxes_file(p) == (2, {7: (0.0, 0.0, 2.0, 2.0)})
