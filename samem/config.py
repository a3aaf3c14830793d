"""Loading YAML configuration shipped in ``configs/`` and ``synthetic/`` or given by path.

Shipped files are addressed by name relative to their folder (``"serve"``,
``"train/default"``, ``"model/samem_tiny"``); anything else is taken as a path.
"""

from __future__ import annotations

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
