"""Configuration: YAML files shipped in ``configs/`` and ``synthetic/`` or given by path, and
the one way samem turns them into settings.

Shipped files are addressed by name relative to their folder (``"serve"``,
``"train/default"``, ``"model/samem_tiny"``); anything else is taken as a path.

Settings are frozen dataclasses deriving from :class:`Settings` (serve, train, stats; the
tracker's :class:`samem.track.TrackerOptions` follows the same rules). :func:`load` fills one
from its defaults, YAML mappings and dotted overrides; :func:`parse_overrides` is the one
parser of command-line ``name=value`` items. Every unknown key and every value of the wrong
kind is named, on one line, in one :class:`SamemError`.

The synthetic-video parameters (:class:`samem.synthetic.SynthParams`, plain dataclasses with
dataclass groups) load the same way, with two options made for them: ``cast=True``
(:func:`convert`: numbers stored as the annotated type, ``[lo, hi]`` lists as tuples) and
files that inherit a parent file (:func:`load_yaml_layers`).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
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


def load_yaml_layers(
    name_or_path: str | Path,
    package: str = "samem.configs",
    *,
    parent_key: str = "base",
    not_inherited: Iterable[str] = (),
    what: str = "config",
) -> list[dict[str, Any]]:
    """A YAML file that may inherit a parent file, and its ancestors: the layers for :func:`load`,
    the farthest ancestor first and the file itself last.

    A file names its parent with ``parent_key`` (``base: medium``): a file next to it, else a
    path or a shipped name of ``package`` (:func:`resolve`); the parent may name its own. No
    layer keeps ``parent_key``; the keys ``not_inherited`` (those that describe a file itself,
    e.g. its ``name``) are dropped from the ancestors' layers. :func:`load` then merges the
    layers: each section key by key, any other value replaced by the later file's.

    Raises
    ------
    SamemError
        A file not found (naming the shipped files of ``package``), not valid YAML, or
        files that inherit each other in a loop (naming them in order).
    """
    not_inherited = tuple(not_inherited)
    layers: list[dict[str, Any]] = []
    seen: tuple[str, ...] = ()
    current: str | Path = name_or_path
    while True:
        try:
            path = resolve(current, package).resolve()
        except SamemError as exc:
            raise SamemError(f"{exc}; shipped {what}s: {', '.join(shipped_names(package))}") from None
        if str(path) in seen:
            raise SamemError(f"{what} inheritance loops: {' -> '.join(seen + (str(path),))}")
        seen += (str(path),)
        data = load_yaml(path)
        parent = data.pop(parent_key, None)
        if layers:  # an ancestor
            for key in not_inherited:
                data.pop(key, None)
        layers.append(data)
        if parent is None:
            return layers[::-1]
        sibling = path.parent / str(parent)
        current = sibling if sibling.is_file() else parent


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


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _is_section(tp: Any) -> bool:
    """A field holding a nested section: a :class:`Settings` subclass or any other dataclass."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def merge(cls: type, base: Mapping[str, Any], update: Mapping[str, Any] | None) -> dict[str, Any]:
    """``update`` over ``base`` (both nested like ``cls``): sections (fields annotated with a
    dataclass) merge key by key, a section given as ``null`` leaves it as it is, any other value
    replaces. Unknown keys are kept for :func:`build` to name."""
    out = dict(base)
    if not update:
        return out
    hints = _hints(cls)
    for key, value in update.items():
        tp = hints.get(key)
        if _is_section(tp) and key in hints:
            if value is None:
                continue
            old = out.get(key)
            if isinstance(value, Mapping) and isinstance(old, Mapping | type(None)):
                out[key] = merge(tp, old or {}, value)
                continue
        out[key] = value
    return out


def build(
    cls: type,
    values: Mapping[str, Any],
    what: str,
    *,
    context: str = "",
    non_negative: bool = False,
    cast: bool = False,
):
    """An instance of the settings dataclass ``cls`` from nested ``values`` (missing keys take
    the field defaults), each value checked against its field's annotation. Fields annotated
    with a dataclass are sections, built the same way from a nested mapping.

    Parameters
    ----------
    what
        Name of a setting in messages (``"serve setting"``, ``"key"``).
    context
        Prefix of every message (``"training config tiny: "``).
    non_negative
        Numbers must not be negative.
    cast
        Store numbers as the annotated type (see :func:`convert`).

    Raises
    ------
    SamemError
        One line naming every unknown key and every value of the wrong kind (joined by ``; ``),
        or the first value the dataclass's own checks refuse.
    """
    problems: list[str] = []
    out = _build(cls, values, "", what, non_negative, cast, problems)
    if problems:
        raise SamemError(context + "; ".join(problems))
    return out


