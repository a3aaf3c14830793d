"""Frames of any dtype and layout to SAM 2 input tensors, the same way for tracking and training.

Steps, in order:

1. :func:`to_gray` — ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA,
   alpha dropped) arrays of any integer, bool or float dtype become float32 grayscale
   (RGB: the mean of the three channels; TEM frames stored as RGB carry the same gray in each).
2. :func:`denoise` — optional Gaussian smoothing of the gray frame (``sigma`` in frame
   pixels, :func:`denoise_sigma` of the tracker option ``denoise``) *before* the levels are
   taken, so a very noisy frame is normalised as a cleaner (higher-dose) one would be:
   its percentiles are no longer set by the noise.
3. :func:`normalize_frame` — robust per-frame intensity normalisation: the ``low_percentile``
   and ``high_percentile`` of the frame's intensities (:func:`intensity_levels`) map to 0 and
   1, values outside are clipped (:func:`apply_levels`). Per-frame percentiles remove
   beam-current flicker, detector offsets and the uint8/uint16/float scale without being
   dragged by hot pixels. Percentiles are estimated on a regular sub-grid of at most
   ``max_samples`` pixels. The mapping is pixel-wise, so normalising a crop with its frame's
   levels equals cropping the normalised frame (what ROI tracking does, for speed).
4. :func:`resize_square` — to the model's square input (``cv2.INTER_AREA`` when shrinking,
   ``cv2.INTER_LINEAR`` when enlarging).
5. :func:`to_model_input` — gray replicated to 3 channels and standardised with SAM 2's
   ImageNet mean/std, as sam2's own frame loader does for RGB frames in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch

from samem.errors import SamemError

#: SAM 2's input standardisation (sam2.utils.misc.load_video_frames)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Return a frame as float32 grayscale ``(H, W)`` in its original intensity units.

    Raises
    ------
    SamemError
        For shapes other than ``(H, W)`` / ``(H, W, C)`` with C in 1, 3, 4, empty frames,
        non-numeric dtypes, or NaN/inf values.
    """
    a = np.asarray(frame)
    if a.dtype.kind not in "biuf":
        raise SamemError(f"frame dtype {a.dtype} is not a number type (expected uint8, uint16, float, ...)")
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., 0] if a.shape[2] == 1 else a[..., :3].mean(axis=2, dtype=np.float32)
    elif a.ndim != 2:
        raise SamemError(f"frame shape {a.shape} is not (H, W) or (H, W, C) with C = 1, 3 or 4")
    if a.size == 0:
        raise SamemError(f"frame shape {a.shape} is empty")
    gray = a.astype(np.float32, copy=False)
    if a.dtype.kind == "f" and not np.isfinite(gray).all():
        raise SamemError("frame contains NaN or infinite values")
    return gray


class Levels(NamedTuple):
    """Intensities of a frame (in its own units) mapped to 0 and 1, and its median."""

    low: float
    high: float
    median: float

    @property
    def background(self) -> float:
        """The normalised median intensity, used to pad crops that extend past the frame."""
        return float(apply_levels(np.float32(self.median), self))


def intensity_levels(
    gray: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5, max_samples: int = 1 << 16
) -> Levels:
    """Robust intensity range of a grayscale frame from percentiles of a regular sub-grid.

    Parameters
    ----------
    gray
        2-D frame from :func:`to_gray`.
    low_percentile, high_percentile
        Percentiles (0-100) of the intensities that will map to 0 and 1.
    max_samples
        Percentiles are computed on a regular sub-grid of at most this many pixels
        (exact for frames up to 256 x 256).
    """
    h, w = gray.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / max_samples))))
    lo, med, hi = np.percentile(gray[::step, ::step], [low_percentile, 50.0, high_percentile])
    return Levels(float(lo), float(hi), float(med))


def apply_levels(x: np.ndarray, levels: Levels) -> np.ndarray:
    """Map ``levels.low``/``levels.high`` to 0/1 and clip; a flat frame (high <= low) gives 0."""
    if levels.high <= levels.low:
        return np.zeros_like(x, dtype=np.float32)
    scale = np.float32(1.0 / (levels.high - levels.low))
    return np.clip((x - np.float32(levels.low)) * scale, 0.0, 1.0, dtype=np.float32)


def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a 2-D float32 gray frame, ``sigma`` in its pixels (0: unchanged).

    Edges are mirrored, so the frame border does not bleed in as a dark or bright rim.
    """
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)


def denoise_sigma(fraction: float, box_sides) -> float:
    """Sigma (px) of :func:`denoise` for option ``denoise = fraction``: that fraction of the
    objects' median box side (longest side, px); 0 when off or without objects. Tracking and
    training both take it from here."""
    sides = list(box_sides)
    return fraction * float(np.median(sides)) if fraction and sides else 0.0


def normalize_frame(
    frame: np.ndarray,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
    max_samples: int = 1 << 16,
    denoise_sigma: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Grayscale float32 frame in [0, 1] with robust percentile scaling (steps 1 to 3 above).

    Returns
    -------
    image : np.ndarray
        float32 ``(H, W)`` in [0, 1].
    background : float
        The normalised median intensity (padding value for crops past the frame edge).
    """
    gray = denoise(to_gray(frame), denoise_sigma)
    levels = intensity_levels(gray, low_percentile, high_percentile, max_samples)
    return apply_levels(gray, levels), levels.background


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D float32 image to ``size`` x ``size`` pixels (area when shrinking)."""
    if image.shape == (size, size):
        return image
    shrink = image.shape[0] * image.shape[1] > size * size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def to_model_input(images: np.ndarray | list[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """Stack normalised gray images ``(B, S, S)`` in [0, 1] into SAM 2 input ``(B, 3, S, S)``."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images))
    batch = batch.to(device=device, dtype=torch.float32)
    if batch.ndim == 2:
        batch = batch[None]
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1)
    return (batch[:, None] - mean) / std
