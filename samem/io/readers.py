"""Lazy frame-by-frame video readers for every input samem accepts, chosen by file suffix.

:func:`open_video` returns a :class:`VideoReader`: ``len(reader)`` frames of ``reader.shape``
``(T, H, W)`` and ``reader.dtype``, read one at a time (``reader[i]``, ``for frame in reader``);
nothing is loaded up front. Frames are 2-D grayscale arrays (RGB inputs are converted).

Supported: HDF5 (``/frames`` of ``samem synth`` output and of results files), TIFF stacks
(memory-mapped when the file allows it, else page by page), MP4/AVI/MOV (OpenCV's FFmpeg
backend) and folders of images (JPEG/PNG/TIFF, natural sort order).

Adding a format is one function and one call: write ``opener(path) -> VideoReader`` and
``register_reader((".dm4", ".dm3"), opener)``; :func:`open_video` then dispatches on the suffix.
(DM3/DM4, MRC and EMD via RosettaSciIO are the intended next ones.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samem.errors import SamemError

log = logging.getLogger(__name__)

#: image suffixes a folder of frames may hold
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def to_gray(img: np.ndarray, order: str = "rgb") -> np.ndarray:
    """Convert an (H, W), (H, W, 3) or (H, W, 4) image to (H, W), keeping its dtype.

    Parameters
    ----------
    img : ndarray
        Image; colour channels last.
    order : {"rgb", "bgr"}
        Channel order of ``img`` (OpenCV decodes to BGR).

    Returns
    -------
    ndarray
        (H, W) luminance, ITU-R BT.601 weights, rounded back to integer dtypes.
    """
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise SamemError(f"cannot convert an image of shape {img.shape} to grayscale")
    if img.shape[2] == 1:
        return img[..., 0]
    rgb = img[..., :3].astype(np.float64)
    if order == "bgr":
        rgb = rgb[..., ::-1]
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.rint(gray), info.min, info.max).astype(img.dtype)
    return gray.astype(img.dtype)


class VideoReader:
    """A lazily read sequence of 2-D grayscale frames.

    Subclasses implement :meth:`_read` (one frame by index) and set ``shape``,
    ``dtype`` and ``metadata`` in their constructor.

    Attributes
    ----------
    path : Path
        The file or folder read.
    shape : tuple of int
        ``(T, H, W)``: frame count, rows, columns.
    dtype : numpy.dtype
        Dtype of every frame.
    metadata : dict
        At least ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s), each ``None`` when
        unknown, and ``format``.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of one frame, pixels."""
        return self.shape[1], self.shape[2]

    def __getitem__(self, index: int) -> np.ndarray:
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} out of range for {n} frames")
        return self._read(i)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self._read(i)

    def _read(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle (idempotent)."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def _short(exc: BaseException) -> str:
    """One line naming an exception, for user-facing messages."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _positive_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


# --------------------------------------------------------------------------- HDF5


class HDF5Reader(VideoReader):
    """``/frames`` (T, H, W) of an HDF5 file: ``samem synth`` output or a results file.

    Opened in SWMR read mode when possible so a recording still being written can be read;
    the frame count is fixed at open time.
    """

    def __init__(self, path: Path, dataset: str = "frames"):
        import h5py

        from samem.io.h5 import open_h5

        self.path = path
        self._file = open_h5(path, swmr=True)
        if dataset not in self._file:
            self._file.close()
            raise SamemError(
                f"{path}: no /{dataset} dataset (results recorded without raw frames cannot be re-analysed)"
            )
        ds = self._file[dataset]
        if not isinstance(ds, h5py.Dataset) or ds.ndim not in (3, 4):
            self._file.close()
            got = getattr(ds, "shape", "a group")
            raise SamemError(f"{path}: /{dataset} must be a (T, H, W) dataset, got {got}")
        self._ds = ds
        self.shape = tuple(int(s) for s in ds.shape[:3])
        self.dtype = np.dtype(ds.dtype)
        attrs = {**self._file.attrs, **ds.attrs}
        self.metadata = {
            "format": "hdf5",
            "pixel_size_nm": _positive_or_none(attrs.get("pixel_size_nm")),
            "frame_interval_s": _positive_or_none(attrs.get("frame_interval_s")),
        }

    def _read(self, i: int) -> np.ndarray:
        try:
            frame = self._ds[i]
        except (OSError, ValueError, KeyError) as exc:  # damaged chunks of a file
            raise SamemError(f"{self.path}: cannot read frame {i} of {len(self)} ({_short(exc)})") from None
        return to_gray(frame) if frame.ndim == 3 else frame

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()


