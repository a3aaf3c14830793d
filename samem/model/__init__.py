"""SAM 2 models: one factory for sam2's and samem's configs, and safe checkpoint loading.

``load_model`` is the entry point (also ``samem.load_model``); ``build_model`` builds an
architecture with seeded random weights; ``save_checkpoint`` writes samem's self-describing
format, which Meta's loader also reads.
"""

from samem.model.checkpoint import (
    DEFAULT_CONFIG,
    DEFAULT_WEIGHTS,
    infer_sam2_config,
    load_model,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from samem.model.factory import (
    build_model,
    resolve_config,
    resolve_device,
    sam2_config_names,
    samem_config_names,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_WEIGHTS",
    "build_model",
    "infer_sam2_config",
    "load_model",
    "load_weights",
    "read_checkpoint",
    "resolve_config",
    "resolve_device",
    "sam2_config_names",
    "samem_config_names",
    "save_checkpoint",
]
