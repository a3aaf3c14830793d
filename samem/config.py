"""Configuration: YAML files shipped in ``configs/`` and ``synthetic/`` or given by path, and
the one way samem turns them into settings.

Shipped files are addressed by name relative to their folder (``"serve"``,
``"train/default"``, ``"model/samem_tiny"``); anything else is taken as a path.

Settings are frozen dataclasses deriving from :class:`Settings` (serve, train, stats; the
tracker's :class:`samem.track.TrackerOptions` follows the same rules). :func:`load` fills one
from its defaults, YAML mappings and dotted overrides; :func:`parse_overrides` is the one
parser of command-line ``name=value`` items. Every unknown key and every value of the wrong
kind is named, on one line, in one :class:`SamemError`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
from collections import abc
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from samem.errors import SamemError

_PKG = Path(__file__).resolve().parent
# data package -> (folder inside an installed wheel, folder in the source tree)
_DATA = {"samem.configs": ("configs", "configs"), "samem.recipes": ("recipes", "synthetic")}


def data_dir(package: str = "samem.configs") -> Path:
    """Folder holding a shipped data package (wheel install or source checkout)."""
    inside, in_repo = _DATA[package]
    installed = _PKG / inside
    return installed if installed.is_dir() else _PKG.parent / in_repo


def _shipped(package: str, name: str) -> Path | None:
    root = data_dir(package)
    for candidate in (name, f"{name}.yaml"):
        p = root / candidate
        if p.is_file():
            return p
    return None


def resolve(name_or_path: str | Path, package: str = "samem.configs") -> Path:
    """Return the file for a shipped config name or an explicit path.

    Raises
    ------
    SamemError
        If neither a shipped config of that name nor a file at that path exists.
    """
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = _shipped(package, str(name_or_path))
    if shipped is not None:
        return shipped
    raise SamemError(f"config {str(name_or_path)!r} not found (neither a file nor a shipped {package} name)")


def load_yaml(name_or_path: str | Path, package: str = "samem.configs") -> dict[str, Any]:
    """Read a YAML mapping from a shipped config name or a path, with a clear error if malformed."""
    path = resolve(name_or_path, package)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SamemError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SamemError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def shipped_names(package: str = "samem.configs", suffix: str = ".yaml") -> list[str]:
    """Names of the shipped YAML files in a data package (without suffix), sorted."""
    root = data_dir(package)
    return sorted(str(p.relative_to(root))[: -len(suffix)] for p in root.rglob(f"*{suffix}"))


# ---------------------------------------------------------------------------- typed settings
# samem's one configuration mechanism: a frozen dataclass per settings family (serve, train,
# stats; TrackerOptions for the tracker) deriving from ``Settings``, filled by ``load`` from
# defaults, a YAML file and dotted ``name=value`` overrides, every value checked against the
# field's annotation. Cross-field rules live in the dataclass's ``__post_init__``.

_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_value(text: str) -> Any:
    """A command-line value read as YAML, with ``1e-4`` read as a number (YAML 1.1 wants ``1.0e-4``).

    Text YAML cannot read stays text.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    return value


def parse_overrides(
    items: Iterable[str] | None, what: str = "override", example: str = "a.b=1"
) -> dict[str, Any]:
    """``["name=value", ...]`` (values read by :func:`parse_value`) as ``{name: value}``, in order.

    Names may be dotted (``optim.lr=1e-4``). Checking names and values is the loader's job
    (:func:`load`); this only splits.

    Raises
    ------
    SamemError
        An item without ``=`` or with an empty name (one line naming it).
    """
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip():
            raise SamemError(f"{what} {item!r} is not of the form name=value (e.g. {example})")
        out[name.strip()] = parse_value(text)
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"ingest.policy": "block"}`` as ``{"ingest": {"policy": "block"}}`` (later keys win)."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, last = str(dotted).split(".")
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[last] = value
    return out


class Settings(Mapping):
    """Base of samem's frozen settings dataclasses (:class:`samem.stream.settings.ServeSettings`,
    :class:`samem.train.config.TrainConfig`, :class:`samem.stats.summary.StatsConfig`).

    Settings are read as attributes (``settings.ingest.policy``). For code not migrated yet they
    also read as a mapping (``settings["ingest"]["policy"]``, ``dict(settings)``), never written.
    :meth:`to_dict` gives plain nested dicts and lists (YAML and JSON ready).
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in _field_names(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_field_names(type(self)))

    def __len__(self) -> int:
        return len(_field_names(type(self)))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested ``dict``/``list`` copy, keys in declaration order."""
        return {name: _plain(getattr(self, name)) for name in _field_names(type(self))}

    def replace(self, **changes: Any):
        """A copy with some fields changed (checked again by the dataclass)."""
        return dataclasses.replace(self, **changes)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Settings)


