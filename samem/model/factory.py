"""Build any SAM 2 / SAM 2.1 model from a config: sam2's packaged configs or samem's own.

Config sources, all with the same Hydra structure (a ``model:`` node whose ``_target_``
classes are instantiated with :func:`hydra.utils.instantiate`):

* sam2 package configs by name: ``"sam2.1_hiera_t"``, ``"sam2.1_hiera_s"``,
  ``"sam2.1_hiera_b+"``, ``"sam2.1_hiera_l"`` and the SAM 2 (v1) names ``"sam2_hiera_*"``;
  the checkpoint spellings (``"sam2.1_hiera_tiny"``, ``"..._small"``, ``"..._base_plus"``,
  ``"..._large"``) and sam2's own ``"configs/sam2.1/sam2.1_hiera_t.yaml"`` also work.
* samem configs shipped in ``configs/model/NAME.yaml`` (``"samem_compact"``, ``"samem_tiny"``),
  which may add a ``tracker:`` section of :class:`samem.track.TrackerOptions` defaults.
* a path to a YAML file, or an already loaded mapping (as stored in samem checkpoints).

The SAM 2 YAML files are read with OmegaConf directly, so no global Hydra state is touched.
Weights are randomly initialised with a fixed seed; loading checkpoints is
:mod:`samem.model.checkpoint`'s job. Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from samem.config import data_dir
from samem.errors import SamemError

#: sam2 ships its Hydra model configs inside the installed package
SAM2_CONFIG_DIR = Path(importlib.util.find_spec("sam2").origin).parent / "configs"  # found, not imported

# Inference-only switches that ``sam2.build_sam.build_sam2_video_predictor`` adds to every
# config. Each one is guarded by ``not self.training`` inside sam2, so training is unaffected.
_VIDEO_INFERENCE_OVERRIDES: dict[str, Any] = {
    "sam_mask_decoder_extra_args": {
        "dynamic_multimask_via_stability": True,
        "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98,
    },
    "binarize_mask_from_pts_for_mem_enc": True,
}

_ALIASES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def sam2_config_names() -> list[str]:
    """Names of the model configs shipped inside the sam2 package (v1 and 2.1), sorted."""
    return sorted(p.stem for sub in ("sam2", "sam2.1") for p in (SAM2_CONFIG_DIR / sub).glob("*.yaml"))


def samem_config_names() -> list[str]:
    """Names of samem's own model configs in ``configs/model/``, sorted."""
    return sorted(p.stem for p in (data_dir() / "model").glob("*.yaml"))


def _sam2_config_file(name: str) -> Path | None:
    stem = Path(name).name
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    m = re.fullmatch(r"(sam2(?:\.1)?)_hiera_(tiny|small|base_plus|large)", stem)
    if m:
        stem = f"{m.group(1)}_hiera_{_ALIASES[m.group(2)]}"
    sub = "sam2.1" if stem.startswith("sam2.1") else "sam2"
    path = SAM2_CONFIG_DIR / sub / f"{stem}.yaml"
    return path if path.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # OmegaConf raises several parser error types
        raise SamemError(f"{path}: not a valid YAML model config ({exc})") from None
    if not isinstance(cfg, dict):
        raise SamemError(f"{path}: expected a mapping with a 'model' section")
    return cfg