# --------------------------------------------------------------------------- TIFF


def _tiff_metadata(tif) -> dict[str, Any]:
    """Pixel size (nm/px) and frame interval (s) from ImageJ TIFF metadata, when present."""
    meta: dict[str, Any] = {"pixel_size_nm": None, "frame_interval_s": None}
    ij = tif.imagej_metadata or {}
    meta["frame_interval_s"] = _positive_or_none(ij.get("finterval"))
    unit = str(ij.get("unit", "")).lower().replace("\\u00b5", "u").replace("µ", "u")
    units = {"nm": 1.0, "nanometer": 1.0, "um": 1e3, "micron": 1e3, "micrometer": 1e3, "a": 0.1}
    nm_per_unit = units.get(unit)
    if nm_per_unit is not None:
        tag = tif.pages[0].tags.get("XResolution")
        if tag is not None:
            num, den = tag.value
            px_per_unit = num / den if den else 0
            if px_per_unit > 0:
                meta["pixel_size_nm"] = _positive_or_none(nm_per_unit / px_per_unit)
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
                raise SamemError(f"{path}: not a readable TIFF file ({_short(exc)})") from None
            try:
                series = self._tif.series[0]
                len(self._tif.pages)  # reads every page header: a truncated file is noticed now
            except Exception as exc:
                self._tif.close()
                raise SamemError(f"{path}: not a readable TIFF file ({_short(exc)})") from None
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
            raise SamemError(f"{self.path}: cannot read frame {i} of {len(self)} ({_short(exc)})") from None
        if frame is None or frame.shape[:2] != self.frame_shape:
            raise SamemError(f"{self.path}: frame {i} is damaged (no image data of {self.frame_shape})")
        return to_gray(frame) if self._rgb else frame

    def close(self) -> None:
        self._mm = None
        self._tif.close()


# --------------------------------------------------------------------------- video files


class OpenCVVideoReader(VideoReader):
    """MP4/AVI/MOV through OpenCV's FFmpeg backend; sequential reads do not seek.

    ``metadata["frame_interval_s"]`` is 1 / the container's playback frame rate; exported
    videos often carry an arbitrary rate, so pass the true interval to :func:`open_video`.
    """

    def __init__(self, path: Path):
        import cv2

        self._cv2 = cv2
        self.path = path
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SamemError(f"{path}: cannot decode this video file")
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SamemError(f"{path}: video holds no decodable frame")
        self._next = 1
        self._first = to_gray(first, order="bgr")
        self.shape = (max(n, 1), *self._first.shape)
        self.dtype = self._first.dtype
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.metadata = {
            "format": "video",
            "pixel_size_nm": None,
            "frame_interval_s": _positive_or_none(1.0 / fps) if fps and fps > 0 else None,
            "frame_interval_from": "container frame rate",
        }

    def _read(self, i: int) -> np.ndarray:
        cv2 = self._cv2
        if i == 0:
            return self._first
        if i != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SamemError(f"{self.path}: could not decode frame {i} of {len(self)}")
        self._next = i + 1
        return to_gray(frame, order="bgr")

    def close(self) -> None:
        self._cap.release()


# --------------------------------------------------------------------------- image folders


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            img = tifffile.imread(path)
        except Exception as exc:  # damaged files raise many kinds
            raise SamemError(f"{path}: not a readable TIFF image ({_short(exc)})") from None
        if img.ndim == 3 and img.shape[0] in (3, 4) and img.shape[-1] not in (3, 4):
            img = np.moveaxis(img, 0, -1)
        return to_gray(img)
    import cv2

    with _c_stderr() as said:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    complaint = " ".join(" ".join(said).split())[:160]
    if img is None:
        raise SamemError(f"{path}: not a readable image" + (f" ({complaint})" if complaint else ""))
    if complaint:
        log.warning("%s: decoded with errors (%s)", path, complaint)
    return to_gray(img, order="bgr")


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _c_stderr() -> Iterator[list[str]]:
    """Collect what C decoders (libjpeg, libpng via OpenCV) print on file descriptor 2 during
    the block, so that it reaches the user once, inside samem's own message."""
    said: list[str] = []
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable descriptor 2: let the decoder print
            yield said
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield said
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                said.append(tmp.read(4096).decode(errors="replace"))


