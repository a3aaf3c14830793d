"""TIFF stacks: memory-mapped when uncompressed, else page by page; ImageJ calibration, completed
from microscope vendor tags (Gatan, Thermo Fisher/FEI, Zeiss, JEOL) through RosettaSciIO when
it is installed (:class:`EMTiffReader`, the reader :func:`samem.io.readers.open_video` uses)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from samem.errors import SamemError
from samem.io.base import VideoReader, positive_or_none, rgb_to_luma, short_error
from samem.io.formats.em import CALIBRATION_SOURCES, tiff_calibration, warn_uncalibrated

SUFFIXES = (".tif", ".tiff")


def _tiff_metadata(tif) -> dict[str, Any]:
    """Pixel size (nm/px) and frame interval (s) from ImageJ TIFF metadata, when present."""
    meta: dict[str, Any] = {"pixel_size_nm": None, "frame_interval_s": None}
    ij = tif.imagej_metadata or {}
    meta["frame_interval_s"] = positive_or_none(ij.get("finterval"))
    unit = str(ij.get("unit", "")).lower().replace("\\u00b5", "u").replace("µ", "u")
    units = {"nm": 1.0, "nanometer": 1.0, "um": 1e3, "micron": 1e3, "micrometer": 1e3, "a": 0.1}
    nm_per_unit = units.get(unit)
    if nm_per_unit is not None:
        tag = tif.pages[0].tags.get("XResolution")
        if tag is not None:
            num, den = tag.value
            px_per_unit = num / den if den else 0
            if px_per_unit > 0:
                meta["pixel_size_nm"] = positive_or_none(nm_per_unit / px_per_unit)
    return meta


class _TiffComplaints(logging.Handler):
    """Collects what tifffile logs while it reads: on a damaged file it logs ERRORs and returns
    what it could (e.g. one page of a truncated stack) instead of raising."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split())[:160])

    def __enter__(self):
        self._logger = logging.getLogger("tifffile")
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False  # said once, in the SamemError, not as extra log lines
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


class TiffReader(VideoReader):
    """A TIFF stack: multi-page or one (T, H, W[, C]) series; memory-mapped when uncompressed."""

    def __init__(self, path: Path):
        import tifffile

        self.path = path
        with _TiffComplaints() as complaints:
            try:
                self._tif = tifffile.TiffFile(path)
            except Exception as exc:  # tifffile raises many kinds on damaged files: all the file's fault
                raise SamemError(f"{path}: not a readable TIFF file ({short_error(exc)})") from None
            try:
                series = self._tif.series[0]
                len(self._tif.pages)  # reads every page header: a truncated file is noticed now
            except Exception as exc:
                self._tif.close()
                raise SamemError(f"{path}: not a readable TIFF file ({short_error(exc)})") from None
        if complaints.messages:
            self._tif.close()
            raise SamemError(f"{path}: damaged or truncated TIFF (tifffile: {complaints.messages[0]})")
        shape = tuple(int(s) for s in series.shape)
        self._rgb = len(shape) >= 3 and shape[-1] in (3, 4) and series.axes.endswith("S")
        spatial = shape[:-1] if self._rgb else shape
        if len(spatial) == 2:
            spatial = (1, *spatial)
        if len(spatial) != 3:
            self._tif.close()
            raise SamemError(f"{path}: expected a (T, H, W) stack, got axes {series.axes} shape {shape}")
        self.shape = spatial
        self.dtype = np.dtype(series.dtype)
        self._series = series
        self._mm = None
        if series.dataoffset is not None:  # contiguous, uncompressed: map the file, read nothing now
            need = int(series.dataoffset) + int(np.prod(shape)) * self.dtype.itemsize
            have = path.stat().st_size
            if need > have:
                self._tif.close()
                raise SamemError(
                    f"{path}: truncated TIFF: its {'x'.join(map(str, shape))} {self.dtype} stack needs "
                    f"{need} bytes, the file has {have} (an interrupted copy or acquisition?)"
                )
            self._mm = np.memmap(
                path,
                dtype=self.dtype.newbyteorder(self._tif.byteorder),
                mode="r",
                offset=series.dataoffset,
                shape=spatial + ((shape[-1],) if self._rgb else ()),
            )
        self.metadata = {"format": "tiff", **_tiff_metadata(self._tif)}

    def _read(self, i: int) -> np.ndarray:
        try:
            if self._mm is not None:
                frame = np.asarray(self._mm[i])
            else:
                pages = self._series.pages
                if len(pages) == self.shape[0]:
                    frame = pages[i].asarray()
                else:  # one page holds the whole stack (e.g. a single compressed volume)
                    frame = self._series.asarray().reshape(self.shape + ((-1,) if self._rgb else ()))[i]
        except Exception as exc:  # truncated or damaged page data
            where = f"{self.path}: cannot read frame {i} of {len(self)}"
            raise SamemError(f"{where} ({short_error(exc)})") from None
        if frame is None or frame.shape[:2] != self.frame_shape:
            raise SamemError(f"{self.path}: frame {i} is damaged (no image data of {self.frame_shape})")
        return rgb_to_luma(frame) if self._rgb else frame

    def close(self) -> None:
        self._mm = None
        self._tif.close()


class EMTiffReader(TiffReader):
    """A TIFF stack (see :class:`TiffReader`) whose missing calibration is
    completed from microscope vendor tags through RosettaSciIO."""

    def __init__(self, path: Path):
        super().__init__(path)
        wanted = [k for k in ("pixel_size_nm", "frame_interval_s") if self.metadata.get(k) is None]
        if wanted:
            ndim = 3 if self.shape[0] > 1 else 2
            cal = tiff_calibration(path, ndim)
            for key, source in CALIBRATION_SOURCES:
                if key in wanted and cal.get(key) is not None:
                    self.metadata[key] = cal[key]
                    self.metadata[source] = cal[source]
        warn_uncalibrated(path, self.metadata)
