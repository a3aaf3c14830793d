"""Video files (MP4/AVI/MOV/MKV) through OpenCV's FFmpeg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samem.errors import SamemError
from samem.io.base import VideoReader, positive_or_none, rgb_to_luma

SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


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
        self._first = rgb_to_luma(first, order="bgr")
        self.shape = (max(n, 1), *self._first.shape)
        self.dtype = self._first.dtype
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.metadata = {
            "format": "video",
            "pixel_size_nm": None,
            "frame_interval_s": positive_or_none(1.0 / fps) if fps and fps > 0 else None,
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
        return rgb_to_luma(frame, order="bgr")

    def close(self) -> None:
        self._cap.release()
