"""The reader protocol every input format implements, and the helpers the format modules share.

A format family (one module in :mod:`samem.io.formats`) provides readers: subclasses of
:class:`VideoReader` whose constructor takes the path and raises :class:`SamemError` for an
unreadable file. :mod:`samem.io.readers` holds the registry (suffix -> opener) and
:func:`samem.io.readers.open_video`. This module imports no format module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from samem.errors import SamemError
from samem.jsonsafe import positive_or_none

__all__ = ["Opener", "VideoReader", "positive_or_none", "rgb_to_luma", "short_error"]


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


#: ``opener(path) -> VideoReader``; raises :class:`SamemError` for unreadable files
Opener = Callable[[Path], VideoReader]


def short_error(exc: BaseException) -> str:
    """One line naming an exception, for user-facing messages."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def rgb_to_luma(img: np.ndarray, order: str = "rgb") -> np.ndarray:
    """Convert an (H, W), (H, W, 3) or (H, W, 4) image to (H, W), keeping its dtype.

    (Readers use this to decode colour files; the tracker's own normalisation,
    :func:`samem.track.preprocess.to_gray`, returns float32 and averages the channels.)

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
