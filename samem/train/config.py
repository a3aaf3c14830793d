"""Training configuration: ``configs/train/NAME.yaml`` plus ``section.key=value`` overrides.

:class:`TrainConfig` holds every section and key a training config may hold, with its
default; :func:`load_train_config` fills it through :func:`samem.config.load` (defaults, the
YAML file, then the overrides), so unknown keys and values of the wrong kind are one-line
:class:`SamemError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from samem.config import Settings, load, load_yaml, nest, parse_overrides
from samem.errors import SamemError
from samem.train.tiles import NOISY_SHARE

#: where a run goes when the config leaves ``run.out`` null: ``RUNS_HOME / <config name>``,
#: in the user's home (outside any checkout; the same folder from any working directory, so a
#: re-run resumes)
RUNS_HOME = Path("~/samem-runs")


@dataclass(frozen=True)
class ModelSection(Settings):
    """``model``: the architecture (a samem or sam2 model config name or path) and the checkpoint
    to start from (Meta's ``{"model": ...}``, SAM-EM's or samem's; ``None``: from scratch)."""

    config: str = "samem_compact"
    init: str | None = None


@dataclass(frozen=True)
class DataSection(Settings):
    """``data``: where clips come from (sizes in px, lengths in frames)."""

    source: str = "synthetic"  # synthetic | h5 | folder
    recipe: str = "train"  # synthetic recipe (synthetic/*.yaml) with a randomize section
    paths: tuple[str, ...] = ()  # HDF5 files or DAVIS-style folders for source h5 / folder
    frame_size: int = 384
    clip_len: int = 4
    clips_per_batch: int = 2
    seed: int = 0
    val_seed: int = 10_000
    val_clips: int = 8
    workers: int = 0
    tiles: tuple[str, ...] = ()  # folders of real labelled tiles (images/, labels/) mixed into the clips
    tiles_fraction: float = 0.0  # share of training clips cut from those tiles
    tiles_val: int = 0  # last tiles of each folder held out of training, for val_real_iou
    tiles_noisy_share: float = NOISY_SHARE  # share of real-tile clips given per-frame noise (LPTEM-like)


@dataclass(frozen=True)
class CropSection(Settings):
    """``crop``: how windows are cut from clips (:class:`samem.train.batches.CropPolicy`)."""

    mode: str = "roi"
    crop_size_px: int | None = None
    context: float = 3.0
    box_noise: float = 0.1  # fraction of the box side
    box_noise_max_px: float = 20.0
    centre_jitter_px: float = 2.0
    vanish_prob: float = 0.0  # fraction of objects whose window leaves them mid-clip
    max_objects: int = 4


@dataclass(frozen=True)
class OptimSection(Settings):
    """``optim``: AdamW with warm-up and cosine decay (steps, learning rates per step)."""

    steps: int = 10_000
    lr: float = 3.0e-4
    encoder_lr: float = 1.0e-4  # image encoder
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 = off


@dataclass(frozen=True)
class LossSection(Settings):
    """``loss``: weights of the mask (focal), dice, IoU and object-score terms."""

    mask: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    score: float = 1.0


@dataclass(frozen=True)
class RunSection(Settings):
    """``run``: the run folder (``None``: ``~/samem-runs/<config name>``, filled in by
    :func:`load_train_config`) and how often to checkpoint, validate and log (steps)."""

    out: str | None = None
    checkpoint_every: int = 50
    val_every: int = 250
    log_every: int = 10
    device: str | None = None
    bf16: bool = True  # CUDA
    num_threads: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig(Settings):
    """A training config (docs/training.md): six sections, checked as a whole."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    crop: CropSection = field(default_factory=CropSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self):
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
            value = getattr(getattr(self, section), key)
            if value <= 0:
                raise SamemError(f"{section}.{key} must be a positive number, got {value!r}")
        data, crop = self.data, self.crop
        if not 0.0 <= crop.vanish_prob <= 1.0:
            raise SamemError(f"crop.vanish_prob must be in [0, 1], got {crop.vanish_prob!r}")
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise SamemError(f"optim.ema_decay must be in [0, 1) (0 = off), got {self.optim.ema_decay!r}")
        if data.clip_len < 2:
            raise SamemError("data.clip_len must be at least 2 (a prompt frame and a propagated frame)")
        if data.source not in ("synthetic", "h5", "folder"):
            raise SamemError(f"data.source {data.source!r} is not synthetic, h5 or folder")
        if data.source != "synthetic" and not data.paths:
            raise SamemError(f"data.source {data.source} needs data.paths")
        if not 0.0 <= data.tiles_fraction <= 1.0:
            raise SamemError(f"data.tiles_fraction must be in [0, 1], got {data.tiles_fraction!r}")
        if data.tiles_fraction > 0 and not data.tiles:
            raise SamemError("data.tiles_fraction > 0 needs data.tiles (folders with images/ and labels/)")
        if data.tiles_val < 0:
            raise SamemError(f"data.tiles_val must be a whole number >= 0, got {data.tiles_val!r}")
        if not 0.0 <= data.tiles_noisy_share <= 1.0:
            raise SamemError(f"data.tiles_noisy_share must be in [0, 1], got {data.tiles_noisy_share!r}")
        if crop.mode not in ("roi", "full"):
            raise SamemError(f"crop.mode {crop.mode!r} is not roi or full")


def config_name(name_or_path: str | Path) -> str:
    """A config's name: a shipped name as given (``tiny``), a path's file stem."""
    name = str(name_or_path)
    return Path(name).stem if Path(name).is_file() or name.endswith((".yaml", ".yml")) else name


def load_train_config(name_or_path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the YAML file (``configs/train/NAME.yaml`` or a path), then overrides.

    ``run.out`` left null becomes ``~/samem-runs/<config name>``; a leading ``~`` is expanded.

    Raises
    ------
    SamemError
        Unknown sections or keys, malformed values, or values out of range.
    """
    name = str(name_or_path)
    raw = load_yaml(name if Path(name).is_file() or "/" in name else f"train/{name}")
    items = parse_overrides(overrides, "override", "optim.lr=1e-4")
    for key in items:
        if len(key.split(".")) != 2:
            raise SamemError(f"override {key!r}: the key must be section.key (e.g. optim.lr=1e-4)")
    cfg = load(TrainConfig, [raw, nest(items)], what="key", context=f"training config {name}: ")
    out = RUNS_HOME / config_name(name) if cfg.run.out is None else Path(cfg.run.out)
    return cfg.replace(run=cfg.run.replace(out=str(out.expanduser())))
