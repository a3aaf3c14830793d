"""Folders of images (JPEG/PNG/TIFF, one frame each, natural sort order) and PNG label masks."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from samem.errors import SamemError
from samem.io.base import VideoReader, rgb_to_luma, short_error

log = logging.getLogger(__name__)

#: image suffixes a folder of frames may hold
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            img = tifffile.imread(path)
        except Exception as exc:  # damaged files raise many kinds
            raise SamemError(f"{path}: not a readable TIFF image ({short_error(exc)})") from None
        if img.ndim == 3 and img.shape[0] in (3, 4) and img.shape[-1] not in (3, 4):
            img = np.moveaxis(img, 0, -1)
        return rgb_to_luma(img)
    import cv2

    with _c_stderr() as said:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    complaint = " ".join(" ".join(said).split())[:160]
    if img is None:
        raise SamemError(f"{path}: not a readable image" + (f" ({complaint})" if complaint else ""))
    if complaint:
        log.warning("%s: decoded with errors (%s)", path, complaint)
    return rgb_to_luma(img, order="bgr")


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
