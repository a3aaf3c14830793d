"""Per-pixel signal-to-noise ratio of particles in a frame.

``SNR = (mean background - mean particle) / std(background)`` (sign flipped for bright
particles, so a visible particle always has SNR > 0). The background of a particle is a
ring of label-0 pixels around it, starting ``gap_px`` beyond its outline (clear of the
blur halo) and ``width_px`` wide: local, so slow background gradients do not inflate
``std(background)``. A frame's SNR is the mean over the particles fully inside it.
"""

from __future__ import annotations

import cv2
import numpy as np


def ring_geometry(radius_px: float, blur_sigma_px: float) -> tuple[float, float]:
    """(gap, width) in px of the background ring of a particle of circumscribed radius ``radius_px``."""
    gap = 2.0 * blur_sigma_px + 1.0
    width = max(4.0, 0.5 * radius_px)
    return gap, width


def snr_from_pixels(particle: np.ndarray, background: np.ndarray, dark: bool = True) -> float:
    """SNR from particle and background pixel values; NaN if either set is too small."""
    if particle.size < 1 or background.size < 8:
        return float("nan")
    bg = background.astype(np.float64)
    sd = bg.std()
    if sd == 0:
        return float("nan")
    diff = bg.mean() - float(particle.astype(np.float64).mean())
    return float((diff if dark else -diff) / sd)


def measure_snr(
    frame: np.ndarray, labels: np.ndarray, gap_px: float = 3.0, width_px: float = 8.0, dark: bool = True
) -> dict[int, float]:
    """SNR of every labelled object in any frame (slower, general path for real data).

    Parameters
    ----------
    frame : array (H, W)
    labels : array (H, W) of int; 0 is background.
    gap_px, width_px : ring geometry (px) as in the module docstring.
    dark : particles darker than the background.

    Returns
    -------
    dict
        ``{label id: SNR}``.
    """
    out = {}
    for pid in np.unique(labels):
        if pid == 0:
            continue
        inside = labels == pid
        dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
        ring = (dist > gap_px) & (dist <= gap_px + width_px) & (labels == 0)
        out[int(pid)] = snr_from_pixels(frame[inside], frame[ring], dark)
    return out
