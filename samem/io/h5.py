"""Opening HDF5 files with one clear error for a missing or unreadable file.

A recording that was not closed (still being written, or left by a crash such as ``kill -9``)
is flagged by HDF5 as open for writing and refuses a plain read; :func:`open_h5` then opens
it in SWMR read mode, which reads everything up to the writer's last flush, and says so once
(a WARNING naming the number of frames the file holds).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py

from samem.errors import SamemError

log = logging.getLogger(__name__)

#: datasets whose first axis counts a file's frames, in order of preference
_FRAME_DATASETS = ("frame_index", "labels", "frames")


def frames_held(f: h5py.File) -> int | None:
    """Frames a recording (or video) file holds: the shortest of ``/frame_index``, ``/labels``
    and ``/frames`` present (after a crash they may differ by the frames after the last flush)."""
    counts = []
    for name in _FRAME_DATASETS:
        ds = f.get(name)
        if isinstance(ds, h5py.Dataset) and ds.ndim >= 1:
            counts.append(int(ds.shape[0]))
    return min(counts) if counts else None


def open_h5(path: str | Path, swmr: bool = True) -> h5py.File:
    """Open an HDF5 file read-only, also a recording that was never closed.

    Parameters
    ----------
    path : str or Path
    swmr : bool
        Fall back to single-writer/multiple-reader mode when a plain read is refused (a
        recording still being written, or left by a crash); it is then read up to its last
        flush and a WARNING says how many frames it holds.

    Raises
    ------
    SamemError
        ``"<path>: no such file"`` or ``"<path>: not a readable HDF5 file (...)"``.
    """
    path = Path(path)
    if not path.is_file():
        raise SamemError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        refused = exc
    if swmr:
        try:
            f = h5py.File(path, "r", swmr=True)
        except (OSError, ValueError):
            pass
        else:
            n = frames_held(f)
            log.warning(
                "%s was not closed (still being recorded, or left by a crash such as kill -9): "
                "reading it up to its last flush; it holds %s frames",
                path,
                "no" if n is None else n,
            )
            return f
    text = " ".join(str(refused).split())
    raise SamemError(f"{path}: not a readable HDF5 file ({text})") from None
