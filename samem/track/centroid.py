"""Intensity-weighted particle centroids (``TrackerOptions.centroid = "intensity"``).

The centroid of a binary mask moves with every pixel the noisy boundary gains or loses. The
particle's contrast, summed over a region slightly larger than the mask, is a less noisy
position estimate (trackpy's "mass" centroid, here in a region the mask gives):

1. region: the mask dilated by ``dilate`` x the prompt-box side (so a mask that missed the
   faint rim still covers the particle);
2. background: a plane fitted to a ring around it (``ring`` x the box side wide, starting
   2 px outside the region; pixels off the plane by more than 3 robust sigmas, such as a
   neighbouring particle, are dropped and the plane refitted), so a thickness or
   illumination gradient across the particle does not pull the centroid;
3. weights: the contrast against that background, with the particle's sign (dark particles:
   background minus intensity), negative values set to 0;
4. centroid: the weighted mean pixel index ``(x, y)`` (trackpy's convention).

Pixels outside the frame take no part. When the weights sum to nothing (no contrast) the
mask centroid is kept. The mask, box and presence are unchanged; only the reported position
differs, and the ROI window still follows the model's own mask.

Steps 1-3 are :func:`local_contrast`, step 4 :func:`weighted_centroid`; the matched filter
(:mod:`samem.track.matched`, ``centroid = "matched"``) starts from both.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: region dilation and ring width as fractions of the prompt-box side (``RING`` is also the
#: default of the tracker's ``centroid_ring``; a wide ring fits the plane on more pixels)
DILATE = 0.05
RING = 0.8
#: most ring pixels the background plane is fitted on (a regular subset beyond that)
MAX_RING_PX = 8192


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _background_plane(image: np.ndarray, ring: np.ndarray) -> np.ndarray | None:
    """The plane ``a + b x + c y`` fitted to the ring pixels (robustly), evaluated everywhere."""
    yy, xx = np.nonzero(ring)
    if yy.size < 8:
        return None
    if yy.size > MAX_RING_PX:  # every k-th pixel in raster order: the whole ring, fewer pixels
        step = -(-yy.size // MAX_RING_PX)
        yy, xx = yy[::step], xx[::step]
    cx, cy = image.shape[1] / 2, image.shape[0] / 2  # centred coordinates: a well-conditioned fit
    design = np.column_stack([np.ones(yy.size), xx - cx, yy - cy])
    values = image[yy, xx].astype(np.float64)
    keep = np.ones(yy.size, bool)
    for _ in range(2):
        a = design[keep]
        try:  # least squares by the 3 x 3 normal equations (lstsq's SVD costs more than all else)
            coef = np.linalg.solve(a.T @ a, a.T @ values[keep])
        except np.linalg.LinAlgError:  # the kept pixels lie on a line
            return None
        residual = values - design @ coef
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        if not spread > 0:
            break
        keep = np.abs(residual) <= 3 * spread
        if keep.sum() < 8:
            return None
    cols = np.arange(image.shape[1], dtype=np.float32) - cx
    rows = np.arange(image.shape[0], dtype=np.float32) - cy
    return (coef[0] + coef[1] * cols[None, :] + coef[2] * rows[:, None]).astype(np.float32)


@dataclass(frozen=True)
class Contrast:
    """The particle's contrast near its mask (:func:`local_contrast`).

    Attributes
    ----------
    image : np.ndarray
        float32 contrast with the particle's sign (positive on the particle), the background
        plane removed, on a crop of the frame.
    region : np.ndarray
        bool, the crop's shape: the dilated mask the intensity centroid weighs.
    x0, y0 : int
        Frame pixel of the crop's top-left corner.
    """

    image: np.ndarray
    region: np.ndarray
    x0: int
    y0: int


def local_contrast(
    gray: np.ndarray,
    mask: np.ndarray,
    bbox: tuple[int, int, int, int],
    box_side: float,
    dilate: float = DILATE,
    ring: float = RING,
) -> Contrast | None:
    """The particle's contrast against its local background plane (module docstring, steps
    1-3, before the clipping at 0), on a crop around ``bbox`` that holds the ring.

    Parameters are those of :func:`intensity_centroid`. ``None`` when no plane can be fitted.
    """
    d = max(1, round(dilate * box_side))
    width = max(4, round(ring * box_side))
    margin = d + 2 + width
    h, w = gray.shape
    x0, y0, x1, y1 = bbox
    xs, ys = max(x0 - margin, 0), max(y0 - margin, 0)
    xe, ye = min(x1 + margin, w), min(y1 + margin, h)
    local = mask[ys:ye, xs:xe].astype(np.uint8)
    image = gray[ys:ye, xs:xe].astype(np.float32, copy=False)
    region = cv2.dilate(local, _disk(d)) > 0
    # distance (px) of every pixel to the mask: one pass, where dilating by a disk as wide as
    # the ring would cost the ring's area per pixel
    dist = cv2.distanceTransform(1 - local, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ring_px = (dist > d + 2) & (dist <= d + 2 + width)
    background = _background_plane(image, ring_px)
    if background is None:
        return None
    dark = float((image - background)[local > 0].mean()) < 0
    contrast = (background - image) if dark else (image - background)
    return Contrast(contrast, region, xs, ys)


def weighted_centroid(contrast: Contrast) -> tuple[float, float] | None:
    """Contrast-weighted mean pixel index ``(x, y)`` (frame px) over the region (step 4)."""
    weights = np.where(contrast.region, np.maximum(contrast.image, 0.0), 0.0)
    total = float(weights.sum())
    if not total > 0:
        return None
    yy, xx = np.indices(weights.shape)
    x, y = float((weights * xx).sum() / total), float((weights * yy).sum() / total)
    return x + contrast.x0, y + contrast.y0


def intensity_centroid(
    gray: np.ndarray,
    mask: np.ndarray,
    bbox: tuple[int, int, int, int],
    box_side: float,
    dilate: float = DILATE,
    ring: float = RING,
) -> tuple[float, float] | None:
    """Contrast-weighted centroid ``(x, y)`` (frame px) of the particle under ``mask``.

    Parameters
    ----------
    gray
        The frame (2-D, any intensity units), as the tracker saw it.
    mask
        Boolean mask of the particle, the frame's shape.
    bbox
        ``(x0, y0, x1, y1)`` with ``mask[y0:y1, x0:x1]`` holding every True pixel.
    box_side
        Longest side of the object's prompt box (px): sets the dilation and the ring width.

    Returns
    -------
    (x, y) or None
        ``None`` when there is no contrast to weight with.
    """
    contrast = local_contrast(gray, mask, bbox, box_side, dilate, ring)
    return None if contrast is None else weighted_centroid(contrast)