def resolve_config(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Return a model config as a plain dict ``{"model": {...}, "tracker": {...}?}``.

    Parameters
    ----------
    config
        A sam2 or samem config name, a YAML path, or a mapping (either the full config with
        a ``model`` key or the bare model node with a ``_target_``).

    Raises
    ------
    SamemError
        If the name is unknown, the file is not valid YAML, or there is no ``model`` section.
    """
    if isinstance(config, Mapping):
        from omegaconf import DictConfig, OmegaConf

        cfg = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config
        cfg = copy.deepcopy(dict(cfg))
        source = "the given mapping"
    else:
        name = str(config)
        sam2_file = _sam2_config_file(name)
        shipped = data_dir() / "model" / f"{name}.yaml"
        if sam2_file is not None:
            cfg, source = _read_yaml(sam2_file), name
        elif shipped.is_file():
            cfg, source = _read_yaml(shipped), name
        elif Path(name).is_file():
            cfg, source = _read_yaml(Path(name)), name
        else:
            raise SamemError(
                f"unknown model config {name!r}: not a file, not one of samem's "
                f"({', '.join(samem_config_names())}) nor one of sam2's ({', '.join(sam2_config_names())})"
            )
    if "model" not in cfg and "_target_" in cfg:
        cfg = {"model": cfg}
    if not isinstance(cfg.get("model"), Mapping) or "_target_" not in cfg["model"]:
        raise SamemError(f"model config from {source} has no 'model' section with a '_target_' class")
    return cfg


def _check_sizes(model_cfg: Mapping[str, Any]) -> None:
    """Check that image size, window sizes, RoPE feature sizes and widths agree."""
    image_size = int(model_cfg.get("image_size", 512))
    if image_size % 32:
        raise SamemError(f"model image_size {image_size} must be a multiple of 32 (Hiera strides 4 to 32)")
    enc = model_cfg.get("image_encoder", {})
    window = enc.get("trunk", {}).get("window_spec", [8])[0]
    if (image_size // 4) % window:
        raise SamemError(
            f"model image_size/4 = {image_size // 4} must be a multiple of the first Hiera window {window}"
        )
    d_model = enc.get("neck", {}).get("d_model", 256)
    if d_model % 16:
        raise SamemError(f"neck d_model {d_model} must be a multiple of 16 (SAM mask decoder heads)")
    layer = model_cfg.get("memory_attention", {}).get("layer", {})
    for key in ("self_attention", "cross_attention"):
        sizes = layer.get(key, {}).get("feat_sizes")
        if sizes is not None and list(sizes) != [image_size // 16] * 2:
            raise SamemError(
                f"memory attention {key}.feat_sizes {list(sizes)} do not match image_size {image_size} "
                f"(expected [{image_size // 16}, {image_size // 16}])"
            )


@contextlib.contextmanager
def _parameters_on_meta():
    """Create every parameter and buffer on the meta device (shapes only, no memory, no init cost).

    sam2's constructors compute with ordinary tensors (e.g. ``linspace(...).item()``), so a
    global ``torch.device("meta")`` context would break them; only the registered tensors move.
    """
    register_parameter = torch.nn.Module.register_parameter
    register_buffer = torch.nn.Module.register_buffer

    def parameter_on_meta(module, name, param):
        if param is not None:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer_on_meta(module, name, tensor, persistent=True):
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    torch.nn.Module.register_parameter = parameter_on_meta
    torch.nn.Module.register_buffer = buffer_on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register_parameter
        torch.nn.Module.register_buffer = register_buffer


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` → CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(
    config: str | Path | Mapping[str, Any],
    device: str | torch.device | None = None,
    *,
    seed: int = 0,
    target: str | None = None,
) -> torch.nn.Module:
    """Build a SAM 2 model with seeded random weights, in eval mode, in fp32.

    Parameters
    ----------
    config
        See :func:`resolve_config`.
    device
        Target device; ``None`` picks CUDA when available, else CPU. ``"meta"`` builds
        shape-only parameters (no memory), useful to inspect state-dict layouts.
    seed
        Seed of the random initialisation (the global torch RNG is left untouched).
    target
        Optional replacement for the model's ``_target_`` class, e.g.
        ``"sam2.sam2_video_predictor.SAM2VideoPredictor"`` or sam2's training class.

    Returns
    -------
    torch.nn.Module
        The model, with ``samem_config`` (the resolved config dict) attached.
    """
    from hydra.utils import instantiate

    cfg = resolve_config(config)
    model_cfg = copy.deepcopy(cfg["model"])
    _check_sizes(model_cfg)
    for key, value in _VIDEO_INFERENCE_OVERRIDES.items():
        if isinstance(value, dict):
            model_cfg[key] = {**(model_cfg.get(key) or {}), **value}
        else:
            model_cfg[key] = value
    if target is not None:
        model_cfg["_target_"] = target
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if dev.type == "meta":
            with _parameters_on_meta():
                model = instantiate(model_cfg, _recursive_=True)
        else:
            model = instantiate(model_cfg, _recursive_=True)
    model = model.to(dev).float().eval()
    model.samem_config = cfg
    return model
