"""Open any video samem accepts: the registry of readers by file suffix, and :func:`open_video`.

:func:`open_video` returns a :class:`~samem.io.base.VideoReader`: ``len(reader)`` frames of
``reader.shape`` ``(T, H, W)`` and ``reader.dtype``, read one at a time (``reader[i]``,
``for frame in reader``); nothing is loaded up front. Frames are 2-D grayscale arrays (RGB
inputs are converted).

Supported (one module of :mod:`samem.io.formats` per family): HDF5 (``/frames`` of ``samem
synth`` output and of results files), TIFF stacks (memory-mapped when the file allows it, else
page by page; ImageJ and vendor calibration), MP4/AVI/MOV/MKV (OpenCV's FFmpeg backend),
folders of images (JPEG/PNG/TIFF, natural sort order), and Gatan DM3/DM4, MRC and EMD through
RosettaSciIO (``pip install samem[formats]``).

The registry is explicit: :data:`BUILTIN` below lists every suffix and its reader, and no
module registers itself on import. Adding a format is one module in :mod:`samem.io.formats`
(a :class:`~samem.io.base.VideoReader` subclass) and one line in :data:`BUILTIN`; a program can
also call :func:`register_reader` (e.g. ``register_reader((".xyz",), open_xyz)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from samem.errors import SamemError
from samem.io.base import Opener, VideoReader, positive_or_none
from samem.io.formats import em, hdf5, tiff, video
from samem.io.formats.images import IMAGE_SUFFIXES, ImageFolderReader

__all__ = ["BUILTIN", "IMAGE_SUFFIXES", "open_video", "register_reader", "supported_suffixes"]

#: suffix -> opener of every format samem reads out of the box
BUILTIN: dict[str, Opener] = {
    **dict.fromkeys(hdf5.SUFFIXES, hdf5.HDF5Reader),
    **dict.fromkeys(tiff.SUFFIXES, tiff.EMTiffReader),
    **dict.fromkeys(video.SUFFIXES, video.OpenCVVideoReader),
    **em.openers(),
}

_REGISTRY: dict[str, Opener] = dict(BUILTIN)


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


def open_video(
    path: str | Path, pixel_size_nm: float | None = None, frame_interval_s: float | None = None
) -> VideoReader:
    """Open a video file or image folder for lazy frame-by-frame reading.

    Parameters
    ----------
    path : str or Path
        A file with a registered suffix (:func:`supported_suffixes`) or a folder of images.
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
        if value is not None and positive_or_none(value) is None:
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
