"""Temporal mask smoothing in the object's own frame (``TrackerOptions.smooth_frames``).

On a noisy frame SAM 2's mask boundary follows the shot noise; the particle's shape changes
far more slowly than the noise does. :class:`MaskSmoother` averages one object's mask
*probability* over its last ``frames`` frames, each shifted so that its centroid lands on the
current frame's centroid (translation only: rotation over a few frames is small for diffusing
particles), and thresholds the mean at ``threshold`` (``TrackerOptions.mask_threshold``,
0.5 by default; with ``frames`` = 1 that threshold is all it applies). Causal, so live and
offline give the same masks; it changes reported masks (and the centroids measured from
them) only: SAM 2's memory is encoded from the model's own mask, as without smoothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class _Past:
    prob: np.ndarray  # float32 (h, w) mask probability
    origin: tuple[int, int]  # (x0, y0): frame pixel of prob[0, 0]
    centroid: tuple[float, float]  # (x, y) of the unsmoothed mask, frame px


class MaskSmoother:
    """Object-aligned running mean of one object's mask probability.

    Parameters
    ----------
    frames
        Frames averaged, the current one included; 1 thresholds each mask on its own.
    threshold
        Probability the (mean) mask must exceed; 0.5 is SAM 2's own rule.
    """

    def __init__(self, frames: int, threshold: float = 0.5):
        if frames < 1:
            raise ValueError("frames must be at least 1")
        if not 0 < threshold < 1:
            raise ValueError("threshold must be in (0, 1)")
        self.frames = int(frames)
        self.threshold = float(threshold)
        self._past: deque[_Past] = deque(maxlen=self.frames - 1)

    @property
    def active(self) -> bool:
        """Whether it changes anything: more than one frame, or another threshold than 0.5."""
        return self.frames > 1 or self.threshold != 0.5

    def clear(self) -> None:
        """Forget the history (the object vanished or was re-prompted)."""
        self._past.clear()

    def nbytes(self) -> int:
        """Bytes held by the history."""
        return sum(p.prob.nbytes for p in self._past)

    def __call__(
        self, prob: np.ndarray, origin: tuple[int, int], centroid: tuple[float, float]
    ) -> np.ndarray:
        """Smoothed mask (bool, ``prob``'s shape) for the current frame.

        Parameters
        ----------
        prob
            Mask probability (0–1) on a region of the current frame.
        origin
            ``(x0, y0)`` frame pixel of ``prob[0, 0]``.
        centroid
            ``(x, y)`` centroid of ``prob > 0.5`` in frame pixels.
        """
        prob = np.asarray(prob, dtype=np.float32)
        if self.frames == 1:
            return prob > self.threshold
        h, w = prob.shape
        total = prob.copy()
        for p in self._past:
            # past pixel (u, v) sits at frame (u + p.x0, v + p.y0); moved by the centroid step
            dx = p.origin[0] - origin[0] + centroid[0] - p.centroid[0]
            dy = p.origin[1] - origin[1] + centroid[1] - p.centroid[1]
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            total += cv2.warpAffine(
                p.prob, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        n = 1 + len(self._past)
        origin = (int(origin[0]), int(origin[1]))
        self._past.append(_Past(prob, origin, (float(centroid[0]), float(centroid[1]))))
        return total > self.threshold * n