def read_label_image(path: str | Path) -> np.ndarray:
    """Instance labels from a PNG mask (DAVIS: palettised, value = object id; or 8/16-bit grey).

    Returns
    -------
    np.ndarray
        ``(H, W)`` uint16 object ids, 0 = background.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "I;16", "I"):
                raise SamemError(
                    f"{path}: label masks must be palettised or greyscale PNGs (value = object id), "
                    f"not mode {img.mode}"
                )
            labels = np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise SamemError(f"{path}: not a readable label image ({exc})") from None
    if labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max:
        raise SamemError(f"{path}: label values outside 0..65535")
    return labels.astype(np.uint16)


class ImageFolderReader(VideoReader):
    """A folder of JPEG/PNG/TIFF images, one frame each, in natural sort order (frame2 < frame10)."""

    def __init__(self, path: Path, files: Sequence[Path] | None = None):
        self.path = path
        files = sorted(
            files if files is not None else (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=_natural_key,
        )
        if not files:
            kinds = "/".join(s[1:].upper() for s in IMAGE_SUFFIXES)
            raise SamemError(f"{path}: folder holds no {kinds} images")
        self.files = list(files)
        first = _read_image(self.files[0])
        if first.ndim != 2:
            raise SamemError(f"{self.files[0]}: expected a 2-D image, got shape {first.shape}")
        self.shape = (len(self.files), *first.shape)
        self.dtype = first.dtype
        self.metadata = {"format": "images", "pixel_size_nm": None, "frame_interval_s": None}

    def _read(self, i: int) -> np.ndarray:
        img = _read_image(self.files[i])
        if img.shape != self.frame_shape or img.dtype != self.dtype:
            raise SamemError(
                f"{self.files[i]}: {img.shape} {img.dtype} differs from the first image "
                f"({self.frame_shape} {self.dtype}); all frames must match"
            )
        return img


# --------------------------------------------------------------------------- registry

Opener = Callable[[Path], VideoReader]
_REGISTRY: dict[str, Opener] = {}


def register_reader(suffixes: str | Sequence[str], opener: Opener) -> None:
    """Make :func:`open_video` open files with these suffixes (case-insensitive) with ``opener``.

    Parameters
    ----------
    suffixes : str or sequence of str
        File suffixes including the dot, e.g. ``(".dm3", ".dm4")``.
    opener : callable
        ``opener(path) -> VideoReader``; raises :class:`SamemError` for unreadable files.
    """
    for s in [suffixes] if isinstance(suffixes, str) else suffixes:
        _REGISTRY[s.lower()] = opener


def supported_suffixes() -> list[str]:
    """File suffixes with a registered reader, sorted (folders of images are always accepted)."""
    return sorted(_REGISTRY)


register_reader((".h5", ".hdf5", ".hdf"), HDF5Reader)
register_reader((".tif", ".tiff"), TiffReader)
register_reader((".mp4", ".avi", ".mov", ".mkv"), OpenCVVideoReader)


def open_video(
    path: str | Path, pixel_size_nm: float | None = None, frame_interval_s: float | None = None
) -> VideoReader:
    """Open a video file or image folder for lazy frame-by-frame reading.

    Parameters
    ----------
    path : str or Path
        HDF5/TIFF/MP4/AVI file or a folder of images.
    pixel_size_nm : float, optional
        Pixel size, nm/px; overrides what the file says.
    frame_interval_s : float, optional
        Time between frames, s; overrides what the file says.

    Returns
    -------
    VideoReader
        Use as a context manager or call ``close()``.

    Raises
    ------
    SamemError
        Missing path, unsupported suffix, unreadable file, or a non-positive override.
    """
    p = Path(path)
    for name, value in (("pixel_size_nm", pixel_size_nm), ("frame_interval_s", frame_interval_s)):
        if value is not None and _positive_or_none(value) is None:
            raise SamemError(f"{name} must be a positive number, got {value!r}")
    if not p.exists():
        raise SamemError(f"{p}: no such file or folder")
    if p.is_dir():
        reader: VideoReader = ImageFolderReader(p)
    else:
        opener = _REGISTRY.get(p.suffix.lower())
        if opener is None:
            raise SamemError(
                f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}; "
                f"supported: {', '.join(supported_suffixes())} or a folder of images"
            )
        reader = opener(p)
    if pixel_size_nm is not None:
        reader.metadata["pixel_size_nm"] = float(pixel_size_nm)
        reader.metadata["pixel_size_from"] = "given by the user"
    if frame_interval_s is not None:
        reader.metadata["frame_interval_s"] = float(frame_interval_s)
        reader.metadata["frame_interval_from"] = "given by the user"
    reader.metadata.setdefault("source", str(p))
    return reader


# DM3/DM4, MRC, EMD and vendor-calibrated TIFF through RosettaSciIO register themselves on import
from samem.io import emformats as _emformats  # noqa: E402,F401