def _build(cls, values, where, what, non_negative, cast, problems):
    hints = _hints(cls)
    known = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            problems.append(f"unknown {what} {path!r} (known here: {', '.join(known)})")
            continue
        tp = hints[key]
        if _is_section(tp):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{what} {path!r} must be a mapping, got {value!r}")
                continue
            kwargs[key] = _build(tp, value, path, what, non_negative, cast, problems)
            continue
        ok, converted, kind = convert(tp, value, cast=cast)
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


def _real(value: Any) -> bool:
    """A real number of any kind (``int``, ``float``, numpy scalars), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def convert(tp: Any, value: Any, *, cast: bool = False) -> tuple[bool, Any, str]:
    """``(ok, value as the field holds it, what the field wants)`` for a value of a field annotated
    ``tp`` (``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[...]``, ``dict``,
    ``dict[K, V]``, ``Any``): ints are not floats' only stand-ins, bools are not numbers, lists
    become tuples, a ``dict[K, V]`` (``V`` not ``Any``) has its keys and values checked as ``K``
    and ``V``.

    With ``cast`` a number is stored as the annotated type, so that a value reads the same
    whatever form it was written in (``50`` and ``50.0`` in YAML): any real number (numpy's too)
    in a ``float`` field becomes a ``float``, a whole one (``8``, ``8.0``) in an ``int`` field an
    ``int``, also inside tuples, ``dict[K, V]`` values and ``X | None``; a tuple field also takes
    any other sequence (a numpy array). Bools and text are never numbers.
    """
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
            ok, converted, kind = convert(arg, value, cast=cast)
            if ok:
                return True, converted, kind
            kinds.append(kind)
        if type(None) in args:
            kinds.append("null")
        return False, value, " or ".join(kinds)
    if tp is bool:
        return isinstance(value, bool), value, "true or false"
    if tp is int:
        if cast and _real(value):
            whole = isinstance(value, numbers.Integral) or float(value).is_integer()
            return whole, int(value) if whole else value, "a whole number"
        return isinstance(value, int) and not isinstance(value, bool), value, "a whole number"
    if tp is float:
        if cast and _real(value):
            return True, float(value), "a number"
        return _number(value), value, "a number"
    if tp is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        return isinstance(value, str), value, "a string"
    if tp in (dict, Mapping) or origin in (dict, Mapping, abc.Mapping):
        if not isinstance(value, Mapping):
            return False, value, "a mapping"
        if len(args) != 2 or args[1] is Any:
            return True, dict(value), "a mapping"
        kind = f"a mapping of {_kind(args[0])} to {_kind(args[1])}"
        out = {}
        for k, v in value.items():
            ok_key, key, _ = convert(args[0], k, cast=cast)
            ok_value, v, _ = convert(args[1], v, cast=cast)
            if not (ok_key and ok_value):
                return False, value, kind
            out[key] = v
        return True, out, kind
    if origin is tuple:
        variable = len(args) == 2 and args[1] is Ellipsis
        item = args[0] if variable else None
        kind = f"a list of {_kind(item)}" if variable else f"a list of {len(args)} {_kind(args[0])}"
        if variable and item is str and isinstance(value, str):
            value = [value]  # a lone path where a list of paths is wanted
        items = value
        if cast and isinstance(value, abc.Iterable) and not isinstance(value, str | bytes | Mapping):
            items = list(value)  # e.g. a numpy array
        if not isinstance(items, list | tuple):
            return False, value, kind
        if not variable and len(items) != len(args):
            return False, value, kind
        converted = []
        for i, v in enumerate(items):
            ok, c, _ = convert(item if variable else args[i], v, cast=cast)
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
    cast: bool = False,
):
    """The one loader: ``cls``'s defaults, then each mapping of ``layers`` (a shipped file, the
    user's file: see :func:`load_yaml` and :func:`load_yaml_layers`), then dotted ``overrides``
    (``{"ingest.policy": "block"}``, e.g. from :func:`parse_overrides`; ``None`` values are
    skipped, while a ``null`` in a layer sets it), merged by :func:`merge` and checked by
    :func:`build` (``cast``: numbers stored as the annotated type, see :func:`convert`)."""
    raw: dict[str, Any] = {}
    for layer in layers:
        raw = merge(cls, raw, layer)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            raw = merge(cls, raw, nest({dotted: value}))
    return build(cls, raw, what, context=context, non_negative=non_negative, cast=cast)
