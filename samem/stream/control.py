"""Control commands of ``samem serve``: JSON objects with a ``"cmd"`` key, validated.

=========== ================================================ ================================
cmd         fields                                           effect
=========== ================================================ ================================
prompt      ``boxes``: ``{"<id>": [x0, y0, x1, y1], ...}``   add or correct objects (px) on
                                                             the next processed frame
remove      ``ids``: ``[<id>, ...]``                         stop tracking these objects
reset       --                                               forget all objects and tracks
record      ``action``: ``"start"`` or ``"stop"``            stop writing the recording (the
                                                             file is closed) or start a new
                                                             one (needs ``--record FILE``)
status      --                                               counters, lag, objects
shutdown    --                                               stop gracefully
=========== ================================================ ================================

:func:`parse_command` returns a :class:`Command` or an error string; it never raises. Checks
that need the stream (ids tracked, boxes inside the frame) are done by the session, which
replies with an error and leaves the service unaffected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.errors import SamemError

COMMANDS = ("prompt", "remove", "reset", "status", "shutdown", "record")
RECORD_ACTIONS = ("start", "stop")
MAX_COMMAND_BYTES = 1 << 20
MAX_OBJECT_ID = 65535  # object ids are label values in the uint16 /labels dataset


@dataclass(frozen=True)
class Command:
    """A validated control command.

    Attributes
    ----------
    cmd : str
        One of :data:`COMMANDS`.
    boxes : dict
        ``{id: (x0, y0, x1, y1)}`` px, for ``prompt``.
    ids : list of int
        Object ids, for ``remove``.
    action : str or None
        ``"start"`` or ``"stop"``, for ``record``.
    """

    cmd: str
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    action: str | None = None


#: the one accepted spelling of an id given as a string: ASCII digits, no sign, no leading zero
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,4}")
ID_RULE = (
    f"an integer 1..{MAX_OBJECT_ID} (a JSON number, or a string of ASCII digits "
    "without sign or leading zeros)"
)


def parse_object_id(value: Any) -> int | None:
    """An object id (1..65535) from a JSON integer or its canonical decimal string, else None.

    Strings must be ASCII digits without sign, spaces or leading zeros (``"41"``, not
    ``"0041"``, ``"+41"`` or ``"٤١"``), so that two spellings never name the same object.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _CANONICAL_ID.fullmatch(value) is None:
            return None
        value = int(value)
    if isinstance(value, int) and 1 <= value <= MAX_OBJECT_ID:
        return value
    return None


def _bad_id(value: Any, where: str) -> str:
    return f"{where} {value!r:.40} is not a valid object id: ids are {ID_RULE}"


def parse_boxes(boxes: Any) -> dict[int, tuple[float, float, float, float]] | str:
    """``{"<id>": [x0, y0, x1, y1]}`` to ``{id: box}``, or an error string.

    Boxes need x1 > x0 and y1 > y0 (px); whether they lie inside the frame is checked later.
    """
    if not isinstance(boxes, dict) or not boxes:
        return 'boxes must be a non-empty object {"<id>": [x0, y0, x1, y1], ...}'
    out = {}
    for key, box in boxes.items():
        oid = parse_object_id(key)
        if oid is None:
            return _bad_id(key, "object id")
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box
            )
        ):
            return f"box of object {oid} must be [x0, y0, x1, y1] finite numbers, got {box!r:.60}"
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            return f"box of object {oid} must have x1 > x0 and y1 > y0, got {box}"
        out[oid] = (x0, y0, x1, y1)
    return out


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing a key given twice (JSON would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r:.40} given twice in one object")
        out[key] = value
    return out


def loads_strict(text: str) -> Any:
    """JSON without NaN/Infinity and without repeated keys (:class:`ValueError` otherwise)."""
    return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_command(raw: bytes) -> Command | str:
    """Validate one request; returns a :class:`Command` or a one-line error message."""
    if len(raw) > MAX_COMMAND_BYTES:
        return f"command larger than {MAX_COMMAND_BYTES} bytes"
    try:
        obj = loads_strict(raw.decode("utf-8"))
    except _DuplicateKey as exc:
        return f"command is ambiguous: {exc}"
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"command is not UTF-8 JSON ({str(exc)[:80]})"
    if not isinstance(obj, dict):
        return "command must be a JSON object with a 'cmd' key"
    cmd = obj.get("cmd")
    if cmd not in COMMANDS:
        return f"unknown cmd {cmd!r:.40}; known: {', '.join(COMMANDS)}"
    allowed = {"prompt": {"boxes"}, "remove": {"ids"}, "record": {"action"}}.get(cmd, set()) | {"cmd"}
    extra = set(obj) - allowed
    if extra:
        return f"{cmd}: unexpected field(s) {', '.join(sorted(map(repr, extra)))[:80]}"
    if cmd == "prompt":
        boxes = parse_boxes(obj.get("boxes"))
        return boxes if isinstance(boxes, str) else Command(cmd, boxes=boxes)
    if cmd == "remove":
        ids = obj.get("ids")
        if not isinstance(ids, list) or not ids:
            return "remove needs ids: a non-empty list of object ids"
        parsed: list[int] = []
        for i in ids:
            oid = parse_object_id(i)
            if oid is None:
                return "remove: " + _bad_id(i, "id")
            if oid in parsed:
                return f"remove: id {oid} listed twice"
            parsed.append(oid)
        return Command(cmd, ids=parsed)
    if cmd == "record":
        action = obj.get("action")
        if action not in RECORD_ACTIONS:
            return f"record needs action: one of {', '.join(map(repr, RECORD_ACTIONS))}, got {action!r:.40}"
        return Command(cmd, action=action)
    return Command(cmd)


def reply(ok: bool = True, **fields: Any) -> dict[str, Any]:
    """A reply object: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``."""
    return {"ok": ok, **fields}


def load_boxes_file(path: str | Path) -> tuple[int, dict[int, tuple[float, float, float, float]]]:
    """Read a boxes file ``{"frame": 0, "boxes": {"1": [x0, y0, x1, y1], ...}}`` (px).

    Returns
    -------
    frame, boxes : int, dict
        The frame the boxes were drawn on and ``{id: box}``.

    Raises
    ------
    SamemError
        Missing file, invalid JSON or invalid boxes.
    """
    p = Path(path)
    try:
        obj = loads_strict(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SamemError(f"{p}: cannot read boxes file ({exc.strerror or exc})") from None
    except _DuplicateKey as exc:
        raise SamemError(f"{p}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SamemError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict) or "boxes" not in obj:
        raise SamemError(f'{p}: expected {{"frame": 0, "boxes": {{"1": [x0, y0, x1, y1], ...}}}}')
    frame = obj.get("frame", 0)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise SamemError(f"{p}: frame must be a non-negative integer, got {frame!r}")
    boxes = parse_boxes(obj["boxes"])
    if isinstance(boxes, str):
        raise SamemError(f"{p}: {boxes}")
    return frame, boxes
