"""Read, check and write SAM 2 checkpoints; :func:`load_model`, the one entry point.

Formats
-------
* Meta's: ``{"model": state_dict}`` (``sam2.1_hiera_*.pt``; fine-tuned checkpoints written by
  sam2's trainer add ``optimizer``, ``epoch``, ... which are ignored). The config is inferred
  from the weights (:func:`infer_sam2_config`) unless given.
* samem's, self-describing: ``{"model": state_dict, "config": <model config dict>,
  "meta": {...}}``. Meta's loader reads only ``"model"``, so sam2's tools load ours too.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
never arbitrary pickled objects. Every user-fixable problem is a :class:`SamemError` that
names the file and the problem.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from samem.errors import SamemError
from samem.model.factory import build_model, resolve_config, resolve_device

#: where the trained default weights are shipped (absent until samem.train produces them)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.pt"
#: the architecture behind "default" (and its random stand-in while DEFAULT_WEIGHTS is absent)
DEFAULT_CONFIG = "samem_compact"

_CKPT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
# (trunk embed dim, number of Hiera blocks) -> size letter of sam2's configs
_HIERA_SIZES = {(96, 12): "t", (96, 16): "s", (112, 24): "b+", (144, 48): "l"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely and check that it holds a ``"model"`` state dict.

    Raises
    ------
    SamemError
        Missing file, unreadable (truncated/corrupt) file, unsafe pickled content, or no
        ``"model"`` mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise SamemError(f"checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... here
        msg = _first_line(exc)
        if "Weights only load failed" in str(exc):
            raise SamemError(
                f"checkpoint {path}: holds Python objects other than tensors and plain containers, "
                "which samem does not unpickle; re-save it as {'model': state_dict}"
            ) from None
        raise SamemError(f"checkpoint {path}: cannot be read, truncated or corrupt? ({msg})") from None
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model"), Mapping):
        if isinstance(ckpt, Mapping):
            kind = f"a dict with keys {sorted(map(str, ckpt))[:5]}"
        else:
            kind = type(ckpt).__name__
        raise SamemError(f"checkpoint {path}: expected a dict with a 'model' state dict, found {kind}")
    bad = [k for k, v in ckpt["model"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise SamemError(f"checkpoint {path}: 'model' holds non-tensor entries, e.g. {bad[:3]}")
    return dict(ckpt)


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix that DistributedDataParallel puts on every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def infer_sam2_config(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Name of the sam2 package config that fits a state dict, or ``None``.

    The Hiera size follows from the trunk's patch-embedding width and block count
    (t: 96/12, s: 96/16, b+: 112/24, l: 144/48); SAM 2.1 is told from SAM 2 by keys only
    2.1 has (``no_obj_embed_spatial``, ``obj_ptr_tpos_proj.weight``).
    """
    patch = state_dict.get("image_encoder.trunk.patch_embed.proj.weight")
    if patch is None:
        return None
    blocks = {k.split(".")[3] for k in state_dict if k.startswith("image_encoder.trunk.blocks.")}
    size = _HIERA_SIZES.get((int(patch.shape[0]), len(blocks)))
    if size is None:
        return None
    v21 = "no_obj_embed_spatial" in state_dict or "obj_ptr_tpos_proj.weight" in state_dict
    return f"sam2.1_hiera_{size}" if v21 else f"sam2_hiera_{size}"


def _few(keys: list[str], n: int = 3) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_weights(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state_dict`` into ``model`` strictly, explaining any mismatch.

    Raises
    ------
    SamemError
        Naming a few missing keys, unexpected keys or shape mismatches.
    """
    own = model.state_dict()
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches ({_few(shapes)})")
    if missing:
        problems.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if problems:
        guess = infer_sam2_config(state_dict)
        hint = f"; the weights look like {guess!r}" if guess else ""
        raise SamemError(f"checkpoint {source} does not fit the model config: {'; '.join(problems)}{hint}")
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint(model: torch.nn.Module, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a self-describing samem checkpoint, atomically (temporary file, then rename).

    Parameters
    ----------
    model
        A model built by :func:`samem.model.build_model` (carries ``samem_config``).
    path
        Destination ``.pt`` file.
    meta
        Extra plain-Python information (training run, data, metrics) stored under ``"meta"``.
    """
    from samem import __version__

    config = getattr(model, "samem_config", None)
    if config is None:
        raise SamemError("model has no samem_config; build it with samem.model.build_model")
    path = Path(path)
    ckpt = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config,
        "meta": {"samem_version": __version__, **dict(meta or {})},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def _from_checkpoint(path: Path, config, device, seed: int) -> torch.nn.Module:
    ckpt = read_checkpoint(path)
    state_dict = _strip_prefix(ckpt["model"])
    if config is None:
        config = ckpt.get("config")
    if config is None:
        config = infer_sam2_config(state_dict)
        if config is None:
            raise SamemError(
                f"checkpoint {path}: cannot tell which model config its weights belong to "
                "(not a sam2 Hiera t/s/b+/l layout and no 'config' entry); pass config="
            )
    model = build_model(config, device="cpu", seed=seed)
    load_weights(model, state_dict, str(path))
    model.samem_source = str(path)
    return model.to(resolve_device(device))


def _random_init(config, device, seed: int, why: str) -> torch.nn.Module:
    resolve_config(config)  # unknown names fail here, before the warning
    warnings.warn(
        f"{why}: using a seeded random initialisation of {config!s} (seed {seed}); "
        "its masks are meaningless until trained weights are loaded",
        stacklevel=3,
    )
    model = build_model(config, device=device, seed=seed)
    model.samem_source = f"random-init:{config!s}:seed={seed}"
    return model


def load_model(
    name_or_path: str | Path = "default",
    config: str | Path | Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    *,
    seed: int = 0,
) -> torch.nn.Module:
    """Build a SAM 2 model and load its weights; never downloads anything.

    Parameters
    ----------
    name_or_path
        ``"default"``: the shipped weights :data:`DEFAULT_WEIGHTS`, or while they are absent
        a seeded random initialisation of :data:`DEFAULT_CONFIG` (with a warning).
        A checkpoint path (``.pt``/``.pth``/``.ckpt``/``.bin``): Meta's or samem's format.
        A config name or YAML path: seeded random initialisation (with a warning).
    config
        Model config for a checkpoint, overriding the one stored in or inferred from it.
    device
        ``None``: CUDA when available, else CPU. Weights stay fp32 (CUDA runs use bf16 autocast).
    seed
        Seed of any random initialisation.

    Returns
    -------
    torch.nn.Module
        A ``SAM2Base`` in eval mode with ``samem_config`` and ``samem_source`` attached.

    Raises
    ------
    SamemError
        Missing/corrupt/mismatched checkpoint or unknown config name.
    """
    if str(name_or_path) == "default":
        if DEFAULT_WEIGHTS.is_file():
            return _from_checkpoint(DEFAULT_WEIGHTS, config, device, seed)
        why = f"no trained default weights at {DEFAULT_WEIGHTS}"
        return _random_init(DEFAULT_CONFIG if config is None else config, device, seed, why)
    path = Path(name_or_path)
    if path.suffix.lower() in _CKPT_SUFFIXES:
        return _from_checkpoint(path, config, device, seed)
    if config is not None:
        raise SamemError("config= applies only to checkpoint files; give the config as name_or_path instead")
    return _random_init(name_or_path, device, seed, "no checkpoint given")
