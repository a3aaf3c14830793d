"""Square windows in frame pixels: cutting model inputs, mapping boxes, pasting masks back.

Conventions: x = column, y = row. A window ``(x0, y0, side)`` covers the pixel index ranges
``x0 .. x0 + side - 1`` and ``y0 .. y0 + side - 1`` and may extend past the frame; the part
outside is filled with the frame's background level (never mirrored, which would duplicate
particles). Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates where pixel
``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``, as SAM 2 reads box prompts; centroids are mean
pixel indices (trackpy's convention: the centre of pixel ``(r, c)`` is ``x = c, y = r``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from samem.track.preprocess import Levels, apply_levels, resize_square


@dataclass(frozen=True)
class Window:
    """A square window of ``side`` frame pixels with top-left pixel ``(x0, y0)``."""

    x0: int
    y0: int
    side: int

    @classmethod
    def around(cls, cx: float, cy: float, side: int) -> Window:
        """The window of ``side`` px whose centre is nearest to ``(cx, cy)`` (continuous coords)."""
        return cls(int(math.floor(cx - side / 2 + 0.5)), int(math.floor(cy - side / 2 + 0.5)), int(side))

    def overlap(self, shape: tuple[int, int]) -> tuple[slice, slice, slice, slice]:
        """Where the window meets a frame of ``shape``: ``(frame rows, frame cols, window rows,
        window cols)`` slices (empty when they do not meet)."""
        h, w = shape
        ys, ye = max(self.y0, 0), max(min(self.y0 + self.side, h), 0)
        xs, xe = max(self.x0, 0), max(min(self.x0 + self.side, w), 0)
        ye, xe = max(ye, ys), max(xe, xs)
        return (
            slice(ys, ye),
            slice(xs, xe),
            slice(ys - self.y0, ye - self.y0),
            slice(xs - self.x0, xe - self.x0),
        )

    def box_to_input(self, box: np.ndarray, size: int) -> np.ndarray:
        """Map a box ``(x0, y0, x1, y1)`` from frame pixels to the model input of ``size`` px."""
        scale = size / self.side
        return (np.asarray(box, dtype=np.float64) - [self.x0, self.y0, self.x0, self.y0]) * scale


def box_side(box: np.ndarray) -> float:
    """Longest side of a box ``(x0, y0, x1, y1)`` (px)."""
    return float(max(box[2] - box[0], box[3] - box[1]))


def window_side(box: np.ndarray, crop_size_px: int, context: float) -> int:
    """ROI side for an object prompted with ``box``: ``max(crop_size_px, context * box side)``."""
    return int(max(crop_size_px, math.ceil(context * box_side(box))))


def _paste_region(out: np.ndarray, image: np.ndarray, window: Window, convert=None) -> None:
    rows, cols, wrows, wcols = window.overlap(image.shape)
    region = image[rows, cols]
    if region.size:
        out[wrows, wcols] = region if convert is None else convert(region)


def cut(image: np.ndarray, window: Window, size: int, fill: float) -> np.ndarray:
    """The window's content of a 2-D image, padded with ``fill``, resized to ``size`` px (float32)."""
    out = np.full((window.side, window.side), fill, dtype=np.float32)
    _paste_region(out, image, window)
    return resize_square(out, size)


def cut_normalized(gray: np.ndarray, window: Window, size: int, levels: Levels) -> np.ndarray:
    """``cut`` of the normalised frame, normalising only the window (pixel-wise, so identical).

    Equals ``cut(apply_levels(gray, levels), window, size, levels.background)``.
    """
    out = np.full((window.side, window.side), levels.background, dtype=np.float32)
    _paste_region(out, gray, window, lambda region: apply_levels(region, levels))
    return resize_square(out, size)


def upsample_logits(low_res_logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """One object's ``(1, 1, h, w)`` mask logits upsampled bilinearly to ``(height, width)`` (float32)."""
    up = F.interpolate(low_res_logits.float(), size=(height, width), mode="bilinear", align_corners=False)
    return up[0, 0].cpu().numpy()


def logits_to_mask(low_res_logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Upsample one object's ``(1, 1, h, w)`` mask logits bilinearly and threshold at 0."""
    return upsample_logits(low_res_logits, height, width) > 0


def paste(window_mask: np.ndarray, window: Window, frame_shape: tuple[int, int]) -> np.ndarray:
    """Place a ``side x side`` window mask into an all-False frame-sized mask (clipped)."""
    full = np.zeros(frame_shape, dtype=bool)
    rows, cols, wrows, wcols = window.overlap(frame_shape)
    full[rows, cols] = window_mask[wrows, wcols]
    return full


class Geometry(NamedTuple):
    """Where a mask lies: ``centroid`` ``(x, y)`` (mean pixel indices, px) and ``bbox``
    ``(x0, y0, x1, y1)`` (px, exclusive at the high end)."""

    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int]


def mask_geometry(mask: np.ndarray) -> Geometry | None:
    """Centroid ``(x, y)`` (mean pixel indices) and box ``(x0, y0, x1, y1)`` of a mask, or ``None``.

    The box is exclusive at the high end: ``mask[y0:y1, x0:x1]`` holds every True pixel.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    yy, xx = np.nonzero(mask[y0:y1, x0:x1])
    centroid = (float(xx.mean() + x0), float(yy.mean() + y0))
    return Geometry(centroid, (int(x0), int(y0), int(x1), int(y1)))


def shift_mask(
    mask: np.ndarray, bbox: tuple[int, int, int, int], dx: float, dy: float
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """``mask`` moved by ``(dx, dy)`` px (sub-pixel: bilinear, then above one half), with its box.

    Only the region around ``bbox`` (``mask[y0:y1, x0:x1]`` holds every True pixel) is
    resampled; pixels moved out of the frame are lost. ``None`` if nothing is left.
    """
    h, w = mask.shape
    x0, y0, x1, y1 = bbox
    m = int(math.ceil(max(abs(dx), abs(dy)))) + 1
    xs, ys, xe, ye = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
    crop = mask[ys:ye, xs:xe].astype(np.float32)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(crop, shift, crop.shape[::-1], flags=cv2.INTER_LINEAR) > 0.5
    local = mask_geometry(moved)
    if local is None:
        return None
    out = np.zeros_like(mask)
    out[ys:ye, xs:xe] = moved
    _, (a0, b0, a1, b1) = local
    return out, (a0 + xs, b0 + ys, a1 + xs, b1 + ys)


def window_mask_geometry(
    window_mask: np.ndarray, window: Window, frame_shape: tuple[int, int]
) -> Geometry | None:
    """:func:`mask_geometry` in frame pixels of the part of a window mask inside the frame."""
    rows, cols, wrows, wcols = window.overlap(frame_shape)
    local = mask_geometry(window_mask[wrows, wcols])
    if local is None:
        return None
    (cx, cy), (x0, y0, x1, y1) = local
    ys, xs = rows.start, cols.start
    return Geometry((cx + xs, cy + ys), (x0 + xs, y0 + ys, x1 + xs, y1 + ys))
