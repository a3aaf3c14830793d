"""Classical particle detector that proposes box prompts, so tracking can start with no human.

Scale-aware band-pass detection (docs/autoprompt.md has the measurements):

1. the frames given are averaged (``frames`` of them on the first detection), the polarity
   is flipped so that particles are positive, and the best-fit plane is removed;
2. for each of ``scales`` diameters d spaced geometrically over ``diameter_px`` (the range of
   particle diameters looked for, px), a difference of Gaussians with sigma = d / (2 sqrt 2)
   (the scale at which a disc of diameter d responds most) minus a Gaussian ``ratio`` times
   wider (the local background) is computed on the image binned by about sigma / 2 (so large
   scales cost as little as small ones); it is divided by the white-noise standard deviation
   at each pixel (larger near the borders) and expressed in its own robust noise standard
   deviations (median absolute deviation over the frame). A scale much smaller than a particle
   is dominated by noise, one matched to it by the particle;
3. local maxima above ``threshold_sigma`` are candidates; each is grown by hysteresis over
   its connected pixels above ``grow_sigma`` at the same scale, which gives its extent (the
   prompt box) even for rods and plates;
4. candidates are taken strongest first; one whose peak lies inside an accepted
   candidate's region, or whose region holds an accepted peak, is a fragment or another scale
   of the same particle and is dropped (non-maximum suppression across scales);
5. with several frames averaged, each box is moved to where its particle is on the last frame
   (tracking starts there) when the particle is clear enough on that frame alone;
6. regions outside ``[min_area_px, max_area_px]``, and detections centred closer than
   ``edge_px`` to the border, are dropped;
7. with ``confirm_sigma`` > 0, candidates between it and ``threshold_sigma`` are kept aside
   and prompted only when the detector on the next ``frames`` frames finds a candidate (at
   least ``confirm_sigma`` too) within ``confirm_gate`` band-pass diameters of them
   (:func:`confirmed`): a faint particle persists, a noise peak does not.

Dark particles on a bright background (bright-field LPTEM) are the default polarity.
Settings: the ``autoprompt`` section of ``configs/serve.yaml``; lengths in px.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from samem.config import load
from samem.errors import SamemError
from samem.stream.settings import AutopromptSettings

#: following a box to the last frame needs a response there above this, noise sigmas ...
_FOLLOW_SIGMA = 4.0
#: ... that beats the last frame's response at the averaged position by this, noise sigmas
_FOLLOW_GAIN_SIGMA = 1.0


@dataclass(frozen=True)
class Detection:
    """One proposed particle.

    Attributes
    ----------
    box : tuple of float
        ``(x0, y0, x1, y1)`` prompt box, px, clipped to the frame.
    centroid : tuple of float
        ``(x, y)`` centre of the blob (significance-weighted), px.
    area_px : int
        Pixels of the blob (above ``grow_sigma`` at its scale), px.
    strength : float
        Peak significance of the blob at its best scale, in robust noise standard deviations.
    diameter_px : float
        Diameter of the band-pass scale that responded most, px (nan when unknown).
    """

    box: tuple[float, float, float, float]
    centroid: tuple[float, float]
    area_px: int
    strength: float
    diameter_px: float = float("nan")


def settings(config: AutopromptSettings | Mapping[str, Any] | None) -> AutopromptSettings:
    """The ``autoprompt`` defaults (:class:`samem.stream.settings.AutopromptSettings`, those of
    ``configs/serve.yaml``) updated with ``config``, checked.

    Parameters
    ----------
    config : AutopromptSettings, mapping or None
        Settings, or settings to override (lengths in px, thresholds in robust noise sigmas).

    Returns
    -------
    AutopromptSettings
        Every setting; ``diameter_px`` as a (smallest, largest) tuple of float, px.

    Raises
    ------
    SamemError
        Unknown keys, values of the wrong kind and inconsistent values.
    """
    if isinstance(config, AutopromptSettings):
        cfg = config
    else:
        cfg = load(AutopromptSettings, [dict(config or {})], what="autoprompt setting")
    if cfg.polarity not in ("dark", "bright"):
        raise SamemError(f"autoprompt polarity must be 'dark' or 'bright', got {cfg.polarity!r}")
    if cfg.grow_sigma > cfg.threshold_sigma:
        raise SamemError("autoprompt needs grow_sigma <= threshold_sigma")
    dmin, dmax = (float(v) for v in cfg.diameter_px)
    if not 2 <= dmin <= dmax:
        raise SamemError(f"autoprompt needs 2 <= smallest <= largest diameter_px, got {[dmin, dmax]}")
    if cfg.scales < 1 or (dmin < dmax and cfg.scales < 2):
        raise SamemError("autoprompt scales must be >= 1 (>= 2 for a range of diameters)")
    if float(cfg.ratio) <= 1:
        raise SamemError("autoprompt ratio (background / band-pass sigma) must be > 1")
    if cfg.frames < 1:
        raise SamemError("autoprompt frames must be >= 1")
    if cfg.confirm_sigma and not cfg.grow_sigma <= cfg.confirm_sigma < cfg.threshold_sigma:
        raise SamemError(
            f"autoprompt confirm_sigma ({cfg.confirm_sigma}) must lie between grow_sigma "
            f"({cfg.grow_sigma}) and threshold_sigma ({cfg.threshold_sigma}), below the latter; "
            "a lower threshold_sigma needs a lower confirm_sigma, or confirm_sigma: 0 (off)"
        )
    if not float(cfg.confirm_gate) > 0:
        raise SamemError(f"autoprompt confirm_gate must be > 0, got {cfg.confirm_gate!r}")
    return cfg.replace(diameter_px=(dmin, dmax))


def diameters(config: AutopromptSettings | Mapping[str, Any] | None = None) -> np.ndarray:
    """Particle diameters of the band-pass scales.

    Parameters
    ----------
    config : AutopromptSettings or mapping, optional
        ``autoprompt`` settings.

    Returns
    -------
    ndarray
        ``scales`` diameters, px, smallest first, geometric over ``diameter_px``.
    """
    cfg = settings(config)
    dmin, dmax = cfg.diameter_px
    return np.geomspace(dmin, dmax, cfg.scales) if dmax > dmin else np.array([dmin])


def _plane(img: np.ndarray) -> np.ndarray:
    """Least-squares plane a + b x + c y through the image."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    design = np.column_stack([np.ones(h * w), xx.ravel() - w / 2, yy.ravel() - h / 2])
    coef, *_ = np.linalg.lstsq(design, img.ravel().astype(np.float64), rcond=None)
    return (design @ coef).reshape(h, w).astype(img.dtype)


