"""Training configuration: ``configs/train/NAME.yaml`` plus ``key.sub=value`` overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from samem.config import load_yaml
from samem.errors import SamemError

#: every section and key a training config may hold, with its default
DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {"config": "samem_compact", "init": None},
    "data": {
        "source": "synthetic",  # synthetic | h5 | folder
        "recipe": "train",  # synthetic recipe (synthetic/*.yaml) with a randomize section
        "paths": [],  # HDF5 files or DAVIS-style folders for source h5 / folder
        "frame_size": 384,
        "clip_len": 4,
        "clips_per_batch": 2,
        "seed": 0,
        "val_seed": 10_000,
        "val_clips": 8,
        "workers": 0,
        "tiles": [],  # folders of real labelled tiles (images/, labels/) mixed into the clips
        "tiles_fraction": 0.0,  # share of training clips cut from those tiles
        "tiles_val": 0,  # last tiles of each folder held out of training, for val_real_iou
        "tiles_noisy_share": 0.5,  # share of real-tile clips given per-frame noise (LPTEM-like)
    },
    "crop": {
        "mode": "roi",
        "crop_size_px": None,
        "context": 3.0,
        "box_noise": 0.1,
        "box_noise_max_px": 20.0,
        "centre_jitter_px": 2.0,
        "vanish_prob": 0.0,
        "max_objects": 4,
    },
    "optim": {
        "steps": 10_000,
        "lr": 3.0e-4,
        "encoder_lr": 1.0e-4,
        "weight_decay": 0.05,
        "betas": [0.9, 0.999],
        "warmup_steps": 200,
        "min_lr_ratio": 0.05,
        "grad_clip": 1.0,
        "ema_decay": 0.0,
    },
    "loss": {"mask": 20.0, "dice": 1.0, "iou": 1.0, "score": 1.0},
    "run": {
        "out": "runs/default",
        "checkpoint_every": 50,
        "val_every": 250,
        "log_every": 10,
        "device": None,
        "bf16": True,
        "num_threads": None,
        "seed": 0,
    },
}


def _parse_value(text: str) -> Any:
    """YAML scalar, with ``1e-4`` read as a number (YAML 1.1 wants ``1.0e-4``)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(cfg: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a config."""
    for item in overrides:
        if "=" not in item:
            raise SamemError(f"override {item!r} is not of the form section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise SamemError(f"override {item!r}: the key must be section.key (e.g. optim.lr=1e-4)")
        section, name = parts
        if section not in DEFAULTS or name not in DEFAULTS[section]:
            raise SamemError(f"override {item!r}: unknown key {key!r}")
        cfg[section][name] = _parse_value(value)
    return cfg


def load_train_config(name_or_path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults, then the YAML file (``configs/train/NAME.yaml`` or a path), then overrides.

    Raises
    ------
    SamemError
        Unknown sections or keys, malformed values, or values out of range.
    """
    name = str(name_or_path)
    raw = load_yaml(name if Path(name).is_file() or "/" in name else f"train/{name}")
    cfg = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in cfg or not isinstance(values, dict):
            raise SamemError(f"training config {name}: unknown or malformed section {section!r}")
        unknown = sorted(set(values) - set(cfg[section]))
        if unknown:
            raise SamemError(f"training config {name}: unknown keys in {section}: {unknown}")
        cfg[section].update(values)
    apply_overrides(cfg, overrides or [])
    _check(cfg)
    return cfg


def _check(cfg: dict[str, Any]) -> None:
    positive = [
        ("data", "frame_size"),
        ("data", "clip_len"),
        ("data", "clips_per_batch"),
        ("optim", "steps"),
        ("optim", "lr"),
        ("crop", "max_objects"),
        ("run", "checkpoint_every"),
        ("run", "log_every"),
    ]
    for section, key in positive:
        value = cfg[section][key]
        if not isinstance(value, (int, float)) or value <= 0:
            raise SamemError(f"{section}.{key} must be a positive number, got {value!r}")
    vanish = cfg["crop"]["vanish_prob"]
    if not isinstance(vanish, (int, float)) or not 0.0 <= vanish <= 1.0:
        raise SamemError(f"crop.vanish_prob must be in [0, 1], got {vanish!r}")
    if not 0.0 <= cfg["optim"]["ema_decay"] < 1.0:
        raise SamemError(f"optim.ema_decay must be in [0, 1) (0 = off), got {cfg['optim']['ema_decay']!r}")
    if cfg["data"]["clip_len"] < 2:
        raise SamemError("data.clip_len must be at least 2 (a prompt frame and a propagated frame)")
    if cfg["data"]["source"] not in ("synthetic", "h5", "folder"):
        raise SamemError(f"data.source {cfg['data']['source']!r} is not synthetic, h5 or folder")
    if cfg["data"]["source"] != "synthetic" and not cfg["data"]["paths"]:
        raise SamemError(f"data.source {cfg['data']['source']} needs data.paths")
    fraction = cfg["data"]["tiles_fraction"]
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise SamemError(f"data.tiles_fraction must be in [0, 1], got {fraction!r}")
    if fraction > 0 and not cfg["data"]["tiles"]:
        raise SamemError("data.tiles_fraction > 0 needs data.tiles (folders with images/ and labels/)")
    if not isinstance(cfg["data"]["tiles_val"], int) or cfg["data"]["tiles_val"] < 0:
        raise SamemError(f"data.tiles_val must be a whole number >= 0, got {cfg['data']['tiles_val']!r}")
    noisy = cfg["data"]["tiles_noisy_share"]
    if not isinstance(noisy, (int, float)) or not 0.0 <= noisy <= 1.0:
        raise SamemError(f"data.tiles_noisy_share must be in [0, 1], got {noisy!r}")
    if isinstance(cfg["data"]["tiles"], str):
        cfg["data"]["tiles"] = [cfg["data"]["tiles"]]
    if cfg["crop"]["mode"] not in ("roi", "full"):
        raise SamemError(f"crop.mode {cfg['crop']['mode']!r} is not roi or full")
