"""Service settings: ``configs/serve.yaml`` merged with a user file and command-line overrides.

:class:`ServeSettings` (one frozen dataclass per section) holds every key with its default,
the values of the shipped file (a test keeps the two equal); a user file may set any subset.
:func:`load_settings` goes through :func:`samem.config.load`: unknown keys, values of the
wrong type and negative numbers are :class:`SamemError` naming the key (a typo must not be
ignored silently). Addresses are checked here too: binding anything but loopback needs
``sockets.allow_remote: true`` and CurveZMQ keys, or ``sockets.insecure_remote: true``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.config import Settings, load, load_yaml
from samem.errors import SamemError
from samem.stream.backpressure import POLICIES

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class CurveSettings(Settings):
    """``sockets.curve``: CurveZMQ encryption and client authentication on all three sockets."""

    server_secret_key: str | None = None  # path of the server's .key_secret certificate (zmq.auth format)
    authorized_clients: str | None = None  # folder of the clients' public .key certificates


@dataclass(frozen=True)
class SocketSettings(Settings):
    """``sockets``: ZeroMQ addresses (docs/protocol.md) and who may reach them."""

    ingest: str = "tcp://127.0.0.1:5555"  # PULL: frames from the microscope
    publish: str = "tcp://127.0.0.1:5556"  # PUB: topics frame, stats, feedback
    control: str = "tcp://127.0.0.1:5557"  # REP: JSON commands
    allow_remote: bool = False
    insecure_remote: bool = False
    curve: CurveSettings = field(default_factory=CurveSettings)


@dataclass(frozen=True)
class ModelSettings(Settings):
    """``model``: the model to load and the tracker options (docs/tracker.md)."""

    name: str = "default"  # "default", a checkpoint path, or a model config name/path
    config: str | None = None  # config for a checkpoint (default: the one stored in it)
    device: str | None = None  # None: CUDA when available, else CPU
    tracker_mode: str | None = None  # roi | full; None: the model config's
    tracker: dict[str, Any] | None = None  # other tracker options, e.g. {"smooth_frames": 1}


@dataclass(frozen=True)
class IngestSettings(Settings):
    """``ingest``: the bounded frame queue and message limits (bytes, px)."""

    queue_frames: int = 8
    policy: str = "latest"  # latest | drop_oldest | block
    max_header_bytes: int = 65536
    max_frame_bytes: int = 268435456
    max_frame_side: int = 16384
    hard_limit_factor: int = 2


@dataclass(frozen=True)
class DefaultSettings(Settings):
    """``defaults``: units used when a start message leaves them out (None: unknown)."""

    pixel_size_nm: float | None = None  # nm/px
    frame_interval_s: float | None = None  # s


@dataclass(frozen=True)
class PromptSettings(Settings):
    """``prompts``: a boxes file, the classical detector, and how many boxes and objects."""

    boxes_file: str | None = None
    auto: bool = False
    max_per_prompt: int = 32
    max_objects: int = 64


@dataclass(frozen=True)
class AutopromptSettings(Settings):
    """``autoprompt``: the classical detector (:mod:`samem.stream.autoprompt`; px, noise sigmas)."""

    polarity: str = "dark"  # dark | bright
    frames: int = 5
    diameter_px: tuple[float, float] = (8, 64)
    scales: int = 6
    ratio: float = 1.6
    threshold_sigma: float = 5.5
    grow_sigma: float = 2.0
    min_area_px: int = 12
    max_area_px: int = 20000
    pad_px: int = 1
    max_objects: int = 32
    edge_px: int = 2
    new_objects_every: int = 0
    min_distance_px: int = 6
    confirm_sigma: float = 4.5
    confirm_gate: float = 1.5


@dataclass(frozen=True)
class StatsSettings(Settings):
    """``stats``: how often the stats topic is published and the statistics settings."""

    every_frames: int = 25
    config: str | dict[str, Any] | None = None  # overrides of configs/stats.yaml, or a YAML path


@dataclass(frozen=True)
class FeedbackSettings(Settings):
    """``feedback``: when to suggest recentring or a slower frame rate (px, frames, s)."""

    edge_margin_px: int = 32
    recentre_cooldown_frames: int = 20
    snr_ring_px: int = 3
    lost_after_frames: int = 3
    lag_warn_frames: int = 4
    behind_cooldown_s: float = 5.0
    rate_margin: float = 0.8


@dataclass(frozen=True)
class RecordingSettings(Settings):
    """``recording``: the HDF5 results file of the service."""

    file: str | None = None
    save_frames: bool = True
    flush_every: int = 10  # frames
    compression: str = "lzf"  # lzf | gzip | none


@dataclass(frozen=True)
class ControlSettings(Settings):
    """``control``: the control socket's reply timeout, s."""

    reply_timeout_s: float = 10.0