def _bin(img: np.ndarray, b: int) -> np.ndarray:
    """Block means of ``b`` x ``b`` pixels; the last ``h % b`` rows and ``w % b`` columns are
    left out (a partial block would be noisier than the others and pass as a particle)."""
    if b == 1:
        return img
    h, w = img.shape
    hb, wb = h // b, w // b
    return img[: hb * b, : wb * b].reshape(hb, b, wb, b).mean(axis=(1, 3))


def _robust_z(band: np.ndarray) -> np.ndarray:
    med = np.median(band)
    mad = np.median(np.abs(band - med)) * 1.4826
    if not np.isfinite(mad) or mad <= 0:
        return np.zeros_like(band)
    return (band - med) / mad


@functools.lru_cache(maxsize=64)
def _weights_1d(n: int, s1: float, s2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of products of the effective 1-D Gaussian weights (sigmas ``s1``, ``s2``, reflected
    at the borders) for each of ``n`` output pixels: (sum a1^2, sum a1 a2, sum a2^2)."""
    eye = np.eye(n)
    a1 = ndimage.gaussian_filter1d(eye, s1, axis=0, mode="reflect")
    a2 = ndimage.gaussian_filter1d(eye, s2, axis=0, mode="reflect")
    return (a1 * a1).sum(1), (a1 * a2).sum(1), (a2 * a2).sum(1)


def _noise_factor(shape: tuple[int, int], s1: float, s2: float) -> np.ndarray:
    """Standard deviation of the difference of Gaussians of white noise at each pixel, relative
    to the frame's middle. Near the borders the reflected kernel averages fewer independent
    pixels, so noise there is larger and would otherwise pass as particles."""
    py = _weights_1d(shape[0], s1, s2)
    px = _weights_1d(shape[1], s1, s2)
    var = np.outer(py[0], px[0]) - 2 * np.outer(py[1], px[1]) + np.outer(py[2], px[2])
    var = np.clip(var, 1e-12, None)
    return np.sqrt(var / var[shape[0] // 2, shape[1] // 2]).astype(np.float32)


def _prepared(image: np.ndarray, cfg: AutopromptSettings) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if cfg.polarity == "dark":
        img = -img
    return img - _plane(img)  # a linear gradient would leak through the wide Gaussian at the borders


def _scale_map(img: np.ndarray, diameter: float, ratio: float) -> tuple[np.ndarray, int]:
    """Band-pass of ``img`` matched to discs of ``diameter`` px, in robust noise sigmas,
    on the image binned by the returned factor."""
    sigma = diameter / (2 * np.sqrt(2))
    b = max(1, int(sigma // 2))
    small = _bin(img, b)
    s = sigma / b
    band = ndimage.gaussian_filter(small, s, mode="reflect") - ndimage.gaussian_filter(
        small, ratio * s, mode="reflect"
    )
    return _robust_z(band / _noise_factor(small.shape, s, ratio * s)), b


def filtered(frame: np.ndarray, config: AutopromptSettings | Mapping[str, Any] | None = None) -> np.ndarray:
    """Full-resolution significance map; particles positive.

    Parameters
    ----------
    frame : ndarray
        (H, W) frame.
    config : AutopromptSettings or mapping, optional
        ``autoprompt`` settings.

    Returns
    -------
    ndarray
        (H, W) float32: at each pixel the largest band-pass response over the scales, in robust
        noise standard deviations (the last ``H % b`` rows and ``W % b`` columns of a scale
        binned by ``b`` do not contribute).
    """
    cfg = settings(config)
    img = _prepared(frame, cfg)
    h, w = img.shape
    best = np.full((h, w), -np.inf, dtype=np.float32)
    for d in diameters(cfg):
        z, b = _scale_map(img, d, float(cfg.ratio))
        full = np.repeat(np.repeat(z, b, axis=0), b, axis=1)
        np.maximum(best[: full.shape[0], : full.shape[1]], full, out=best[: full.shape[0], : full.shape[1]])
    return best


def _candidates(img: np.ndarray, cfg: AutopromptSettings) -> list[dict]:
    """Peaks above threshold at every scale with their hysteresis regions (full-res px)."""
    h, w = img.shape
    out = []
    for d in diameters(cfg):
        z, b = _scale_map(img, d, float(cfg.ratio))
        radius = max(1, int(round(d / 2 / b)))
        peaks = (z == ndimage.maximum_filter(z, size=2 * radius + 1, mode="nearest")) & (
            z > cfg.threshold_sigma
        )
        if not peaks.any():
            continue
        labels, _ = ndimage.label(z > cfg.grow_sigma)
        objects = ndimage.find_objects(labels)
        py, px = np.nonzero(peaks)
        for y, x in zip(py, px):
            lab = labels[y, x]
            sl = objects[lab - 1]
            region = labels[sl] == lab
            weights = np.where(region, z[sl], 0.0)
            cy, cx = ndimage.center_of_mass(weights)
            y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            out.append(
                {
                    "z": float(z[y, x]),
                    "diameter": float(d),
                    "peak": ((x + 0.5) * b - 0.5, (y + 0.5) * b - 0.5),
                    "centre": ((sl[1].start + cx + 0.5) * b - 0.5, (sl[0].start + cy + 0.5) * b - 0.5),
                    "bbox": (x0 * b, y0 * b, min(w, x1 * b), min(h, y1 * b)),
                    "area": int(region.sum()) * b * b,
                }
            )
    return out


def _inside(point: tuple[float, float], bbox: tuple[float, float, float, float]) -> bool:
    return bbox[0] <= point[0] < bbox[2] and bbox[1] <= point[1] < bbox[3]


def detect(
    frames: np.ndarray | Sequence[np.ndarray],
    config: AutopromptSettings | Mapping[str, Any] | None = None,
    *,
    floor: float | None = None,
) -> list[Detection]:
    """Find particles on one frame, or on the mean of a few consecutive frames.

    Parameters
    ----------
    frames : ndarray or sequence of ndarray
        (H, W) frame, or (N, H, W) / list of frames averaged before detecting.
    config : AutopromptSettings or mapping, optional
        ``autoprompt`` settings (defaults: ``configs/serve.yaml``).
    floor : float, optional
        Detect down to this significance (robust noise sigmas) instead of ``threshold_sigma``,
        with no ``max_objects`` limit: the candidates :func:`confirmed` takes. The detections
        at or above ``threshold_sigma`` are the same as without it.

    Returns
    -------
    list of Detection
        Strongest first, at most ``max_objects`` (without ``floor``).
    """
    cfg = settings(config)
    if floor is not None:
        if not cfg.grow_sigma <= floor <= cfg.threshold_sigma:
            raise SamemError(f"autoprompt floor {floor} must lie within [grow_sigma, threshold_sigma]")
        # confirm_sigma is not for this pass: the lowered threshold must not fail its check
        cfg = cfg.replace(threshold_sigma=float(floor), max_objects=1 << 30, confirm_sigma=0.0)
    stack = np.asarray(frames, dtype=np.float32)
    image = stack if stack.ndim == 2 else stack.mean(axis=0)
    if image.ndim != 2:
        raise SamemError(f"autoprompt needs (H, W) frames, got shape {stack.shape}")
    h, w = image.shape
    cands = sorted(_candidates(_prepared(image, cfg), cfg), key=lambda c: -c["z"])
    last = _prepared(stack[-1], cfg) if stack.ndim == 3 and len(stack) > 1 else None
    accepted: list[dict] = []
    for c in cands:
        if any(_inside(c["peak"], a["bbox"]) or _inside(a["peak"], c["bbox"]) for a in accepted):
            continue  # a fragment, or the same particle at another scale
        accepted.append(c)
    found: list[Detection] = []
    e, pad = cfg.edge_px, cfg.pad_px
    maps: dict[float, tuple[np.ndarray, int]] = {}
    for c in accepted:
        if not cfg.min_area_px <= c["area"] <= cfg.max_area_px:
            continue
        x0, y0, x1, y1 = c["bbox"]
        cx, cy = c["centre"]
        if last is not None:  # averaged frames: move the box to where the particle is on the last one
            if c["diameter"] not in maps:
                maps[c["diameter"]] = _scale_map(last, c["diameter"], float(cfg.ratio))
            dx, dy = _shift(*maps[c["diameter"]], c)
            x0, x1, cx = x0 + dx, x1 + dx, cx + dx
            y0, y1, cy = y0 + dy, y1 + dy, cy + dy
        if e and (cx < e or cy < e or cx > w - e or cy > h - e):
            continue
        if any(_inside((cx, cy), d.box) for d in found):
            continue  # moved onto a stronger detection by following the last frame
        box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(w), x1 + pad), min(float(h), y1 + pad))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        found.append(Detection(box, (float(cx), float(cy)), int(c["area"]), c["z"], c["diameter"]))
    return found[: cfg.max_objects]


def _shift(z: np.ndarray, b: int, cand: Mapping[str, Any]) -> tuple[float, float]:
    """Offset (dx, dy), px, from a candidate's peak on the averaged frames to the strongest
    response at its scale on the last frame, searched within its box widened by half its
    diameter. (0, 0) unless that response exceeds ``_FOLLOW_SIGMA`` and beats the last frame's
    response at the peak itself by ``_FOLLOW_GAIN_SIGMA``: a particle that stayed put,
    or one too faint to be located on a single frame, keeps the averaged position."""
    r = cand["diameter"] / 2
    x0, y0, x1, y1 = cand["bbox"]
    hb, wb = z.shape
    i0, i1 = max(0, int((y0 - r) // b)), min(hb, int(-(-(y1 + r) // b)))
    j0, j1 = max(0, int((x0 - r) // b)), min(wb, int(-(-(x1 + r) // b)))
    win = z[i0:i1, j0:j1]
    px, py = cand["peak"]
    here = z[min(hb - 1, max(0, int(py // b))), min(wb - 1, max(0, int(px // b)))]
    if win.size == 0 or win.max() <= _FOLLOW_SIGMA or win.max() - here <= _FOLLOW_GAIN_SIGMA:
        return 0.0, 0.0
    i, j = np.unravel_index(int(np.argmax(win)), win.shape)
    return (j0 + j + 0.5) * b - 0.5 - px, (i0 + i + 0.5) * b - 0.5 - py


def detect_with_faint(
    frames: np.ndarray | Sequence[np.ndarray], config: AutopromptSettings | Mapping[str, Any] | None = None
) -> tuple[list[Detection], list[Detection]]:
    """:func:`detect` and, in the same pass, the faint candidates that :func:`confirmed` may
    confirm later.

    Returns
    -------
    detections : list of Detection
        Exactly what :func:`detect` returns.
    faint : list of Detection
        Candidates between ``confirm_sigma`` and ``threshold_sigma``, strongest first (none
        when ``confirm_sigma`` is 0).
    """
    cfg = settings(config)
    if not cfg.confirm_sigma:
        return detect(frames, cfg), []
    every = detect(frames, cfg, floor=cfg.confirm_sigma)
    strong = [d for d in every if d.strength >= cfg.threshold_sigma][: cfg.max_objects]
    return strong, [d for d in every if d.strength < cfg.threshold_sigma]


def confirmed(candidates: Iterable[Detection], others: Iterable[Detection], gate: float) -> list[Detection]:
    """The candidates that a detection on other frames confirms.

    A particle too faint for ``threshold_sigma`` on the mean of a few frames may still stand
    out a little on those *and* on the next few, near the same place, while noise peaks come
    and go (track-before-detect in its simplest form). A candidate is confirmed when one of
    ``others`` lies within ``gate`` times the larger of their two band-pass diameters of it;
    both lists come from :func:`detect` with the same ``floor`` (``confirm_sigma``).

    Parameters
    ----------
    candidates, others : iterable of Detection
        Detections on two disjoint sets of frames (px).
    gate : float
        Largest distance between the two, in band-pass diameters.

    Returns
    -------
    list of Detection
        The confirmed candidates, in their order.
    """
    theirs = [(d.centroid, d.diameter_px) for d in others]
    out = []
    for d in candidates:
        for (x, y), size in theirs:
            reach = gate * np.nanmax([d.diameter_px, size, 1.0])
            if np.hypot(x - d.centroid[0], y - d.centroid[1]) <= reach:
                out.append(d)
                break
    return out


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
