"""The centre of a particle cut by the frame border (``TrackerOptions.edge_centre``).

A particle partly outside the field shows only its inner part, and every centroid of that
part (of the mask, of the contrast, of a matched filter) lies inside the true centre, up to
a radius for a sliver. That is a wrong position, and it enters the MSD on every frame a
particle spends at the border. The particle's size is known from its whole frames, so the
part beyond the border can be reconstructed:

For a disc of radius ``R`` whose centre lies at signed distance ``d`` inside a straight
border (``d < 0``: outside), the part beyond the border is a circular segment of area
``R**2 * (acos(d/R) - (d/R) * sqrt(1 - (d/R)**2))``, and the visible part's centroid lies
``(2/3) * R * (1 - (d/R)**2)**1.5 / (pi * f)`` further inside than the disc's centre, where
``f`` is the visible fraction of the area. So, with ``f`` = the mask's area over the
particle's typical area (the median of its last whole, uncut masks) and ``R`` the radius of
a disc of that typical area, ``d`` follows from ``f``, and the reported centre is moved
outward, perpendicular to the border, by that offset. Along the border nothing changes (the
cut is symmetric about the normal through the centre).

An elongated particle is an affine image of a disc, and an affine map keeps area fractions
and centroids, so the offset is right for an ellipse when ``R`` is its half-width along the
border's normal; the equivalent-disc ``R`` used here is exact for round particles and off by
the aspect ratio's square root at most for others. A mask cut by two borders (a corner), and
a mask no smaller than the typical area, keep their measured centre. The reported position
may lie outside the frame: that is where the particle is.
"""

from __future__ import annotations

import math

import numpy as np

#: visible fraction f(d) and outward centroid offset (in R) of a unit disc whose centre lies
#: at signed distance d inside a straight border, tabulated for d from -1 to 1
_D = np.linspace(-1.0, 1.0, 2001)
_SEGMENT = np.arccos(_D) - _D * np.sqrt(1.0 - _D**2)  # area beyond the border
_FRACTION = 1.0 - _SEGMENT / math.pi
with np.errstate(divide="ignore", invalid="ignore"):
    _OFFSET = np.where(_FRACTION > 0, (2.0 / 3.0) * (1.0 - _D**2) ** 1.5 / (math.pi * _FRACTION), 0.0)


def border_offset(fraction: float, radius: float) -> float:
    """How far (px) outside the visible part's centroid the centre of a cut disc lies.

    Parameters
    ----------
    fraction
        Visible fraction of the disc's area (0-1; 1 or more: not cut, offset 0).
    radius
        The disc's radius, px.
    """
    if not fraction > 0 or fraction >= 1 or not radius > 0:
        return 0.0
    return float(np.interp(fraction, _FRACTION, _OFFSET)) * radius


def edge_centre(
    centroid: tuple[float, float],
    bbox: tuple[int, int, int, int],
    area: float,
    typical_area: float,
    shape: tuple[int, int],
) -> tuple[float, float]:
    """The centre of a particle whose mask is cut by one frame border (module docstring).

    Parameters
    ----------
    centroid
        Measured centre ``(x, y)`` of the visible part, px (pixel indices).
    bbox
        The mask's box ``(x0, y0, x1, y1)``, px, exclusive at the high end.
    area
        The mask's area, px².
    typical_area
        The particle's area when whole, px² (non-finite or 0: unknown, no correction).
    shape
        The frame's ``(height, width)``, px.

    Returns
    -------
    tuple of float
        ``(x, y)`` px: ``centroid`` moved outward across the one border the mask touches, or
        ``centroid`` unchanged (no border, two borders, typical area unknown, mask not smaller).
    """
    h, w = shape
    x0, y0, x1, y1 = bbox
    sides = [(x0 <= 0, -1.0, 0.0), (x1 >= w, 1.0, 0.0), (y0 <= 0, 0.0, -1.0), (y1 >= h, 0.0, 1.0)]
    touched = [(nx, ny) for hit, nx, ny in sides if hit]
    if len(touched) != 1 or not (math.isfinite(typical_area) and typical_area > 0):
        return centroid
    shift = border_offset(area / typical_area, math.sqrt(typical_area / math.pi))
    nx, ny = touched[0]
    return centroid[0] + nx * shift, centroid[1] + ny * shift
