"""Drawing helpers shared by the live view and the movie renderer: contrast, downsampling,
particle contours, colours, scale bars and overlays.

Coordinates are pixels of the image they are drawn on (x = column, y = row); the callers
convert from frame pixels with the display scale (display px per frame px).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from scipy import ndimage

#: largest side of an image sent to a browser or written to a movie by default, px
MAX_SIDE = 1024


def display_scale(shape: Sequence[int], max_side: int = MAX_SIDE) -> float:
    """Display px per frame px so that the larger side is at most ``max_side`` (never enlarged)."""
    h, w = int(shape[0]), int(shape[1])
    return min(1.0, float(max_side) / max(h, w, 1))


def contrast_limits(frames: np.ndarray | Sequence[np.ndarray], low: float = 0.5, high: float = 99.5):
    """Grey levels mapped to black and white: percentiles ``low``/``high`` of (a subsample of)
    the frames, so that a few hot or dead pixels do not wash the image out.

    Returns
    -------
    lo, hi : float
        ``hi > lo`` always.
    """
    samples = [np.asarray(f)[::4, ::4].ravel() for f in ([frames] if np.ndim(frames) == 2 else frames)]
    values = np.concatenate(samples).astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def to_uint8(frame: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Grey levels ``lo``..``hi`` to 0..255 (uint8), clipped."""
    f = np.asarray(frame, dtype=np.float32)
    return np.clip((f - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def downsample(frame: np.ndarray, labels: np.ndarray | None, scale: float):
    """Frame (area-averaged) and labels (nearest) at ``scale`` display px per frame px."""
    if scale >= 1.0:
        return frame, labels
    h, w = frame.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    lab = None if labels is None else cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    return small, lab


def contours(labels: np.ndarray, epsilon_px: float = 0.7, max_points: int = 400) -> dict[int, list]:
    """Outer contour of every labelled object, ``{id: [[x, y], ...]}`` in the labels' pixels.

    The largest connected piece of each object is outlined, simplified to within
    ``epsilon_px`` and to at most ``max_points`` points (objects touching a contour are rare,
    and a bounded message size matters more than the exact outline).
    """
    out: dict[int, list] = {}
    lab = np.asarray(labels)
    if not lab.any():
        return out
    for index, window in enumerate(ndimage.find_objects(lab), start=1):
        if window is None:
            continue
        y0, x0 = window[0].start, window[1].start
        piece = np.pad((lab[window] == index).astype(np.uint8), 1)
        found, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not found:
            continue
        c = max(found, key=cv2.contourArea)
        eps = epsilon_px
        simple = cv2.approxPolyDP(c, eps, True)
        while len(simple) > max_points:
            eps *= 2
            simple = cv2.approxPolyDP(c, eps, True)
        pts = simple.reshape(-1, 2).astype(np.float64) + (x0 - 1, y0 - 1)
        out[index] = pts.tolist()
    return out


def color(object_id: int) -> tuple[int, int, int]:
    """Distinct RGB colour of an object id (golden-ratio hues; the browser uses the same rule)."""
    r, g, b = colorsys.hsv_to_rgb((int(object_id) * 0.618033988749895) % 1.0, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def scale_bar(nm_per_px: float | None, width_px: int, fraction: float = 0.2) -> tuple[float, int] | None:
    """A round scale-bar length near ``fraction`` of the image width.

    Parameters
    ----------
    nm_per_px : float or None
        nm per pixel of the image the bar is drawn on; None: no bar.
    width_px : int
        Image width, px.

    Returns
    -------
    (length_nm, length_px) or None
        Length 1, 2 or 5 x 10^k nm.
    """
    if nm_per_px is None or not math.isfinite(nm_per_px) or nm_per_px <= 0 or width_px < 10:
        return None
    target = fraction * width_px * nm_per_px
    k = math.floor(math.log10(target))
    best = 1.0
    for m in (1.0, 2.0, 5.0):
        if m * 10**k <= target:
            best = m * 10**k
    return best, max(1, round(best / nm_per_px))


def format_length_nm(nm: float) -> str:
    """``"50 nm"``, ``"2 µm"``, ``"0.5 nm"``."""
    if nm >= 1000:
        return f"{nm / 1000:g} µm"
    return f"{nm:g} nm"


def _text(img: np.ndarray, text: str, org: tuple[int, int], size: float, rgb=(255, 255, 255)) -> None:
    thick = max(1, round(size * 2))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, rgb, thick, cv2.LINE_AA)


def draw_overlay(
    rgb: np.ndarray,
    outlines: Mapping[int, list],
    trails: Mapping[int, Sequence[tuple[float, float]]],
    positions: Mapping[int, tuple[float, float]],
    nm_per_px: float | None,
    caption: str,
    progress: float | None = None,
) -> np.ndarray:
    """Draw contours, trails, ids, a scale bar, a caption and a progress bar on an RGB image.

    Parameters
    ----------
    rgb : ndarray
        (H, W, 3) uint8, drawn on in place and returned.
    outlines : mapping
        ``{id: [[x, y], ...]}`` contours, px of ``rgb``.
    trails : mapping
        ``{id: [(x, y), ...]}`` past positions, oldest first, px of ``rgb``.
    positions : mapping
        ``{id: (x, y)}`` where to write each id, px of ``rgb``.
    nm_per_px : float or None
        nm per px of ``rgb`` (scale bar); None draws no bar.
    caption : str
        Written at the top left (frame number, time).
    progress : float, optional
        0..1: a bar along the bottom edge.
    """
    h, w = rgb.shape[:2]
    size = max(0.35, min(1.0, w / 900))
    line = max(1, round(w / 500))
    for oid, pts in trails.items():
        if len(pts) > 1:
            p = np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(rgb, [p], False, color(oid), line, cv2.LINE_AA)
    for oid, pts in outlines.items():
        if len(pts) > 1:
            p = np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(rgb, [p], True, color(oid), line + 1, cv2.LINE_AA)
    for oid, (x, y) in positions.items():
        if math.isfinite(x) and math.isfinite(y):
            _text(rgb, str(oid), (int(x) + 4 * line, int(y) - 4 * line), size * 0.8, color(oid))
    _text(rgb, caption, (6, round(22 * size) + 4), size)
    bar = scale_bar(nm_per_px, w)
    if bar is not None:
        nm, px = bar
        y = h - max(12, round(18 * size)) - (6 if progress is not None else 0)
        cv2.rectangle(rgb, (10, y), (10 + px, y + max(3, line * 2)), (0, 0, 0), -1)
        cv2.rectangle(rgb, (11, y + 1), (9 + px, y + max(3, line * 2) - 1), (255, 255, 255), -1)
        _text(rgb, format_length_nm(nm), (10, y - 6), size * 0.8)
    if progress is not None:
        cv2.rectangle(rgb, (0, h - 4), (w - 1, h - 1), (40, 40, 40), -1)
        cv2.rectangle(
            rgb, (0, h - 4), (round((w - 1) * min(max(progress, 0.0), 1.0)), h - 1), (80, 200, 255), -1
        )
    return rgb


def particle_snr(frame: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Per-particle SNR, (mean background - mean particle) / std(background) (positive for dark
    particles, the definition of :func:`samem.stream.feedback.estimate_snr`), ``{id: snr}``."""
    lab = np.asarray(labels).ravel()
    img = np.asarray(frame, dtype=np.float64).ravel()
    bg = img[lab == 0]
    if bg.size < 2 or lab.max(initial=0) == 0:
        return {}
    mu, sd = float(bg.mean()), float(bg.std())
    if not sd > 0:
        return {}
    n = np.bincount(lab, minlength=int(lab.max()) + 1)
    s = np.bincount(lab, weights=img, minlength=int(lab.max()) + 1)
    return {int(i): (mu - s[i] / n[i]) / sd for i in np.nonzero(n)[0] if i > 0}
