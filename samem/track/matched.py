"""Matched-filter particle positions (``TrackerOptions.centroid = "matched"``).

The intensity centroid (:mod:`samem.track.centroid`) weighs every pixel of the mask region
by that pixel's own noisy contrast. A matched filter weighs the frame by what the particle
looks like, known far better from many frames than from one. Per object:

1. start: the particle's background-free contrast (:func:`~samem.track.centroid.local_contrast`)
   and its intensity centroid on this frame;
2. match: the cross-correlation of the object's template with the contrast, for whole-pixel
   shifts of up to :data:`REACH` px around the start, its peak refined by a parabola along
   each axis: where the template's middle lies on this frame;
3. position: that point plus the template's own contrast-weighted centre (relative to its
   middle), so positions refer to the particle's mean centre of contrast, not to wherever
   the template first started;
4. template: the running mean of the particle's contrast patches (``2 half + 1`` px square,
   ``half`` = ``half_width`` x the longest side of the object's prompt box), each cut
   sub-pixel around its frame's intensity centroid, whose errors are independent of the
   template (aligning on the matched points instead feeds the template's errors back into
   it; measured slightly worse); a new frame weighs ``max(1 / n, rate)`` (a plain mean over
   the first ``1 / rate`` frames, then exponential).

The first frame of a template reports the intensity centroid. Where the patch would leave
the frame (a particle at the border) the intensity centroid is reported and the template is
left as it was. The tracker starts a new template when the object is absent or prompted
again. Masks, presence and the ROI window never depend on it.
"""

from __future__ import annotations

import cv2
import numpy as np

from samem.track.centroid import Contrast, weighted_centroid

#: largest shift (px) searched around the intensity centroid
REACH = 3


def _vertex(left: float, mid: float, right: float) -> float:
    """Offset (-0.5 .. 0.5) of the peak of the parabola through three samples around ``mid``."""
    curve = left - 2 * mid + right
    return 0.5 * (left - right) / curve if curve < 0 else 0.0


class MatchedFilter:
    """One object's matched-filter position (module docstring).

    Parameters
    ----------
    rate
        Smallest weight of a new frame in the template (0-1): about ``1 / rate`` frames
        shape it.
    half_width
        Half the template's side in units of the object's prompt-box side (its longest side).
    """

    def __init__(self, rate: float, half_width: float):
        self.rate, self.half_width = float(rate), float(half_width)
        self.clear()

    def clear(self) -> None:
        """Forget the template (the next frame starts a new one)."""
        self.template: np.ndarray | None = None
        self.frames = 0

    def nbytes(self) -> int:
        return 0 if self.template is None else self.template.nbytes

    def __call__(
        self, contrast: Contrast, start: tuple[float, float], box_side: float
    ) -> tuple[float, float]:
        """Position ``(x, y)`` (frame px) of the particle on this frame.

        Parameters
        ----------
        contrast
            The particle's contrast on this frame.
        start
            Its intensity centroid ``(x, y)`` on this frame (frame px).
        box_side
            Longest side of the object's prompt box (px); sets the template size when one starts.
        """
        local = (start[0] - contrast.x0, start[1] - contrast.y0)  # crop px; templates align on it
        if self.template is None:
            half = max(2, round(self.half_width * box_side))
            if not _inside(contrast.image, local, half):
                return start
            self.template, self.frames = _patch(contrast.image, local, half), 1
            return start
        half = self.template.shape[0] // 2
        cx, cy = round(local[0]), round(local[1])
        if not _inside(contrast.image, (cx, cy), half + REACH):
            return start
        score = cv2.matchTemplate(_patch(contrast.image, (cx, cy), half + REACH), self.template, cv2.TM_CCORR)
        iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
        dx = _vertex(*score[iy, ix - 1 : ix + 2]) if 0 < ix < 2 * REACH else 0.0
        dy = _vertex(*score[iy - 1 : iy + 2, ix]) if 0 < iy < 2 * REACH else 0.0
        found = (cx + ix - REACH + dx, cy + iy - REACH + dy)  # the template's middle, crop px
        centre = _centre(self.template)
        weight = max(1.0 / (self.frames + 1), self.rate)
        self.template = (1 - weight) * self.template + weight * _patch(contrast.image, local, half)
        self.frames += 1
        return found[0] + centre[0] + contrast.x0, found[1] + centre[1] + contrast.y0


def _inside(image: np.ndarray, centre: tuple[float, float], half: int) -> bool:
    """Whether the ``2 half + 1`` px square around ``centre`` lies within ``image``."""
    h, w = image.shape
    x, y = round(centre[0]), round(centre[1])
    return half <= x < w - half - 1 and half <= y < h - half - 1


def _patch(image: np.ndarray, centre: tuple[float, float], half: int) -> np.ndarray:
    """The ``2 half + 1`` px square of ``image`` whose middle pixel lies on ``centre`` (sub-pixel)."""
    shift = np.float32([[1, 0, half - centre[0]], [0, 1, half - centre[1]]])
    side = 2 * half + 1
    return cv2.warpAffine(image, shift, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _centre(template: np.ndarray) -> tuple[float, float]:
    """The template's contrast-weighted centre relative to its middle pixel (px)."""
    half = template.shape[0] // 2
    found = weighted_centroid(Contrast(template, np.ones(template.shape, bool), -half, -half))
    return found or (0.0, 0.0)
