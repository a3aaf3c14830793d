"""Object-aligned frame stacking for a second, cleaner look (``TrackerOptions.stack_frames``).

On a thick-liquid frame a faint particle's per-pixel SNR can be 0.2–0.3: its outline is
below the noise on any single frame, and SAM 2's mask keeps only its brightest core (a rod
loses its tips). The particle moves, so averaging frames in the frame's own coordinates
smears it; averaged in the particle's own frame of reference (each past window shifted so
that the particle's centroid on that frame lands on the current centroid) the particle adds
up and the noise averages out, as a ``k``-times higher dose would give.

:class:`FrameStack` keeps one object's last ``frames - 1`` normalised windows with their
centroids; :meth:`FrameStack.stacked` returns the mean of the current window and the past
ones aligned onto it (sub-pixel, bilinear; each pixel divided by the number of windows that
cover it). The tracker segments that stacked window with SAM 2, from the same memory, after
its ordinary step. Causal and bounded, like :mod:`samem.track.smooth`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class _Past:
    image: np.ndarray  # float32 (side, side) normalised window
    origin: tuple[int, int]  # (x0, y0): frame pixel of image[0, 0]
    centroid: tuple[float, float]  # (x, y) frame px: the object's centroid on that frame


class FrameStack:
    """Object-aligned running mean of one object's normalised windows.

    Parameters
    ----------
    frames
        Windows averaged, the current one included (>= 1; 1 returns the current window).
    """

    def __init__(self, frames: int):
        if frames < 1:
            raise ValueError("frames must be at least 1")
        self.frames = int(frames)
        self._past: deque[_Past] = deque(maxlen=self.frames - 1)

    def __len__(self) -> int:
        """Past windows held."""
        return len(self._past)

    def clear(self) -> None:
        """Forget the history (the object vanished or was re-prompted)."""
        self._past.clear()

    def nbytes(self) -> int:
        """Bytes held by the history."""
        return sum(p.image.nbytes for p in self._past)

    def push(self, image: np.ndarray, origin: tuple[int, int], centroid: tuple[float, float]) -> None:
        """Keep the current window ``image`` (top-left frame pixel ``origin``) and the object's
        ``centroid`` on it (x, y; frame px) for the next frames."""
        img = np.asarray(image, dtype=np.float32)
        where = (int(origin[0]), int(origin[1]))
        self._past.append(_Past(img, where, (float(centroid[0]), float(centroid[1]))))

    def stacked(
        self, image: np.ndarray, origin: tuple[int, int], centroid: tuple[float, float]
    ) -> np.ndarray:
        """Mean of ``image`` and the past windows, each shifted so that its centroid lies on
        ``centroid`` (float32, ``image``'s shape); pixels no past window covers keep the
        mean of those that do (at least the current one)."""
        img = np.asarray(image, dtype=np.float32)
        if not self._past:
            return img.copy()
        h, w = img.shape
        total, count, ones = img.copy(), np.ones_like(img), np.ones_like(img)
        warp = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        for p in self._past:  # one side per history: the tracker clears it when the side changes
            dx = p.origin[0] - origin[0] + centroid[0] - p.centroid[0]
            dy = p.origin[1] - origin[1] + centroid[1] - p.centroid[1]
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            total += cv2.warpAffine(p.image, shift, (w, h), **warp)
            count += cv2.warpAffine(ones, shift, (w, h), **warp)
        return total / count
