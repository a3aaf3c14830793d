"""Service settings: ``configs/serve.yaml`` merged with a user file and command-line overrides.

The shipped file holds every key with its default; a user file may set any subset. Unknown
keys and values of the wrong type are :class:`SamemError` (a typo must not be ignored
silently). Addresses are checked here too: binding anything but loopback needs
``sockets.allow_remote: true`` and CurveZMQ keys, or ``sockets.insecure_remote: true``.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samem.config import load_yaml
from samem.errors import SamemError
from samem.stream.backpressure import POLICIES

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _merge(base: dict, update: Mapping, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            raise SamemError(f"unknown serve setting {path!r} (known here: {', '.join(sorted(base))})")
        default = base[key]
        if isinstance(default, dict):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise SamemError(f"serve setting {path!r} must be a mapping, got {value!r}")
            out[key] = _merge(default, value, path)
        elif value is None or default is None:
            out[key] = value
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise SamemError(f"serve setting {path!r} must be true or false, got {value!r}")
            out[key] = value
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SamemError(f"serve setting {path!r} must be a number, got {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise SamemError(f"serve setting {path!r} must be an integer, got {value!r}")
            if value < 0:
                raise SamemError(f"serve setting {path!r} must not be negative, got {value!r}")
            out[key] = value
        elif not isinstance(value, type(default)):
            raise SamemError(f"serve setting {path!r} must be a {type(default).__name__}, got {value!r}")
        else:
            out[key] = value
    return out


def address_host(address: str) -> str | None:
    """Host part of a ``tcp://host:port`` address; None for ipc/inproc transports."""
    m = re.fullmatch(r"tcp://(.+):(\d+|\*)", address)
    if m is None:
        if address.startswith(("ipc://", "inproc://")):
            return None
        raise SamemError(f"address {address!r} is not tcp://HOST:PORT, ipc://PATH or inproc://NAME")
    return m.group(1)


def is_loopback(address: str) -> bool:
    """True for loopback tcp addresses and for the local ipc/inproc transports."""
    host = address_host(address)
    return host is None or host in _LOOPBACK


INSECURE_FLAG = "--insecure-remote-anyone-can-connect"


def check_sockets(sockets: Mapping[str, Any]) -> None:
    """Refuse non-loopback binds unless ``allow_remote`` and CurveZMQ keys (or, explicitly,
    ``insecure_remote``, which is then logged at WARNING)."""
    remote = [name for name in ("ingest", "publish", "control") if not is_loopback(sockets[name])]
    if remote and not sockets["allow_remote"]:
        raise SamemError(
            f"{', '.join(remote)} would bind a non-loopback address ({sockets[remote[0]]}); "
            "pass --allow-remote (sockets.allow_remote: true) and configure CurveZMQ keys"
        )
    curve = sockets["curve"]
    if remote and not curve["server_secret_key"]:
        if not sockets["insecure_remote"]:
            raise SamemError(
                f"{', '.join(remote)} would bind a non-loopback address ({sockets[remote[0]]}) without "
                "CurveZMQ, so anyone who can reach it could send frames and commands; give keys "
                "(--curve-secret-key FILE --curve-clients DIR, or sockets.curve in the settings) or, "
                f"on a closed network only, {INSECURE_FLAG} (sockets.insecure_remote: true)"
            )
        log.warning(
            "INSECURE: binding %s to non-loopback addresses without CurveZMQ; anyone who can reach "
            "them can send frames and commands (%s)",
            ", ".join(remote),
            INSECURE_FLAG,
        )
    if bool(curve["server_secret_key"]) != bool(curve["authorized_clients"]):
        raise SamemError(
            "CurveZMQ needs both sockets.curve.server_secret_key and sockets.curve.authorized_clients"
        )
    for key in ("server_secret_key", "authorized_clients"):
        if curve[key] and not Path(curve[key]).exists():
            raise SamemError(f"sockets.curve.{key}: {curve[key]} does not exist")


def load_settings(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Shipped defaults, then the user's YAML file, then dotted overrides (``{"ingest.policy": "block"}``).

    Returns
    -------
    dict
        Validated settings with every key present.
    """
    config = load_yaml("serve")
    if path is not None:
        config = _merge(config, load_yaml(path), "")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            config = _merge(config, _nest(dotted, value), "")
    if config["ingest"]["policy"] not in POLICIES:
        raise SamemError(
            f"ingest.policy must be one of {', '.join(POLICIES)}, got {config['ingest']['policy']!r}"
        )
    if config["ingest"]["queue_frames"] < 1:
        raise SamemError("ingest.queue_frames must be at least 1")
    if config["ingest"]["hard_limit_factor"] < 1:
        raise SamemError(
            f"ingest.hard_limit_factor must be at least 1, got {config['ingest']['hard_limit_factor']!r}"
        )
    if config["recording"]["flush_every"] < 1:
        raise SamemError("recording.flush_every must be at least 1")
    for key in ("max_per_prompt", "max_objects"):
        value = config["prompts"][key]
        if not 1 <= value <= 65535:
            raise SamemError(f"prompts.{key} must be an integer 1..65535, got {value!r}")
    if config["stats"]["every_frames"] < 1:
        raise SamemError("stats.every_frames must be at least 1")
    from samem.stats.summary import load_config

    load_config(config["stats"]["config"])  # validate the statistics overrides now, not mid-series
    tracker = config["model"]["tracker"]
    if tracker is not None:
        from samem.track.options import TrackerOptions

        if not isinstance(tracker, Mapping):
            raise SamemError(f"model.tracker must be a mapping of tracker options, got {tracker!r}")
        TrackerOptions.from_config(None, **tracker)  # unknown names and bad values fail here
    if config["autoprompt"]["polarity"] not in ("dark", "bright"):
        raise SamemError("autoprompt.polarity must be 'dark' or 'bright'")
    check_sockets(config["sockets"])
    return config


def _nest(dotted: str, value: Any) -> dict:
    out: dict = {}
    node = out
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return out
