"""Values made safe for strict JSON, and the "a positive number or unknown" reading of metadata.

One helper for every JSON samem writes (the live protocol's messages, ``stats.json``, batch
summaries and markers): :func:`jsonable` turns numpy scalars and arrays into Python values and
NaN and infinities into ``null``, so that ``json.dumps(jsonable(x), allow_nan=False)`` never
writes ``NaN`` (which is not JSON). This module imports nothing of samem.
"""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["jsonable", "positive_or_none"]


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types, recursively.

    Mappings become dicts with string keys; lists, tuples and arrays become lists; numpy
    scalars become Python scalars; NaN and infinities become ``None``; paths become strings.
    Strings, booleans, integers, finite floats and ``None`` are kept; any other object becomes
    its ``str``.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    return str(obj)


def positive_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number > 0 (a pixel size, a frame interval), else ``None``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None