def merge(cls: type, base: Mapping[str, Any], update: Mapping[str, Any] | None) -> dict[str, Any]:
    """``update`` over ``base`` (both nested like ``cls``): sections merge key by key, a
    section given as ``null`` leaves it as it is, any other value replaces. Unknown keys are
    kept for :func:`build` to name."""
    out = dict(base)
    if not update:
        return out
    hints = typing.get_type_hints(cls)
    for key, value in update.items():
        tp = hints.get(key)
        if _is_settings(tp) and key in hints:
            if value is None:
                continue
            old = out.get(key)
            if isinstance(value, Mapping) and isinstance(old, Mapping | type(None)):
                out[key] = merge(tp, old or {}, value)
                continue
        out[key] = value
    return out


def build(cls: type, values: Mapping[str, Any], what: str, *, context: str = "", non_negative: bool = False):
    """An instance of the settings dataclass ``cls`` from nested ``values`` (missing keys take
    the field defaults), each value checked against its field's annotation.

    Parameters
    ----------
    what
        Name of a setting in messages (``"serve setting"``, ``"key"``).
    context
        Prefix of every message (``"training config tiny: "``).
    non_negative
        Numbers must not be negative.

    Raises
    ------
    SamemError
        One line naming every unknown key and every value of the wrong kind (joined by ``; ``),
        or the first value the dataclass's own checks refuse.
    """
    problems: list[str] = []
    out = _build(cls, values, "", what, non_negative, problems)
    if problems:
        raise SamemError(context + "; ".join(problems))
    return out


def _build(cls, values, where, what, non_negative, problems):
    hints = typing.get_type_hints(cls)
    known = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            problems.append(f"unknown {what} {path!r} (known here: {', '.join(known)})")
            continue
        tp = hints[key]
        if _is_settings(tp):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{what} {path!r} must be a mapping, got {value!r}")
                continue
            kwargs[key] = _build(tp, value, path, what, non_negative, problems)
            continue
        ok, converted, kind = convert(tp, value)
        if not ok:
            problems.append(f"{what} {path!r} must be {kind}, got {value!r}")
        elif non_negative and _number(converted) and converted < 0:
            problems.append(f"{what} {path!r} must not be negative, got {value!r}")
        else:
            kwargs[key] = converted
    if problems:
        return None
    return cls(**kwargs)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def convert(tp: Any, value: Any) -> tuple[bool, Any, str]:
    """``(ok, value as the field holds it, what the field wants)`` for a value of a field annotated
    ``tp`` (``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[...]``, ``dict``, ``Any``):
    ints are not floats' only stand-ins, bools are not numbers, lists become tuples."""
    if tp is Any:
        return True, value, "anything"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        kinds = []
        if value is None and type(None) in args:
            return True, None, "null"
        for arg in args:
            if arg is type(None):
                continue
            ok, converted, kind = convert(arg, value)
            if ok:
                return True, converted, kind
            kinds.append(kind)
        if type(None) in args:
            kinds.append("null")
        return False, value, " or ".join(kinds)
    if tp is bool:
        return isinstance(value, bool), value, "true or false"
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value, "a whole number"
    if tp is float:
        return _number(value), value, "a number"
    if tp is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        return isinstance(value, str), value, "a string"
    if tp in (dict, Mapping) or origin in (dict, Mapping, abc.Mapping):
        if not isinstance(value, Mapping):
            return False, value, "a mapping"
        return True, dict(value), "a mapping"
    if origin is tuple:
        variable = len(args) == 2 and args[1] is Ellipsis
        item = args[0] if variable else None
        kind = f"a list of {_kind(item)}" if variable else f"a list of {len(args)} {_kind(args[0])}"
        if variable and item is str and isinstance(value, str):
            value = [value]  # a lone path where a list of paths is wanted
        if not isinstance(value, list | tuple):
            return False, value, kind
        if not variable and len(value) != len(args):
            return False, value, kind
        converted = []
        for i, v in enumerate(value):
            ok, c, _ = convert(item if variable else args[i], v)
            if not ok:
                return False, value, kind
            converted.append(c)
        return True, tuple(converted), kind
    raise TypeError(f"samem.config cannot check fields annotated {tp!r}")  # a programming error


def _kind(tp: Any) -> str:
    return {bool: "true/false", int: "whole numbers", float: "numbers", str: "strings"}.get(tp, "values")


def load(
    cls: type,
    layers: Iterable[Mapping[str, Any] | None] = (),
    overrides: Mapping[str, Any] | None = None,
    what: str = "setting",
    *,
    context: str = "",
    non_negative: bool = False,
):
    """The one loader: ``cls``'s defaults, then each mapping of ``layers`` (a shipped file, the
    user's file: see :func:`load_yaml`), then dotted ``overrides`` (``{"ingest.policy": "block"}``,
    e.g. from :func:`parse_overrides`; ``None`` values are skipped), checked by :func:`build`."""
    raw: dict[str, Any] = {}
    for layer in layers:
        raw = merge(cls, raw, layer)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            raw = merge(cls, raw, nest({dotted: value}))
    return build(cls, raw, what, context=context, non_negative=non_negative)
