"""Opening HDF5 files with one clear error for a missing or unreadable file."""

from __future__ import annotations

from pathlib import Path

import h5py

from samem.errors import SamemError


def open_h5(path: str | Path, swmr: bool = False) -> h5py.File:
    """Open an HDF5 file read-only.

    Parameters
    ----------
    path : str or Path
    swmr : bool
        Try single-writer/multiple-reader mode first (a recording still being written),
        falling back to a plain read.

    Raises
    ------
    SamemError
        ``"<path>: no such file"`` or ``"<path>: not a readable HDF5 file (...)"``.
    """
    path = Path(path)
    if not path.is_file():
        raise SamemError(f"{path}: no such file")
    try:
        if swmr:
            try:
                return h5py.File(path, "r", swmr=True)
            except (OSError, ValueError):
                pass
        return h5py.File(path, "r")
    except OSError as exc:
        raise SamemError(f"{path}: not a readable HDF5 file ({exc})") from None
