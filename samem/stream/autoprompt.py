"""Classical particle detector that proposes box prompts, so tracking can start with no human.

Remove the best-fit plane, band-pass the frame (Gaussian smoothing against shot noise minus
a wide Gaussian for the slowly varying background), express it in robust noise standard
deviations (median absolute deviation), and threshold by hysteresis: a blob is the connected
pixels above ``grow_sigma`` around at least one pixel above ``threshold_sigma``, so faint
particles are found by their peak and boxed by their extent. Blobs within the area limits
become boxes. Dark particles on a bright background (bright-field LPTEM) are the default
polarity. Settings: the ``autoprompt`` section of ``configs/serve.yaml``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from samem.config import load_yaml
from samem.errors import SamemError


@dataclass(frozen=True)
class Detection:
    """One proposed particle.

    Attributes
    ----------
    box : tuple of float
        ``(x0, y0, x1, y1)`` prompt box, px, clipped to the frame.
    centroid : tuple of float
        ``(x, y)`` intensity-weighted centre of the blob, px.
    area_px : int
        Pixels above threshold.
    strength : float
        Summed filtered signal of the blob, in noise standard deviations x px.
    """

    box: tuple[float, float, float, float]
    centroid: tuple[float, float]
    area_px: int
    strength: float


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    return dict(load_yaml("serve")["autoprompt"])


def settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``autoprompt`` defaults of ``configs/serve.yaml`` updated with ``config``.

    Unknown keys are a :class:`SamemError`.
    """
    cfg = dict(_shipped())
    for key, value in (config or {}).items():
        if key not in cfg:
            raise SamemError(f"unknown autoprompt setting {key!r}")
        cfg[key] = value
    if cfg["polarity"] not in ("dark", "bright"):
        raise SamemError(f"autoprompt polarity must be 'dark' or 'bright', got {cfg['polarity']!r}")
    if cfg["grow_sigma"] > cfg["threshold_sigma"]:
        raise SamemError("autoprompt needs grow_sigma <= threshold_sigma")
    if cfg["smooth_px"] <= 0 or cfg["background_px"] <= cfg["smooth_px"]:
        raise SamemError("autoprompt needs 0 < smooth_px < background_px")
    return cfg


def _plane(img: np.ndarray) -> np.ndarray:
    """Least-squares plane a + b x + c y through the image."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    design = np.column_stack([np.ones(h * w), xx.ravel() - w / 2, yy.ravel() - h / 2])
    coef, *_ = np.linalg.lstsq(design, img.ravel().astype(np.float64), rcond=None)
    return (design @ coef).reshape(h, w).astype(img.dtype)


def filtered(frame: np.ndarray, config: Mapping[str, Any] | None = None) -> np.ndarray:
    """Band-passed frame in units of its robust noise standard deviation; particles positive."""
    cfg = settings(config)
    img = np.asarray(frame, dtype=np.float32)
    if cfg["polarity"] == "dark":
        img = -img
    img = img - _plane(img)  # a linear gradient would leak through the wide Gaussian at the borders
    band = ndimage.gaussian_filter(img, cfg["smooth_px"]) - ndimage.gaussian_filter(img, cfg["background_px"])
    med = np.median(band)
    mad = np.median(np.abs(band - med)) * 1.4826
    if not np.isfinite(mad) or mad <= 0:
        return np.zeros_like(band)
    return (band - med) / mad


def detect(
    frames: np.ndarray | Sequence[np.ndarray], config: Mapping[str, Any] | None = None
) -> list[Detection]:
    """Find particles on one frame, or on the mean of a few consecutive frames.

    Parameters
    ----------
    frames : ndarray or sequence of ndarray
        (H, W) frame, or (N, H, W) / list of frames averaged before detecting.
    config : mapping, optional
        ``autoprompt`` settings (defaults: ``configs/serve.yaml``).

    Returns
    -------
    list of Detection
        Strongest first, at most ``max_objects``.
    """
    cfg = settings(config)
    stack = np.asarray(frames, dtype=np.float32)
    image = stack if stack.ndim == 2 else stack.mean(axis=0)
    if image.ndim != 2:
        raise SamemError(f"autoprompt needs (H, W) frames, got shape {stack.shape}")
    h, w = image.shape
    z = filtered(image, cfg)
    # hysteresis: blobs of pixels above grow_sigma that contain a pixel above threshold_sigma
    labels, n = ndimage.label(z > cfg["grow_sigma"])
    if n == 0:
        return []
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(labels[z > cfg["threshold_sigma"]])] = True
    seeded[0] = False
    labels, n = ndimage.label(seeded[labels])
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones_like(z), labels, index)
    strength = ndimage.sum_labels(z, labels, index)
    centres = ndimage.center_of_mass(np.clip(z, 0, None), labels, index)
    found = []
    for k, sl in enumerate(ndimage.find_objects(labels, n)):
        if sl is None or not cfg["min_area_px"] <= areas[k] <= cfg["max_area_px"]:
            continue
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        e = cfg["edge_px"]
        if e and (x0 < e or y0 < e or x1 > w - e or y1 > h - e):
            continue
        pad = cfg["pad_px"]
        box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(w), x1 + pad), min(float(h), y1 + pad))
        cy, cx = centres[k]
        found.append(Detection(box, (float(cx), float(cy)), int(areas[k]), float(strength[k])))
    found.sort(key=lambda d: -d.strength)
    return found[: int(cfg["max_objects"])]


def new_detections(
    detections: Iterable[Detection],
    tracked: Mapping[Any, tuple[float, float]],
    tracked_boxes: Iterable[tuple[float, float, float, float]] = (),
    min_distance_px: float = 6.0,
) -> list[Detection]:
    """Detections that are not an object already tracked.

    A detection is new when its centroid is farther than ``min_distance_px`` from every
    tracked centroid ``{id: (x, y)}`` (px) and outside every tracked box.
    """
    centres = np.array([c for c in tracked.values() if np.all(np.isfinite(c))], dtype=float).reshape(-1, 2)
    boxes = [tuple(b) for b in tracked_boxes]
    out = []
    for d in detections:
        x, y = d.centroid
        if len(centres) and np.min(np.hypot(centres[:, 0] - x, centres[:, 1] - y)) <= min_distance_px:
            continue
        if any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes):
            continue
        out.append(d)
    return out
