"""Electron-microscopy file formats through RosettaSciIO: Gatan DM3/DM4, MRC, EMD, and the vendor
calibration of TIFF files.

:func:`openers` gives the readers of ``.dm3``, ``.dm4``, ``.mrc``, ``.mrcs`` and ``.emd``
(Velox and Berkeley/NCEM variants) files to :mod:`samem.io.readers`' registry;
:func:`tiff_calibration` reads the calibration tags of Gatan, Thermo Fisher/FEI, Zeiss and JEOL
software for :class:`samem.io.formats.tiff.EMTiffReader`. Importing this module registers nothing.

Frames are read lazily: RosettaSciIO maps the file (``lazy=True``, a dask array) and the
reader computes one block of consecutive frames at a time, at most ``block_mib`` MiB, keeping
only the latest block. Memory therefore does not grow with the video length. For TIFF the
frames come from :class:`samem.io.formats.tiff.TiffReader` (memory-mapped or page by page; the
RosettaSciIO TIFF reader would load the whole stack at once) and RosettaSciIO only supplies
the calibration the ImageJ tags did not.

Calibration comes from the axes RosettaSciIO reports: the two image axes give the pixel size,
converted to nm (from m, µm, nm, Å ...), and the first axis of a stack, when its unit is a
time, gives the frame interval, converted to s. Anything else (no unit, pixels, a reciprocal
or angular unit) leaves the value ``None``: analyses then report pixels and frames unless the
user passes ``pixel_size_nm`` / ``frame_interval_s``, which always take precedence.

RosettaSciIO is an optional dependency (``pip install samem[formats]``); without it these
suffixes raise :class:`SamemError` saying so.
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from samem.errors import SamemError
from samem.io.base import Opener, VideoReader

log = logging.getLogger(__name__)

#: default upper bound of the frames read at once, MiB (one block of consecutive frames)
BLOCK_MIB = 16

#: suffix -> (RosettaSciIO plugin module, format name used in messages and metadata)
FORMATS = {
    ".dm3": ("digitalmicrograph", "Gatan DM3"),
    ".dm4": ("digitalmicrograph", "Gatan DM4"),
    ".mrc": ("mrc", "MRC"),
    ".mrcs": ("mrc", "MRC"),
    ".emd": ("emd", "EMD"),
}
# plugins whose file_reader memory-maps the file and accepts a dask ``chunks`` request
_CHUNKED = {"digitalmicrograph", "mrc"}
# MRC MODE -> bytes per value, for the modes RosettaSciIO reads
_MRC_ITEMSIZE = {0: 1, 1: 2, 2: 4, 4: 8, 6: 2, 12: 2}
# unit spellings pint reads differently from microscopists ("A" would be ampere)
_UNIT_ALIASES = {"a": "angstrom", "å": "angstrom", "ang": "angstrom", "sec": "s", "secs": "s"}
CALIBRATION_SOURCES = (("pixel_size_nm", "pixel_size_from"), ("frame_interval_s", "frame_interval_from"))
_WHAT = {"pixel_size_nm": ("pixel size", "pixels"), "frame_interval_s": ("frame interval", "frames")}
_NO_UNIT = {"", "none", "<undefined>", "undefined", "unknown", "px", "pix", "pixel", "pixels", "frames"}


# --------------------------------------------------------------------------- units


@functools.lru_cache(maxsize=1)
def _units():
    import pint

    return pint.UnitRegistry()


def convert_scale(value: Any, units: Any, target: str) -> float | None:
    """Convert an axis scale ``value`` in ``units`` to ``target`` units.

    Parameters
    ----------
    value : float
        Axis step as stored in the file.
    units : str or None
        Its unit as the file spells it (``"µm"``, ``"Å"``, ``"A"``, ``"ms"``, ...).
    target : str
        ``"nm"`` for lengths, ``"s"`` for times.

    Returns
    -------
    float or None
        The positive, finite converted value; None when the unit is missing, not a unit of
        the target's dimension (e.g. ``1/nm`` or ``mrad`` for a length) or cannot be parsed.
    """
    if units is None:
        return None
    text = str(units).strip()
    if text.lower() in _NO_UNIT:
        return None
    text = _UNIT_ALIASES.get(text.lower(), text)
    try:
        v = float(_units().Quantity(float(value), text).to(target).magnitude)
    except Exception:  # any unparsable or incompatible unit string from a file means "unknown"
        return None
    return v if math.isfinite(v) and v > 0 else None


def calibration_from_axes(axes: Sequence[dict], ndim: int) -> dict[str, Any]:
    """Pixel size (nm/px) and frame interval (s) from RosettaSciIO axis dictionaries.

    Parameters
    ----------
    axes : sequence of dict
        One dict per array dimension (``scale``, ``units``, optional ``index_in_array``), in
        array order or carrying ``index_in_array``.
    ndim : int
        2 for an image, 3 for a (T, H, W) stack.

    Returns
    -------
    dict
        ``pixel_size_nm`` and ``frame_interval_s`` (None when unknown) and, for each known
        value, ``pixel_size_from`` / ``frame_interval_from`` describing the conversion.
    """
    ordered: list[dict | None] = [None] * ndim
    for pos, ax in enumerate(axes):
        i = int(ax.get("index_in_array", pos))
        if 0 <= i < ndim:
            ordered[i] = ax
    out: dict[str, Any] = {"pixel_size_nm": None, "frame_interval_s": None}
    y_ax, x_ax = ordered[-2], ordered[-1]
    if x_ax is not None:
        x_nm = convert_scale(x_ax.get("scale", 1.0), x_ax.get("units"), "nm")
        if x_nm is not None:
            y_nm = convert_scale(y_ax.get("scale", 1.0), y_ax.get("units"), "nm") if y_ax else None
            if y_nm is not None and abs(y_nm - x_nm) > 1e-3 * x_nm:
                log.warning("non-square pixels (x %.6g nm, y %.6g nm): using the x (column) size", x_nm, y_nm)
            out["pixel_size_nm"] = x_nm
            out["pixel_size_from"] = f"file metadata: {float(x_ax['scale']):.6g} {x_ax['units']}/px"
    if ndim == 3 and ordered[0] is not None:
        t_ax = ordered[0]
        dt = convert_scale(t_ax.get("scale", 1.0), t_ax.get("units"), "s")
        if dt is not None:
            out["frame_interval_s"] = dt
            out["frame_interval_from"] = f"file metadata: {float(t_ax['scale']):.6g} {t_ax['units']}/frame"
    return out


def warn_uncalibrated(path: Path, meta: dict) -> None:
    missing = [k for k in ("pixel_size_nm", "frame_interval_s") if meta.get(k) is None]
    if missing:
        log.warning(
            "%s: the file metadata give no %s; statistics will be in %s unless %s is given",
            path,
            " and no ".join(_WHAT[k][0] for k in missing),
            " and ".join(_WHAT[k][1] for k in missing),
            " / ".join(k for k in missing),
        )


# --------------------------------------------------------------------------- RosettaSciIO readers


def _plugin(name: str, path: Path, fmt: str):
    try:
        return importlib.import_module(f"rsciio.{name}")
    except ImportError:
        raise SamemError(
            f"{path}: reading {fmt} files needs RosettaSciIO (pip install 'samem[formats]')"
        ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_mrc_size(path: Path) -> None:
    """Check an MRC header against the file size (RosettaSciIO maps whatever the header says)."""
    size = path.stat().st_size
    if size < 1024:
        raise SamemError(f"{path}: not a readable MRC file ({size} bytes, less than the 1024-byte header)")
    words = np.fromfile(path, dtype="<i4", count=24)  # little-endian, as RosettaSciIO reads it
    nx, ny, nz, mode, next_bytes = (int(v) for v in (*words[:4], words[23]))
    itemsize = _MRC_ITEMSIZE.get(mode)
    if itemsize is None or min(nx, ny, nz) < 1 or next_bytes < 0:
        raise SamemError(f"{path}: not a readable MRC file (header: {nx}x{ny}x{nz} values of mode {mode})")
    needed = 1024 + next_bytes + nx * ny * nz * itemsize
    if size < needed:
        raise SamemError(
            f"{path}: not a readable MRC file (the header announces {nz} frames of {ny}x{nx}, "
            f"{needed} bytes, but the file has {size}: truncated?)"
        )


def _image_stacks(signals: list[dict]) -> list[dict]:
    """Signals that are grayscale images or (T, H, W) stacks."""
    out = []
    for s in signals:
        data = s.get("data")
        dtype = np.dtype(getattr(data, "dtype", object))
        if getattr(data, "ndim", 0) in (2, 3) and dtype.names is None and dtype.kind in "biuf":
            out.append(s)
    return out


def _describe(signals: list[dict]) -> str:
    parts = []
    for s in signals:
        data = s.get("data")
        parts.append(f"{tuple(getattr(data, 'shape', ()))} {getattr(data, 'dtype', '?')}")
    return ", ".join(parts) or "nothing"


class _Block(NamedTuple):
    """The block of consecutive frames :class:`RsciioReader` holds: its number and its frames."""

    index: int
    frames: np.ndarray


class RsciioReader(VideoReader):
    """A (T, H, W) image stack from a file RosettaSciIO reads, computed block by block.

    When the file holds several signals (e.g. several detectors in a Velox EMD), the image
    stack with the most frames is used (the first of equals); ``metadata["signal"]`` names it.

    Parameters
    ----------
    path : Path
        The file.
    plugin : str
        RosettaSciIO plugin module (``"digitalmicrograph"``, ``"mrc"``, ``"emd"``).
    fmt : str
        Format name for messages and ``metadata["format"]``.
    block_mib : float
        Largest block of consecutive frames computed at once, MiB (at least one frame).
    """

    def __init__(self, path: Path, plugin: str, fmt: str, block_mib: float = BLOCK_MIB):
        import dask

        self.path = path
        self._data = None
        self._block: _Block | None = None
        module = _plugin(plugin, path, fmt)
        if plugin == "mrc":
            _check_mrc_size(path)
        kwargs: dict[str, Any] = {"chunks": {0: "auto"}} if plugin in _CHUNKED else {}
        if plugin == "emd":
            kwargs["select_type"] = "images"  # Velox: skip spectra and spectrum images
        failure = None
        try:
            with dask.config.set({"array.chunk-size": f"{max(float(block_mib), 0.001)}MiB"}):
                signals = module.file_reader(str(path), lazy=True, **kwargs)
        except Exception as exc:  # a third-party parser failing on a user's file is a user-facing error
            failure = _reason(exc)
        if failure is not None:  # raised here, without the parser's traceback holding its open file
            gc.collect()
            raise SamemError(f"{path}: not a readable {fmt} file ({failure})")
        stacks = _image_stacks(signals)
        if not stacks:
            found = _describe(signals)
            signals = None
            gc.collect()
            raise SamemError(f"{path}: no grayscale image or image stack in this {fmt} file (found {found})")
        chosen = max(stacks, key=lambda s: s["data"].shape[0] if s["data"].ndim == 3 else 1)
        data = chosen["data"]
        if not hasattr(data, "compute"):  # a reader that returned an in-memory array
            import dask.array as da

            data = da.from_array(np.asarray(data), chunks={0: 1})
        ndim = data.ndim
        if ndim == 2:
            data = data[None]
        if data.dtype.kind == "b":
            data = data.astype(np.uint8)
        frame_bytes = max(1, int(np.prod(data.shape[1:])) * data.dtype.itemsize)
        per_block = max(1, int(float(block_mib) * 2**20 // frame_bytes))
        if max(data.chunks[0]) < per_block and data.shape[0] > max(data.chunks[0]):
            # files chunked frame by frame (Velox): compute several frames per dask call
            data = data.rechunk({0: per_block, 1: -1, 2: -1})
        self._data = data
        self.shape = tuple(int(s) for s in data.shape)
        self.dtype = np.dtype(data.dtype)
        self._starts = np.concatenate([[0], np.cumsum(data.chunks[0])]).astype(int)
        title = (chosen.get("metadata") or {}).get("General", {}).get("title", "")
        self.metadata = {
            "format": fmt,
            "signal": str(title),
            "signals_in_file": len(signals),
            **calibration_from_axes(chosen.get("axes") or [], ndim),
        }
        warn_uncalibrated(path, self.metadata)

    def _read(self, i: int) -> np.ndarray:
        b = int(np.searchsorted(self._starts, i, side="right")) - 1
        if self._block is None or self._block.index != b:
            start, stop = self._starts[b], self._starts[b + 1]
            self._block = None  # free the old block before reading the next
            try:
                block = self._data[start:stop].compute(scheduler="synchronous")
            except (OSError, ValueError) as exc:  # truncated or corrupted data on disk
                where = f"{self.path}: could not read frames {start}-{stop - 1}"
                raise SamemError(f"{where} ({_reason(exc)})") from None
            self._block = _Block(b, np.asarray(block))
        return self._block.frames[i - self._starts[b]].copy()

    def close(self) -> None:
        """Drop the block and the dask graph; HDF5-based formats close their file here."""
        if self._data is not None:
            self._block = None
            self._data = None
            gc.collect()  # the graph holds the h5py datasets, and through them the open file


def _opener(plugin: str, fmt: str):
    def open_file(path: Path) -> VideoReader:
        return RsciioReader(path, plugin, fmt)

    open_file.__name__ = f"open_{plugin}"
    open_file.__doc__ = f"Open a {fmt} file with :class:`RsciioReader`."
    return open_file


def openers() -> dict[str, Opener]:
    """Suffix -> opener of every format of :data:`FORMATS` (for :mod:`samem.io.readers`' registry)."""
    return {suffix: _opener(plugin, fmt) for suffix, (plugin, fmt) in FORMATS.items()}


# --------------------------------------------------------------------------- TIFF calibration


def tiff_calibration(path: Path, ndim: int) -> dict[str, Any]:
    """Calibration RosettaSciIO reads from a TIFF's Gatan, FEI, Zeiss, JEOL or Olympus tags.

    Returns the dict of :func:`calibration_from_axes`, or ``{}`` when RosettaSciIO is not
    installed or cannot parse the tags (the frames are still readable without them).
    """
    try:
        from rsciio.tiff import file_reader
    except ImportError:
        return {}
    # RosettaSciIO's lazy TIFF reader keeps the file open with no way to close it: drop every
    # reference and collect, so the handle is closed here rather than at some later time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            signals = file_reader(str(path), lazy=True)
            axes = [dict(ax) for ax in signals[0]["axes"]] if signals else []
        except Exception as exc:  # calibration is optional; the frames come from tifffile
            log.debug("%s: RosettaSciIO could not read the TIFF calibration (%s)", path, _reason(exc))
            axes = []
        finally:
            signals = None
            gc.collect()
    if len(axes) < 2:
        return {}
    return calibration_from_axes(axes[-ndim:], ndim)
