"""HDF5 results recorder: appends frames, labels and tracks while other processes read (SWMR).

Layout (docs/architecture.md, "Results"), all datasets created when the recorder opens:

- ``/frames`` (T, H, W) raw frames, optional; chunks (1, H, W).
- ``/labels`` (T, H, W) uint16: 0 background, value = object id.
- ``/frame_index`` (T,) int64: the frame number (ingest ``seq``) of row t of ``/frames``/``/labels``;
  equal to t offline, with gaps when a live service dropped frames.
- ``/timestamp`` (T,) float64: acquisition time of each row, s.
- ``/tracks`` table (:mod:`samem.io.table`): :data:`TRACK_COLUMNS`, positions in pixels.
- ``/stats/...`` written by the caller's ``stats_writer`` when the recorder closes.
- root attrs: ``pixel_size_nm``, ``frame_interval_s``, ``samem_version``, ``source``, ``model``,
  ``config_json`` and any others given.

The file is written in SWMR mode: ``h5py.File(path, "r", swmr=True)`` reads it while it grows,
and after a crash (even SIGKILL) it holds everything up to the last :meth:`Recorder.flush`
(every ``flush_every`` frames). A crashed file must be opened with ``swmr=True``.
HDF5 allows no new objects or attributes in SWMR mode, so statistics are written after the
recording is closed, by reopening the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from samem import __version__
from samem.errors import SamemError
from samem.io.table import append_rows, create_table

#: columns of ``/tracks`` and their dtypes (x, y, area in pixels; orientation in radians)
TRACK_COLUMNS: dict[str, Any] = {
    "frame": np.int64,
    "particle": np.int64,
    "x": np.float64,
    "y": np.float64,
    "area": np.float64,
    "orientation": np.float64,
    "eccentricity": np.float64,
    "score": np.float64,
    "present": np.bool_,
    "edge": np.bool_,
    "sigma": np.float64,
}
#: columns a track table may lack (tables from before they existed) and the value they then get
OPTIONAL_TRACK_COLUMNS: dict[str, Any] = {"edge": False, "sigma": np.nan}

_COMPRESSION = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "gzip": {"compression": "gzip", "compression_opts": 1},
}


def _attr(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return value


class Recorder:
    """Write a results file frame by frame.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    frame_shape : tuple of int
        (H, W) of every frame, pixels.
    frame_dtype : numpy dtype
        Dtype of the raw frames.
    pixel_size_nm : float or None
        nm/px, stored as a root attribute (NaN when unknown).
    frame_interval_s : float or None
        s between frames, stored as a root attribute (NaN when unknown).
    save_frames : bool
        Also store the raw frames (needed to re-analyse the recording).
    flush_every : int
        Make everything durable and visible to readers every this many frames.
    compression : {"lzf", "gzip", "none"}
        Filter for frames and labels.
    attrs : mapping, optional
        Extra root attributes (``source``, ``model``, ``config_json``, ...); dicts become JSON.
    atomic : bool
        Write to ``<path>.part`` and rename on :meth:`close` (no half-written output offline);
        a live recording (``False``) is visible under its name from the start.
    overwrite : bool
        Replace an existing file; otherwise an existing file is a :class:`SamemError`.
    """

    def __init__(
        self,
        path: str | Path,
        frame_shape: tuple[int, int],
        frame_dtype,
        pixel_size_nm: float | None,
        frame_interval_s: float | None,
        save_frames: bool = True,
        flush_every: int = 10,
        compression: str = "lzf",
        attrs: Mapping[str, Any] | None = None,
        atomic: bool = False,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        if compression not in _COMPRESSION:
            raise SamemError(f"compression must be one of {', '.join(_COMPRESSION)}, got {compression!r}")
        if int(flush_every) < 1:
            raise SamemError(f"flush_every must be at least 1 frame, got {flush_every}")
        if self.path.exists() and not overwrite:
            raise SamemError(f"{self.path} exists; choose another recording file or remove it")
        if not self.path.parent.is_dir():
            raise SamemError(f"{self.path.parent}: no such folder for the recording")
        self._write_path = self.path.with_name(self.path.name + ".part") if atomic else self.path
        self.flush_every = int(flush_every)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        try:
            self._f = h5py.File(self._write_path, "w", libver="latest")
        except OSError as exc:
            raise SamemError(f"cannot create {self._write_path}: {exc}") from None
        try:
            self._create(frame_dtype, pixel_size_nm, frame_interval_s, save_frames, compression, attrs)
        except Exception as exc:  # leave no empty stub behind: nothing was recorded yet
            self._f.close()
            self._write_path.unlink(missing_ok=True)
            raise SamemError(f"cannot create the recording {self.path}: {type(exc).__name__}: {exc}") from exc
        self._pending: list[pd.DataFrame] = []
        self.frames_written = 0
        self.frames_flushed = 0
        self.closed = False

    def _create(self, frame_dtype, pixel_size_nm, frame_interval_s, save_frames, compression, attrs):
        h, w = self.frame_shape
        f = self._f
        f.attrs["pixel_size_nm"] = np.nan if pixel_size_nm is None else float(pixel_size_nm)
        f.attrs["frame_interval_s"] = np.nan if frame_interval_s is None else float(frame_interval_s)
        f.attrs["samem_version"] = __version__
        for key in ("source", "model", "config_json"):
            f.attrs[key] = "none"
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr(value)
        filt = _COMPRESSION[compression]
        image = {"shape": (0, h, w), "maxshape": (None, h, w), "chunks": (1, h, w), **filt}
        self._frames = (
            f.create_dataset("frames", dtype=np.dtype(frame_dtype), **image) if save_frames else None
        )
        self._labels = f.create_dataset("labels", dtype=np.uint16, **image)
        self._index = f.create_dataset(
            "frame_index", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.int64
        )
        self._time = f.create_dataset(
            "timestamp", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.float64
        )
        self._tracks = create_table(f, "tracks", TRACK_COLUMNS)
        f.swmr_mode = True

    def append(
        self,
        frame_index: int,
        timestamp: float,
        labels: np.ndarray,
        tracks: pd.DataFrame,
        frame: np.ndarray | None = None,
    ) -> None:
        """Record one processed frame.

        Parameters
        ----------
        frame_index : int
            Frame number (ingest seq), stored in ``/frame_index``.
        timestamp : float
            Acquisition time, s.
        labels : ndarray
            (H, W) uint16 label image.
        tracks : DataFrame
            This frame's rows with :data:`TRACK_COLUMNS`.
        frame : ndarray, optional
            Raw (H, W) frame; stored only if the recorder saves frames.
        """
        if self.closed:
            raise RuntimeError("recorder is closed")
        if labels.shape != self.frame_shape:
            raise ValueError(f"labels {labels.shape} differ from the recording's frames {self.frame_shape}")
        t = self.frames_written
        for ds, value in ((self._labels, labels), (self._frames, frame)):
            if ds is not None and value is not None:
                ds.resize(t + 1, axis=0)
                ds[t] = value
        if self._frames is not None and frame is None:
            self._frames.resize(t + 1, axis=0)  # keep rows aligned; an absent frame reads as zeros
        for ds, value in ((self._index, frame_index), (self._time, timestamp)):
            ds.resize((t + 1,))
            ds[t] = value
        if len(tracks):
            absent = {k: v for k, v in OPTIONAL_TRACK_COLUMNS.items() if k not in tracks.columns}
            if absent:
                tracks = tracks.assign(**absent)
            missing = set(TRACK_COLUMNS) - set(tracks.columns)
            if missing:
                raise ValueError(f"track rows lack columns {sorted(missing)}")
            self._pending.append(tracks[list(TRACK_COLUMNS)])
        self.frames_written = t + 1
        if self.frames_written - self.frames_flushed >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write buffered track rows and make every appended frame durable and visible to readers."""
        if self.closed:
            return
        if self._pending:
            append_rows(self._tracks, pd.concat(self._pending, ignore_index=True))
            self._pending = []
        self._f.flush()
        self.frames_flushed = self.frames_written

    def close(self, stats_writer: Callable[[h5py.File], None] | None = None) -> Path:
        """Flush, close, then write statistics into the closed-and-reopened file.

        Parameters
        ----------
        stats_writer : callable, optional
            ``stats_writer(h5_file)`` writes ``/stats`` (any objects; SWMR is off by then).

        Returns
        -------
        Path
            The final file.
        """
        if self.closed:
            return self.path
        self.flush()
        self._f.close()
        self.closed = True
        if stats_writer is not None:
            with h5py.File(self._write_path, "r+") as f:
                stats_writer(f)
        if self._write_path != self.path:
            os.replace(self._write_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close without finishing: an atomic recording's partial file is removed."""
        if not self.closed:
            self._f.close()
            self.closed = True
        if self._write_path != self.path:
            self._write_path.unlink(missing_ok=True)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_results(path: str | Path) -> h5py.File:
    """Open a results file read-only, also while it is being recorded or after a crash (SWMR;
    :func:`samem.io.h5.open_h5`, which says how many frames such a file holds)."""
    from samem.io.h5 import open_h5

    try:
        return open_h5(path)
    except SamemError as exc:
        text = str(exc).replace("not a readable HDF5 file", "not a readable results file")
        raise SamemError(text) from None