@dataclass(frozen=True)
class ServeSettings(Settings):
    """Settings of ``samem serve`` / ``samem analyze`` (``configs/serve.yaml`` documents every key)."""

    sockets: SocketSettings = field(default_factory=SocketSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    defaults: DefaultSettings = field(default_factory=DefaultSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    autoprompt: AutopromptSettings = field(default_factory=AutopromptSettings)
    stats: StatsSettings = field(default_factory=StatsSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    control: ControlSettings = field(default_factory=ControlSettings)


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


def check_sockets(sockets: SocketSettings) -> None:
    """Refuse non-loopback binds unless ``allow_remote`` and CurveZMQ keys (or, explicitly,
    ``insecure_remote``, which is then logged at WARNING)."""
    remote = [name for name in ("ingest", "publish", "control") if not is_loopback(getattr(sockets, name))]
    first = getattr(sockets, remote[0]) if remote else None
    if remote and not sockets.allow_remote:
        raise SamemError(
            f"{', '.join(remote)} would bind a non-loopback address ({first}); "
            "pass --allow-remote (sockets.allow_remote: true) and configure CurveZMQ keys"
        )
    curve = sockets.curve
    if remote and not curve.server_secret_key:
        if not sockets.insecure_remote:
            raise SamemError(
                f"{', '.join(remote)} would bind a non-loopback address ({first}) without "
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
    if bool(curve.server_secret_key) != bool(curve.authorized_clients):
        raise SamemError(
            "CurveZMQ needs both sockets.curve.server_secret_key and sockets.curve.authorized_clients"
        )
    for key in ("server_secret_key", "authorized_clients"):
        path = getattr(curve, key)
        if path and not Path(path).exists():
            raise SamemError(f"sockets.curve.{key}: {path} does not exist")


def load_settings(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> ServeSettings:
    """Shipped defaults, then the user's YAML file, then dotted overrides (``{"ingest.policy": "block"}``;
    ``None`` values are skipped).

    Returns
    -------
    ServeSettings
        Validated settings with every key present.

    Raises
    ------
    SamemError
        Unknown keys, values of the wrong kind or negative numbers (each named), and the
        checks below.
    """
    layers = [load_yaml("serve"), load_yaml(path) if path is not None else None]
    config = load(ServeSettings, layers, overrides, "serve setting", non_negative=True)
    ingest = config.ingest
    if ingest.policy not in POLICIES:
        raise SamemError(f"ingest.policy must be one of {', '.join(POLICIES)}, got {ingest.policy!r}")
    if ingest.queue_frames < 1:
        raise SamemError("ingest.queue_frames must be at least 1")
    if ingest.hard_limit_factor < 1:
        raise SamemError(f"ingest.hard_limit_factor must be at least 1, got {ingest.hard_limit_factor!r}")
    if config.recording.flush_every < 1:
        raise SamemError("recording.flush_every must be at least 1")
    for key in ("max_per_prompt", "max_objects"):
        value = getattr(config.prompts, key)
        if not 1 <= value <= 65535:
            raise SamemError(f"prompts.{key} must be an integer 1..65535, got {value!r}")
    if config.stats.every_frames < 1:
        raise SamemError("stats.every_frames must be at least 1")
    from samem.stats.summary import load_config

    load_config(config.stats.config)  # validate the statistics overrides now, not mid-series
    tracker = config.model.tracker
    if tracker is not None:
        from samem.track.options import TrackerOptions

        TrackerOptions.from_config(None, **tracker)  # unknown names and bad values fail here
    if config.autoprompt.polarity not in ("dark", "bright"):
        raise SamemError("autoprompt.polarity must be 'dark' or 'bright'")
    check_sockets(config.sockets)
    return config


def with_tracker_options(settings: ServeSettings, options: Mapping[str, Any] | None) -> ServeSettings:
    """``settings`` with ``options`` merged over ``model.tracker`` (checked)."""
    if not options:
        return settings
    merged = {**(settings.model.tracker or {}), **options}
    from samem.track.options import TrackerOptions

    TrackerOptions.from_config(None, **merged)
    return settings.replace(model=settings.model.replace(tracker=merged))
