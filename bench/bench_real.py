"""samem on real electron-microscopy data: segmentation, a real low-dose movie, real trajectories.

Reads the openly licensed data in ``../shared/realdata`` (``--data PATH``; its README gives
sources, licences and credits) and writes every figure to ``--json`` (``bench/records/real/real.json``)
and the plots to ``--img`` (``docs/img/real_*.png``). No test depends on the data; the pure
helpers below (metrics, matching, label-free checks) are tested on small synthetic arrays in
``tests/test_bench_real.py``.

**a. microscopy-seg-track** (20 + 20 real bright-field TEM tiles of gold nanoparticles,
512 x 512 px, hand-drawn masks; CC-BY-4.0). Ground-truth instances are the 4-connected
components of each label mask; a *whole* particle does not touch the tile edge and has at
least 20 px (two specks of 10 and 14 px on the test tiles are not particles). Every method
gets, per component, the box prompt ``(x0, y0, x_max, y_max)`` made of the first and last
pixel indices of the component (this reproduces the issue's reference figures).

* ``samem``: the shipped default model through samem's public API as ``samem analyze`` builds
  it (``load_settings`` + ``model_tracker_factory``; ``StreamingTracker.start`` on the one
  image). Instance IoU per whole particle (mean, median, 10th percentile), all whole
  particles of a tile prompted together (the tracker's denoising follows their median box);
  semantic IoU per tile from a second start with a box for every component (edge-cut
  particles and specks too): union of the predicted masks against the union of the labels.
* ``otsu``: inside the same box (pixels x0..x_max, y0..y_max), Gaussian blur sigma 2 px of
  the crop, Otsu's threshold (256-bin histogram of the crop), largest dark 4-connected
  component.
* ``classical``: samem's classical baseline (:func:`samem.eval.classical.track_classical`,
  trackpy bandpass + locate, local Otsu masks) given the same boxes, as in bench_accuracy.
* ``auto``: samem's auto-prompt detector (:func:`samem.stream.autoprompt.detect`, shipped
  settings) proposes boxes on the tile and the model segments them (``samem analyze
  --auto-prompt``). Detection precision / recall: one-to-one matching (Hungarian, on mask
  IoU) of the predicted masks to the whole particles, a match needs IoU >= 0.5; a prediction
  that matches a partial (edge or speck) component at IoU >= 0.5 is neither a hit nor a
  false positive. The detector's own boxes are scored the same way on box IoU, and so are the
  classical baseline's masks (which were given the true boxes, so its recall is prompted).

``--refine`` (stretch) adds two post-processings of samem's masks, their settings chosen on
the **train** split only (best mean instance IoU) and then applied once to test: an
intensity-guided boundary snap (:func:`refine_mask`: inside a band around the mask, a pixel
is in when the blurred image there is darker than a level between the mask core's and the
surrounding ring's median; grid :data:`REFINE_GRID`) and, as its yardstick, a plain erosion
(:data:`ERODE_GRID`). These post-processings are applied outside the tracker. The tracker's
own boundary refinement (``TrackerOptions.refine_band_px``, :mod:`samem.track.refine`) is
scored by passing it as a tracker option: ``--tracker refine_band_px=5`` (segmentation part
only; repeatable ``NAME=VALUE``, read as ``samem analyze --tracker`` reads them).

**b. SHINE2-Au** (100 ultra-low-dose graphene-liquid-cell frames, 16-bit, no labels; MIT). A
single frame looks like noise; on an average of ~10 frames a 2-3 nm Au nanocrystal shows
lattice fringes. Their period was read once off the power spectrum of the mean of frames 0-9
(a 64-px crop on the crystal against one of background: 10.8 and 10.5 times the power at
periods 8.0 and 7.1 px, at most 1.6 times elsewhere), hence the *lattice energy*
(:func:`lattice_energy`): the image band-passed in Fourier space to periods 6-8.5 px, squared
and smoothed over 12 px. The crystal is found automatically on the energy of the mean of
frames 0-9: the prompt box is the bounding box of the connected region around the energy
maximum where the energy exceeds the midpoint between the map's median and its maximum
(:func:`find_crystal`). The tracker is prompted once with that box on frame 0 and run through
all 100 frames: on the raw frames (the default tracker; with samem's presence rule off so that
SAM 2's own object score decides; and, where samem has it, with the position check ``verify``
off), and on the trailing 10-frame running mean (what a live user can compute). Label-free
check (:func:`reference_track`): on the centred sliding mean of ``--window`` frames the
crystal is re-found on every frame as the energy-weighted centroid around the energy maximum
within 15 px of its previous position; the reference's own error is estimated from two
references built on disjoint frames (even and odd). Reported: fraction of frames present,
distance of samem's positions to the reference (median, 90th percentile; fraction of all
frames on which samem is present within the crystal's radius, half the box's shorter side),
and the rms frame-to-frame step (jitter) of samem's track, of the same track after a centred
moving average over the window, and of the reference.

**c. MoNet-AuNR** (459 real liquid-cell TEM trajectories of gold nanoparticles x 300
frames; MIT). Pixel size and frame rate are not stated, so everything is in **px and
frames** (D in px^2/frame^alpha). samem's statistics pipeline
(:func:`samem.stats.compute_statistics`: time-averaged MSD, per-track generalised
least-squares fit of ``4 D t^alpha + offset`` over its log-spaced lags, ensemble MSD and fit)
is cross-checked against trackpy (``imsd``/``emsd`` and ``trackpy.utils.fit_powerlaw``, the
log-log least-squares fit ``A t^n``, on the same lags; D = A / 4): MSD curves, per-track D
and alpha (median and worst relative difference), the ensemble MSD and the alpha
distribution.

    python bench/bench_real.py --refine             # all parts, both splits (bench/records/real/real.json)
    python bench/bench_real.py --parts seg --splits train
    python bench/bench_real.py --parts seg --splits train --tracker refine_band_px=5
    python bench/bench_real.py --data /path/to/realdata --json bench/records/real/real.json --img docs/img

One torch thread (``--threads``); about a minute and a half on the 2-vCPU development machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "realdata"
#: components smaller than this (px) are specks, not particles
MIN_AREA_PX = 20
#: IoU a detection needs to count as a hit
MATCH_IOU = 0.5


# --------------------------------------------------------------------------- metrics


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def iou_matrix(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> np.ndarray:
    """Mask IoU of every prediction with every truth.

    Parameters
    ----------
    preds, truths : sequence of ndarray
        Boolean ``(H, W)`` masks, all of one shape (px).

    Returns
    -------
    ndarray
        ``(len(preds), len(truths))`` IoU values in [0, 1].
    """
    if not len(preds) or not len(truths):
        return np.zeros((len(preds), len(truths)))
    p = np.stack([np.asarray(m, bool).ravel() for m in preds]).astype(np.float32)
    t = np.stack([np.asarray(m, bool).ravel() for m in truths]).astype(np.float32)
    inter = p @ t.T
    union = p.sum(1)[:, None] + t.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0).astype(float)


def box_iou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """IoU of axis-aligned boxes ``(x0, y0, x1, y1)`` (continuous px coordinates), ``(len(a), len(b))``."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, float)[:, None, :]
    B = np.asarray(b, float)[None, :, :]
    w = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    h = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = w * h
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True)
class Matching:
    """Detections matched one-to-one to ground truth.

    Attributes
    ----------
    tp, fp, fn : int
        Hits, false detections and missed truths.
    ignored : int
        Unmatched detections that matched a don't-care truth (neither hit nor false).
    pairs : list of tuple
        ``(prediction index, truth index, IoU)`` of the hits.
    """

    tp: int
    fp: int
    fn: int
    ignored: int
    pairs: list

    @property
    def precision(self) -> float:
        """Hits / counted detections (NaN when nothing was detected)."""
        n = self.tp + self.fp
        return self.tp / n if n else math.nan

    @property
    def recall(self) -> float:
        """Hits / truths (NaN when there is no truth)."""
        n = self.tp + self.fn
        return self.tp / n if n else math.nan


def match(ious: np.ndarray, threshold: float = MATCH_IOU, ignore: np.ndarray | None = None) -> Matching:
    """Match detections to truths one-to-one, maximising the summed IoU (Hungarian).

    Parameters
    ----------
    ious : ndarray
        ``(P, T)`` IoU of each detection with each counted truth.
    threshold : float
        A pair is a hit when its IoU is at least this.
    ignore : ndarray, optional
        ``(P, K)`` IoU of each detection with don't-care truths (particles cut by the edge,
        specks): an unmatched detection with IoU >= ``threshold`` against one of them is
        ``ignored`` rather than false.

    Returns
    -------
    Matching
    """
    ious = np.asarray(ious, float)
    if ious.ndim != 2:
        raise ValueError(f"ious must be a (detections, truths) matrix, got shape {ious.shape}")
    P, T = ious.shape
    pairs = []
    if P and T:
        rows, cols = linear_sum_assignment(-ious)
        pairs = [(int(r), int(c), float(ious[r, c])) for r, c in zip(rows, cols) if ious[r, c] >= threshold]
    hit = {r for r, _, _ in pairs}
    unmatched = [r for r in range(P) if r not in hit]
    ignored = 0
    if ignore is not None and np.size(ignore):
        ignore = np.asarray(ignore, float)
        ignored = sum(1 for r in unmatched if ignore[r].max() >= threshold)
    return Matching(len(pairs), len(unmatched) - ignored, T - len(pairs), ignored, pairs)


def spread(values) -> dict:
    """Mean, median, 10th and 90th percentile, minimum and count of finite values (NaN when empty)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {
            "n": 0,
            "mean": math.nan,
            "median": math.nan,
            "p10": math.nan,
            "p90": math.nan,
            "min": math.nan,
        }
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
        "min": float(v.min()),
    }


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Instance:
    """One labelled component of a tile.

    Attributes
    ----------
    mask : ndarray
        Boolean ``(H, W)`` mask.
    box : tuple of int
        ``(x0, y0, x_max, y_max)``: first and last column and row of the component (px).
    area : int
        Pixels.
    whole : bool
        Not touching the tile edge and at least :data:`MIN_AREA_PX` px.
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    area: int
    whole: bool

    @property
    def prompt(self) -> tuple[float, float, float, float]:
        """The box prompt (px): the bounding pixel indices, widened to 1 px where a side is 0."""
        x0, y0, x1, y1 = self.box
        return float(x0), float(y0), float(max(x1, x0 + 1)), float(max(y1, y0 + 1))


def read_label_mask(path: str | Path) -> np.ndarray:
    """Particle mask of a microscopy-seg-track label (RGBA PNG, particle = 255) as bool ``(H, W)``."""
    from PIL import Image

    with Image.open(path) as img:
        a = np.asarray(img)
    if a.ndim == 3:
        a = a[..., 0]
    return a > 127


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x_max, y_max)``: first and last column and row holding the mask (px indices)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise ValueError("empty mask has no box")
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def instances(label: np.ndarray, min_area_px: int = MIN_AREA_PX) -> list[Instance]:
    """4-connected components of a particle mask, each with its box and whether it is whole.

    Parameters
    ----------
    label : ndarray
        Boolean ``(H, W)`` particle mask.
    min_area_px : int
        Smaller components are specks (not whole).

    Returns
    -------
    list of Instance
        In label order (row-major first pixel).
    """
    comp, n = ndimage.label(np.asarray(label, bool))
    h, w = comp.shape
    out = []
    for k, sl in enumerate(ndimage.find_objects(comp), 1):
        if sl is None:
            continue
        m = comp == k
        y0, y1, x0, x1 = sl[0].start, sl[0].stop - 1, sl[1].start, sl[1].stop - 1
        area = int(np.count_nonzero(m))
        edge = x0 == 0 or y0 == 0 or x1 == w - 1 or y1 == h - 1
        out.append(Instance(m, (x0, y0, x1, y1), area, (not edge) and area >= min_area_px))
    return out


def tiles(split: Path) -> list[tuple[Path, Path]]:
    """``(image, label)`` paths of a split folder (``images/image_N.png``, ``labels/label_N.png``)."""
    from samem.io.readers import open_video

    with open_video(split / "images") as reader:  # samem's own image-folder reader and order
        files = list(reader.files)
    return [(f, split / "labels" / f.name.replace("image_", "label_")) for f in files]


def read_image(path: Path) -> np.ndarray:
    """A tile as samem reads it (:mod:`samem.io.formats.images`): 2-D grayscale, its own dtype."""
    from samem.io.formats.images import ImageFolderReader

    return ImageFolderReader(path.parent, [path])[0]


# --------------------------------------------------------------------------- baselines


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` from a ``bins``-bin histogram over their range (a bin centre).

    Returns the value t maximising the between-class variance of ``values <= t`` and ``> t``;
    for constant input, that value.
    """
    v = np.asarray(values, float).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(float)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (all False when empty)."""
    comp, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(comp.ravel())[1:]
    return comp == int(np.argmax(sizes)) + 1


def otsu_in_box(image: np.ndarray, box: Sequence[float], sigma_px: float = 2.0) -> np.ndarray:
    """The threshold baseline: largest dark component of the blurred crop below its Otsu level.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` grayscale image.
    box : sequence of float
        ``(x0, y0, x_max, y_max)``: pixels x0..x_max, y0..y_max are the crop.
    sigma_px : float
        Gaussian blur of the crop (px, reflected borders).

    Returns
    -------
    ndarray
        Boolean ``(H, W)`` mask, empty outside the crop.
    """
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    crop = np.asarray(image, np.float32)[y0 : y1 + 1, x0 : x1 + 1]
    out = np.zeros(np.shape(image), bool)
    if crop.size == 0:
        return out
    blurred = ndimage.gaussian_filter(crop, sigma_px) if sigma_px > 0 else crop
    out[y0 : y1 + 1, x0 : x1 + 1] = largest_component(blurred <= otsu_threshold(blurred))
    return out


def refine_mask(
    image: np.ndarray, mask: np.ndarray, band_px: int = 4, sigma_px: float = 2.0, level: float = 0.5
) -> np.ndarray:
    """Snap a mask's boundary to the image's own edge (dark particles on a brighter background).

    Inside the mask, pixels deeper than ``band_px`` (the *core*) stay in; outside, pixels
    farther than ``band_px`` stay out. In the band between, a pixel of the blurred image is in
    when it is at most ``I_core + level * (I_out - I_core)``, with ``I_core`` the median of
    the core and ``I_out`` the median of a ring from ``band_px`` to ``2 band_px`` outside
    the mask (``level`` 0.5: the half-way edge). The components touching the core are kept
    and their holes filled. The mask is returned unchanged when it has no core or no ring.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` grayscale image.
    mask : ndarray
        Boolean ``(H, W)`` mask to refine.
    band_px : int
        Half-width of the band around the boundary, px (0 returns the mask).
    sigma_px : float
        Gaussian blur of the image before the comparison, px.
    level : float
        Where between the core's and the ring's intensity the edge lies (0-1).

    Returns
    -------
    ndarray
        Boolean ``(H, W)`` refined mask.
    """
    mask = np.asarray(mask, bool)
    if band_px <= 0 or not mask.any():
        return mask.copy()
    x0, y0, x1, y1 = mask_box(mask)
    pad = 2 * band_px + 3 * int(math.ceil(sigma_px)) + 2
    h, w = mask.shape
    ys = slice(max(y0 - pad, 0), min(y1 + pad + 1, h))
    xs = slice(max(x0 - pad, 0), min(x1 + pad + 1, w))
    m = mask[ys, xs]
    img = np.asarray(image, np.float32)[ys, xs]
    img = ndimage.gaussian_filter(img, sigma_px) if sigma_px > 0 else img
    core = ndimage.binary_erosion(m, iterations=band_px)
    outer = ndimage.binary_dilation(m, iterations=band_px)
    ring = ndimage.binary_dilation(m, iterations=2 * band_px) & ~outer
    if not core.any() or not ring.any():
        return mask.copy()
    i_core, i_out = float(np.median(img[core])), float(np.median(img[ring]))
    new = core | (outer & ~core & (img <= i_core + level * (i_out - i_core)))
    comp, _ = ndimage.label(new)
    new = ndimage.binary_fill_holes(np.isin(comp, np.unique(comp[core & (comp > 0)])))
    out = np.zeros_like(mask)
    out[ys, xs] = new
    return out


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask eroded by ``px`` pixels (4-connected structuring element; ``px`` 0 returns a copy)."""
    mask = np.asarray(mask, bool)
    return ndimage.binary_erosion(mask, iterations=px) if px > 0 else mask.copy()


# --------------------------------------------------------------------------- a. segmentation


#: tracker options that switch samem's presence rule off (SAM 2's own present/absent score decides)
NO_PRESENCE_RULE = {"reappear_score": 0.5, "reappear_iou": 0.0, "reappear_frames": 1, "lost_iou": 0.0}


def _tracker_factory(model: str | None, threads: int, config: str | None = None, **options):
    """Fresh trackers built as ``samem analyze`` builds them (serve settings, or ``config`` over
    them as ``--config`` does, + ``options``)."""
    from samem.stream.service import model_tracker_factory
    from samem.stream.settings import load_settings, with_tracker_options

    settings = load_settings(config, {"model.name": model})
    settings = with_tracker_options(settings, {"num_threads": threads, **options})
    factory, name = model_tracker_factory(settings.model)
    return factory, name, settings


def _masks_of(results: Mapping, ids: Sequence) -> list[np.ndarray]:
    return [np.asarray(results[i].mask, bool) for i in ids]


def segment_tile(image: np.ndarray, truth: list[Instance], factory, settings) -> dict:
    """All methods on one tile; returns per-particle IoUs, semantic IoUs and detection matchings."""
    from samem.eval.classical import track_classical
    from samem.stream import autoprompt

    whole = [k for k, t in enumerate(truth) if t.whole]
    partial = [k for k, t in enumerate(truth) if not t.whole]
    true_union = np.zeros(image.shape, bool)
    for t in truth:
        true_union |= t.mask
    boxes = {k + 1: t.prompt for k, t in enumerate(truth)}
    out: dict = {"n_whole": len(whole), "n_components": len(truth), "whole": whole}
    # instance IoU: the whole particles' boxes only (the denoising sigma follows the median box)
    t0 = time.perf_counter()
    res = factory().start(image, {k + 1: boxes[k + 1] for k in whole}) if whole else {}
    out["samem_s"] = time.perf_counter() - t0
    inst = dict(zip(whole, _masks_of(res, [k + 1 for k in whole])))
    # semantic IoU: a box for every labelled component, edge-cut particles and specks included
    every = _masks_of(factory().start(image, boxes), list(boxes)) if boxes else []
    otsu = [otsu_in_box(image, t.box) for t in truth]
    out["instance_masks"] = {"samem": inst, "otsu": dict(enumerate(otsu))}
    out["masks"] = {"samem": every, "otsu": otsu}
    for name in ("samem", "otsu"):
        per, masks = out["instance_masks"][name], out["masks"][name]
        out[f"{name}_iou"] = [iou(per[k], truth[k].mask) for k in whole]
        out[f"{name}_area_ratio"] = [np.count_nonzero(per[k]) / truth[k].area for k in whole]
        out[f"{name}_semantic"] = iou(np.logical_or.reduce(masks), true_union) if masks else math.nan
    # classical baseline, given the same boxes (diameter, polarity, identities)
    _, labels = track_classical([image], boxes)
    lab = labels[0]
    cls_masks = [lab == v for v in np.unique(lab) if v]
    out["classical_semantic"] = iou(lab > 0, true_union)
    out["classical_iou"] = [iou(lab == k + 1, truth[k].mask) for k in whole]
    out["classical_area_ratio"] = [np.count_nonzero(lab == k + 1) / truth[k].area for k in whole]
    # auto-prompt: the detector's boxes, then the model on them
    found = autoprompt.detect(image, settings["autoprompt"])
    auto_masks = []
    if found:
        res = factory().start(image, {i + 1: d.box for i, d in enumerate(found)})
        auto_masks = _masks_of(res, [i + 1 for i in range(len(found))])
    out["auto_semantic"] = iou(
        np.logical_or.reduce(auto_masks) if auto_masks else np.zeros(image.shape, bool), true_union
    )
    wm = [truth[k].mask for k in whole]
    pm = [truth[k].mask for k in partial]
    out["auto_match"] = match(iou_matrix(auto_masks, wm), ignore=iou_matrix(auto_masks, pm))
    tb = [(t.box[0], t.box[1], t.box[2] + 1, t.box[3] + 1) for t in truth]  # continuous box of the pixels
    db = [d.box for d in found]
    out["autobox_match"] = match(
        box_iou_matrix(db, [tb[k] for k in whole]), ignore=box_iou_matrix(db, [tb[k] for k in partial])
    )
    out["classical_match"] = match(iou_matrix(cls_masks, wm), ignore=iou_matrix(cls_masks, pm))
    out["n_auto"] = len(found)
    return out


def _pooled(matchings: Sequence[Matching]) -> dict:
    m = Matching(
        sum(x.tp for x in matchings),
        sum(x.fp for x in matchings),
        sum(x.fn for x in matchings),
        sum(x.ignored for x in matchings),
        [],
    )
    return {
        "precision": m.precision,
        "recall": m.recall,
        "tp": m.tp,
        "fp": m.fp,
        "fn": m.fn,
        "ignored": m.ignored,
    }


def run_segmentation(split_dir: Path, factory, settings, progress=None) -> list[dict]:
    """Every method on every tile of a split; per-tile results (with images, truth and masks)."""
    per_tile = []
    pairs = tiles(split_dir)
    for img_path, lab_path in progress(pairs) if progress else pairs:
        image = read_image(img_path)
        truth = instances(read_label_mask(lab_path))
        r = segment_tile(image, truth, factory, settings)
        r["tile"] = img_path.stem
        r["image"] = image
        r["truth"] = truth
        per_tile.append(r)
    return per_tile


def apply_postprocess(per_tile: list[dict], name: str, fn) -> None:
    """Score ``fn(image, samem mask)`` as method ``name`` on every tile (instance and semantic IoU)."""
    for r in per_tile:
        inst = r["instance_masks"]["samem"]
        truth = r["truth"]
        done = {k: fn(r["image"], inst[k]) for k in r["whole"]}
        r[f"{name}_iou"] = [iou(done[k], truth[k].mask) for k in r["whole"]]
        r[f"{name}_area_ratio"] = [np.count_nonzero(done[k]) / truth[k].area for k in r["whole"]]
        masks = [fn(r["image"], m) for m in r["masks"]["samem"]]
        union = np.logical_or.reduce(masks) if masks else np.zeros(r["image"].shape, bool)
        r[f"{name}_semantic"] = iou(union, np.logical_or.reduce([t.mask for t in truth]))


def mean_instance_iou(per_tile: list[dict], fn) -> float:
    """Mean IoU over the whole particles of ``fn(image, samem instance mask)``."""
    return float(
        np.mean(
            [
                iou(fn(r["image"], r["instance_masks"]["samem"][k]), r["truth"][k].mask)
                for r in per_tile
                for k in r["whole"]
            ]
        )
    )


#: the refinement grid searched on the train split: band px, blur sigma px, edge level
REFINE_GRID = [(b, s, lv) for b in (2, 3, 4, 6) for s in (1.0, 2.0) for lv in (0.1, 0.2, 0.3, 0.5)]
#: erosions (px) scored beside it: how far samem's masks sit outside the hand-drawn edge
ERODE_GRID = [1, 2, 3, 4, 5]


def summarise_segmentation(per_tile: list[dict], methods: Sequence[str]) -> dict:
    """Instance IoU spread, area ratio, semantic IoU and pooled detection figures of a split."""
    summary: dict = {
        "tiles": len(per_tile),
        "whole_particles": sum(r["n_whole"] for r in per_tile),
        "components": sum(r["n_components"] for r in per_tile),
        "instance_iou": {},
        "area_ratio_median": {},
        "semantic_iou": {},
        "detection": {},
    }
    for m in methods:
        vals = [v for r in per_tile for v in r[f"{m}_iou"]]
        summary["instance_iou"][m] = {**spread(vals), "values": [round(v, 4) for v in vals]}
        summary["area_ratio_median"][m] = float(
            np.median([v for r in per_tile for v in r[f"{m}_area_ratio"]])
        )
    for m in [*methods, "auto"]:
        vals = [r[f"{m}_semantic"] for r in per_tile]
        summary["semantic_iou"][m] = {
            **spread(vals),
            "per_tile": {r["tile"]: round(r[f"{m}_semantic"], 4) for r in per_tile},
        }
    summary["detection"] = {
        "auto_prompt_samem_masks": _pooled([r["auto_match"] for r in per_tile]),
        "auto_prompt_boxes": _pooled([r["autobox_match"] for r in per_tile]),
        "classical_given_true_boxes": _pooled([r["classical_match"] for r in per_tile]),
    }
    summary["auto_prompt_detections"] = sum(r["n_auto"] for r in per_tile)
    summary["samem_seconds_per_tile"] = float(np.mean([r["samem_s"] for r in per_tile]))
    return summary


def choose_refinement(train: list[dict]) -> dict:
    """Search :data:`REFINE_GRID` and :data:`ERODE_GRID` on the train tiles; the best by mean IoU."""
    grid = []
    for band, sigma, level in REFINE_GRID:
        score = mean_instance_iou(
            train, lambda im, m, b=band, s=sigma, lv=level: refine_mask(im, m, b, s, lv)
        )
        grid.append({"band_px": band, "sigma_px": sigma, "level": level, "train_mean_iou": score})
    erosion = [
        {"px": e, "train_mean_iou": mean_instance_iou(train, lambda im, m, e=e: erode(m, e))}
        for e in ERODE_GRID
    ]
    best = max(grid, key=lambda g: g["train_mean_iou"])
    return {
        "grid": grid,
        "erosion": erosion,
        "chosen": best,
        "chosen_erosion": max(erosion, key=lambda g: g["train_mean_iou"]),
    }


def plot_overlays(per_tile: list[dict], names: Sequence[str], path: Path, crop_px: int = 200) -> None:
    """True (green), samem (red) and Otsu-in-box (blue) contours on a ``crop_px`` square of a few tiles.

    Each crop is centred on the tile's densest labelled area; titles give the tile's mean
    instance IoU of both methods.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in per_tile if r["tile"] in names] or per_tile[:3]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.4 * len(chosen), 3.7), dpi=90)
    colours = {"truth": "#00d000", "samem": "#ff3030", "otsu": "#3080ff"}
    for ax, r in zip(np.atleast_1d(axes), chosen):
        h, w = r["image"].shape
        truth = np.logical_or.reduce([t.mask for t in r["truth"]])
        dens = ndimage.uniform_filter(truth.astype(float), crop_px)
        cy, cx = np.unravel_index(int(np.argmax(dens)), dens.shape)
        y0 = int(np.clip(cy - crop_px // 2, 0, h - crop_px))
        x0 = int(np.clip(cx - crop_px // 2, 0, w - crop_px))
        win = (slice(y0, y0 + crop_px), slice(x0, x0 + crop_px))
        ax.imshow(r["image"][win], cmap="gray")
        union = {
            "truth": truth,
            "samem": np.logical_or.reduce(r["masks"]["samem"]),
            "otsu": np.logical_or.reduce(r["masks"]["otsu"]),
        }
        for key, m in union.items():
            ax.contour(m[win].astype(float), [0.5], colors=colours[key], linewidths=0.8)
        ax.set_title(
            f"{r['tile']} (x {x0}, y {y0}): mean IoU samem {np.mean(r['samem_iou']):.2f}, "
            f"Otsu {np.mean(r['otsu_iou']):.2f}",
            fontsize=7,
        )
        ax.set_axis_off()
    fig.suptitle("microscopy-seg-track test: truth (green), samem (red), Otsu in box (blue)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


# --------------------------------------------------------------------------- b. SHINE2-Au


def read_stack(folder: Path, pattern: str = "*.tif") -> np.ndarray:
    """All TIFF frames of a folder in name order as float32 ``(T, H, W)`` (any byte order)."""
    import tifffile

    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return np.stack([tifffile.imread(f).astype(np.float32) for f in files])


def lattice_energy(image: np.ndarray, period_px: tuple[float, float] = (6.0, 8.5), smooth_px: float = 12.0):
    """Local power of the image's spatial frequencies with periods in ``period_px`` (lattice fringes).

    The image minus its mean is filtered in Fourier space by a ring passing periods
    ``period_px[0] .. period_px[1]`` (px), squared and smoothed by a Gaussian.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` frame or average of frames.
    period_px : tuple of float
        Shortest and longest period passed, px.
    smooth_px : float
        Gaussian sigma over which the squared band-pass is averaged, px.

    Returns
    -------
    ndarray
        ``(H, W)`` energy (image units squared).
    """
    img = np.asarray(image, np.float64)
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    k = np.hypot(fx, fy)
    ring = (k >= 1.0 / period_px[1]) & (k <= 1.0 / period_px[0])
    band = np.real(np.fft.ifft2(np.fft.fft2(img - img.mean()) * ring))
    return ndimage.gaussian_filter(band * band, smooth_px)


def find_crystal(energy: np.ndarray, level: float = 0.5, min_side_px: int = 16):
    """The prompt box of the most textured blob of an energy map.

    The region is the connected set around the map's maximum where the energy exceeds
    ``median + level * (max - median)``; its box is ``(x0, y0, x1, y1)`` with x1, y1 one past
    the last pixel (continuous px), widened symmetrically to at least ``min_side_px``.

    Returns
    -------
    box : tuple of float
        ``(x0, y0, x1, y1)`` px, inside the frame.
    peak : tuple of float
        ``(x, y)`` of the maximum, px indices.
    """
    e = np.asarray(energy, float)
    h, w = e.shape
    py, px = np.unravel_index(int(np.argmax(e)), e.shape)
    med = float(np.median(e))
    comp, _ = ndimage.label(e > med + level * (e[py, px] - med))
    ys, xs = np.nonzero(comp == comp[py, px])
    x0, x1, y0, y1 = xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sx, sy = max(x1 - x0, min_side_px) / 2, max(y1 - y0, min_side_px) / 2
    box = (max(cx - sx, 0.0), max(cy - sy, 0.0), min(cx + sx, float(w)), min(cy + sy, float(h)))
    return tuple(float(v) for v in box), (float(px), float(py))


def sliding_mean(stack: np.ndarray, window: int, centred: bool = True) -> np.ndarray:
    """Running mean of frames over ``window`` frames (``(T, H, W)`` in, same shape out).

    Centred: frames ``t - window // 2 .. t - window // 2 + window - 1``; trailing: ``t - window + 1
    .. t``; both clipped to the video (fewer frames at its ends).
    """
    stack = np.asarray(stack, np.float64)
    T = len(stack)
    csum = np.concatenate([np.zeros((1, *stack.shape[1:])), np.cumsum(stack, axis=0)])
    out = np.empty(stack.shape, np.float32)
    for t in range(T):
        a = t - window // 2 if centred else t - window + 1
        a, b = max(a, 0), min(a + window, T) if centred else t + 1
        out[t] = (csum[b] - csum[a]) / (b - a)
    return out


def energy_peak(energy: np.ndarray, near: tuple[float, float], radius_px: float, centroid_px: float):
    """Position of the energy maximum within ``radius_px`` of ``near`` (x, y), refined.

    The refinement is the centroid of ``energy - median`` (clipped at 0) over the disc of
    ``centroid_px`` around the maximum. Returns ``(x, y)`` px indices.
    """
    e = np.asarray(energy, float)
    h, w = e.shape
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - near[0]) ** 2 + (yy - near[1]) ** 2 <= radius_px**2
    masked = np.where(inside, e, -np.inf)
    py, px = np.unravel_index(int(np.argmax(masked)), e.shape)
    disc = (xx - px) ** 2 + (yy - py) ** 2 <= centroid_px**2
    wts = np.where(disc, np.clip(e - np.median(e), 0, None), 0.0)
    s = wts.sum()
    if s <= 0:
        return float(px), float(py)
    return float((wts * xx).sum() / s), float((wts * yy).sum() / s)


def reference_track(
    stack: np.ndarray, start: tuple[float, float], window: int = 10, radius_px: float = 15.0, **energy_kw
) -> np.ndarray:
    """Label-free reference positions: the textured blob re-found on a centred sliding mean.

    Parameters
    ----------
    stack : ndarray
        ``(T, H, W)`` frames.
    start : tuple of float
        ``(x, y)`` px where the search begins (the prompt's centre).
    window : int
        Frames in the centred sliding mean.
    radius_px : float
        Largest move between consecutive frames' references, px; the refining centroid uses
        a disc of the same radius.
    **energy_kw
        Passed to :func:`lattice_energy`.

    Returns
    -------
    ndarray
        ``(T, 2)`` positions ``(x, y)``, px.
    """
    avg = sliding_mean(stack, window, centred=True)
    out = np.empty((len(stack), 2))
    near = tuple(start)
    for t in range(len(stack)):
        near = energy_peak(lattice_energy(avg[t], **energy_kw), near, radius_px, radius_px)
        out[t] = near
    return out


def moving_average(xy: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of positions ``(T, 2)`` over ``window`` frames, ignoring NaN rows."""
    xy = np.asarray(xy, float)
    out = np.full(xy.shape, np.nan)
    for t in range(len(xy)):
        a = max(t - window // 2, 0)
        seg = xy[a : a + window]
        ok = np.all(np.isfinite(seg), axis=1)
        if ok.any() and np.all(np.isfinite(xy[t])):
            out[t] = seg[ok].mean(axis=0)
    return out


def step_rms(xy: np.ndarray) -> float:
    """Root-mean-square frame-to-frame displacement of a track ``(T, 2)`` (px/frame).

    Only consecutive frames both present (finite) count; NaN when there are none.
    """
    d = np.diff(np.asarray(xy, float), axis=0)
    ok = np.all(np.isfinite(d), axis=1)
    return float(np.sqrt(np.mean(np.sum(d[ok] ** 2, axis=1)))) if ok.any() else math.nan


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame Euclidean distance between two tracks ``(T, 2)`` (NaN where either is missing), px."""
    return np.hypot(*(np.asarray(a, float) - np.asarray(b, float)).T)


def track_frames(tracker, frames: np.ndarray, box, progress=None) -> dict:
    """Prompt once on frame 0 and track; per-frame centroid (NaN when absent), score, area."""
    xy = np.full((len(frames), 2), np.nan)
    present = np.zeros(len(frames), bool)
    score = np.zeros(len(frames))
    area = np.zeros(len(frames), int)
    t0 = time.perf_counter()
    idx = range(len(frames))
    for t in progress(idx) if progress else idx:
        res = tracker.start(frames[t], {1: box}) if t == 0 else tracker.step(frames[t])
        r = res[1]
        present[t], score[t], area[t] = r.present, r.score, int(np.count_nonzero(r.mask))
        if r.present:
            xy[t] = r.centroid
    return {"xy": xy, "present": present, "score": score, "area": area, "seconds": time.perf_counter() - t0}


def shine_check(run: dict, reference: np.ndarray, window: int, radius_px: float) -> dict:
    """The label-free figures of one tracked run against the reference track (px, frames)."""
    d = distances(run["xy"], reference)
    ok = np.isfinite(d)
    smooth = moving_average(run["xy"], window)
    ds = distances(smooth, reference)
    return {
        "frames": int(len(d)),
        "present_fraction": float(run["present"].mean()),
        "distance_px": spread(d),
        "within_radius_fraction": float(np.mean(d[ok] <= radius_px)) if ok.any() else math.nan,
        # mean of (samem - reference) over present frames: a steady offset, not noise, if large
        "mean_offset_xy_px": [float(v) for v in np.nanmean(run["xy"] - reference, axis=0)]
        if ok.any()
        else [math.nan, math.nan],
        "within_radius_of_all_frames": float(np.sum(d[ok] <= radius_px) / len(d)),
        "smoothed_distance_px": spread(ds),
        "jitter_px_per_frame": step_rms(run["xy"]),
        "jitter_smoothed_px_per_frame": step_rms(smooth),
        "mean_score": float(run["score"].mean()),
        "median_area_px": float(np.median(run["area"][run["present"]])) if run["present"].any() else 0.0,
        "frames_per_s": len(d) / run["seconds"],
    }


def run_shine(folder: Path, model: str | None, threads: int, window: int, img_dir, progress=None) -> dict:
    """Part b: find the crystal, track it through all frames (raw and running mean), check it."""
    stack = read_stack(folder)
    first = stack[:window].mean(axis=0)
    box, peak = find_crystal(lattice_energy(first))
    centre = ((box[0] + box[2]) / 2 - 0.5, (box[1] + box[3]) / 2 - 0.5)
    radius = min(box[2] - box[0], box[3] - box[1]) / 2
    reference = reference_track(stack, centre, window)
    # the reference's own noise: two references from disjoint frames (even / odd, half the dose each)
    half = window // 2
    even, odd = reference_track(stack[0::2], centre, half), reference_track(stack[1::2], centre, half)
    n = min(len(even), len(odd))
    split_rms = float(np.sqrt(np.mean(np.sum((even[:n] - odd[:n]) ** 2, axis=1))))
    frames16 = np.clip(np.rint(stack), 0, 65535).astype(np.uint16)  # the files' own values
    trailing = sliding_mean(stack, window, centred=False)
    from samem.track.options import TrackerOptions

    factory = _tracker_factory(model, threads)[0]
    free = _tracker_factory(model, threads, **NO_PRESENCE_RULE)[0]
    runs = {
        "raw_frames": track_frames(factory(), frames16, box, progress),
        f"trailing_mean_{window}": track_frames(factory(), trailing, box, progress),
        "raw_frames_no_presence_rule": track_frames(free(), frames16, box, progress),
    }
    if "verify" in TrackerOptions.__dataclass_fields__:  # the position check, where samem has it
        unchecked = _tracker_factory(model, threads, verify=False)[0]
        runs["raw_frames_no_position_check"] = track_frames(unchecked(), frames16, box, progress)
    out = {
        "frames": int(len(stack)),
        "shape": list(stack.shape[1:]),
        "window": window,
        "prompt_box": [round(v, 1) for v in box],
        "energy_peak": list(peak),
        "crystal_radius_px": radius,
        "reference_jitter_px_per_frame": step_rms(reference),
        "reference_range_px": [float(v) for v in np.ptp(reference, axis=0)],
        # rms distance of two half-dose references; / 2 estimates the full reference's error per
        # frame when its error is noise (sigma_half = sqrt(2) sigma_full, diff = sqrt(2) sigma_half)
        "reference_split_half_rms_px": split_rms,
        "reference_noise_estimate_px": split_rms / 2,
        "runs": {k: shine_check(r, reference, window, radius) for k, r in runs.items()},
    }
    if img_dir is not None:
        plot_shine(first, box, reference, runs, img_dir / "real_shine2_track.png")
    return out


def plot_shine(avg: np.ndarray, box, reference: np.ndarray, runs: Mapping, path: Path) -> None:
    """The tracks over the mean of the first frames: full frame with the box, and a close-up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shown = ndimage.gaussian_filter(avg, 1.0)
    lo, hi = np.percentile(shown, [1, 99])
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.1), dpi=90)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 70
    colours = ["#ff3030", "#ffb000", "#ff60ff", "#40c0ff"]
    for i, ax in enumerate(axes):
        ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
        ax.add_patch(
            Rectangle(
                (box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False, ec="cyan", lw=0.8
            )
        )
        if i == 1:
            ax.plot(reference[:, 0], reference[:, 1], "-", color="#00e000", lw=1.0, label="reference")
            for (name, r), c in zip(runs.items(), colours):
                ax.plot(r["xy"][:, 0], r["xy"][:, 1], ".-", color=c, ms=2, lw=0.5, label=f"samem {name}")
            ax.set_xlim(cx - half, cx + half)
            ax.set_ylim(cy + half, cy - half)
            ax.legend(fontsize=6, loc="lower left")
        ax.set_axis_off()
    axes[0].set_title("SHINE2-Au: mean of frames 0-9, prompt box", fontsize=8)
    axes[1].set_title("tracks, 100 frames (px)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


# --------------------------------------------------------------------------- c. MoNet-AuNR


def load_monet(path: Path) -> pd.DataFrame:
    """MoNet's ``tr`` (rows ``[x, y, k]``, tracks stacked) as a table ``frame, particle, x, y`` (px).

    The frame is the row's position within its track (0-based); ``particle`` is k.
    """
    from scipy.io import loadmat

    tr = np.asarray(loadmat(path)["tr"], float)
    k = tr[:, 2].astype(int)
    frame = np.zeros(len(k), int)
    starts = np.r_[0, np.flatnonzero(np.diff(k)) + 1]
    for a, b in zip(starts, np.r_[starts[1:], len(k)]):
        frame[a:b] = np.arange(b - a)
    return pd.DataFrame({"frame": frame, "particle": k, "x": tr[:, 0], "y": tr[:, 1]})


def powerlaw_fit(lag: np.ndarray, msd: np.ndarray) -> tuple[float, float]:
    """Least-squares line through ``(log lag, log msd)``: returns ``(alpha, A)`` of ``MSD = A lag^alpha``.

    Non-positive or non-finite MSD values are left out (NaN, NaN when fewer than two remain).
    """
    lag, msd = np.asarray(lag, float), np.asarray(msd, float)
    ok = np.isfinite(msd) & (msd > 0) & (lag > 0)
    if ok.sum() < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(np.log(lag[ok]), np.log(msd[ok]), 1)
    return float(slope), float(np.exp(intercept))


def relative_difference(a, b) -> np.ndarray:
    """``|a - b| / |b|`` elementwise (NaN where b is 0 or either is NaN)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, np.abs(a - b) / np.abs(b), np.nan)


def _agreement(a, b, ids) -> dict:
    rel = relative_difference(a, b)
    ok = np.isfinite(rel)
    worst = int(np.nanargmax(np.where(ok, rel, -1))) if ok.any() else 0
    return {
        "median_rel_diff": float(np.median(rel[ok])) if ok.any() else math.nan,
        "p90_rel_diff": float(np.percentile(rel[ok], 90)) if ok.any() else math.nan,
        "max_rel_diff": float(rel[worst]) if ok.any() else math.nan,
        "worst_particle": int(ids[worst]),
        "worst_values_samem_trackpy": [float(np.asarray(a)[worst]), float(np.asarray(b)[worst])],
        "median_abs_diff": float(np.nanmedian(np.abs(np.asarray(a) - np.asarray(b)))),
    }


def run_monet(path: Path, img_dir: Path | None) -> dict:
    """Part c: samem's statistics and trackpy on the real trajectories (px, frames)."""
    import trackpy

    from samem.stats import compute_statistics, imsd, select_lags
    from samem.stats.summary import load_config

    trackpy.quiet()
    traj = load_monet(path)
    n_tracks = traj["particle"].nunique()
    lengths = traj.groupby("particle").size()
    cfg = load_config()
    t0 = time.perf_counter()
    stats = compute_statistics(traj, pixel_size_nm=1.0, frame_interval_s=1.0)
    samem_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tp_imsd = trackpy.imsd(traj, mpp=1.0, fps=1.0, max_lagtime=cfg["max_lag"])
    tp_emsd = trackpy.emsd(traj, mpp=1.0, fps=1.0, max_lagtime=cfg["max_lag"])
    trackpy_s = time.perf_counter() - t0
    s_imsd = imsd(traj, mpp=1.0, fps=1.0, max_lagtime=cfg["max_lag"])
    msd_rel = relative_difference(s_imsd.to_numpy(), tp_imsd[s_imsd.columns].to_numpy())
    parts = stats.particles.set_index("particle")
    ids = parts.index.to_numpy()
    span = int(lengths.median())
    lags = select_lags(span, cfg["max_lag"], **cfg["fit"])
    with warnings.catch_warnings():  # trackpy builds its table column by column (pandas warns)
        warnings.simplefilter("ignore")
        fits = trackpy.utils.fit_powerlaw(tp_imsd.loc[lags.astype(float)], plot=False)
    tp_alpha = fits["n"].reindex(ids).to_numpy(float)
    tp_D = fits["A"].reindex(ids).to_numpy(float) / 4
    s_alpha = parts["alpha"].to_numpy(float)
    s_Da = parts["D_alpha_nm2_s_alpha"].to_numpy(float)
    # the same log-log fit on samem's own MSD: isolates the fit model from the MSD computation
    own = np.array([powerlaw_fit(lags, s_imsd[p].loc[lags.astype(float)].to_numpy()) for p in ids])
    ens = stats.summary["ensemble"]
    s_emsd = stats.emsd.set_index("lag")["msd_nm2"]
    tp_emsd_v = tp_emsd.to_numpy(float)
    emsd_rel = relative_difference(s_emsd.to_numpy()[: len(tp_emsd_v)], tp_emsd_v)
    tp_ens_alpha, tp_ens_A = powerlaw_fit(lags, tp_emsd.loc[lags.astype(float)].to_numpy())
    ok = parts["fit_ok"].to_numpy(bool)
    at_bound = parts["message"].str.contains("bound").to_numpy(bool)
    out = {
        "units": "px and frames (pixel size and frame rate not stated by the source); D in px^2/frame^alpha",
        "tracks": int(n_tracks),
        "frames_per_track": [int(lengths.min()), int(lengths.max())],
        "positions": int(len(traj)),
        "fit_lags_frames": lags.tolist(),
        "msd_agreement_max_rel_diff": float(np.nanmax(msd_rel)),
        "emsd_agreement_max_rel_diff": float(np.nanmax(emsd_rel)),
        "samem": {
            "fitted_tracks": int(ok.sum()),
            "alpha": spread(s_alpha[ok]),
            "D_alpha_px2_per_frame_alpha": spread(s_Da[ok]),
            "D_brownian_px2_per_frame": spread(parts["D_nm2_s"].to_numpy(float)[ok]),
            "alpha_below_0.9_fraction": float(np.mean(s_alpha[ok] < 0.9)),
            "alpha_above_1.1_fraction": float(np.mean(s_alpha[ok] > 1.1)),
            "alpha_at_bound": int(at_bound.sum()),
            "ensemble_alpha": ens["alpha"],
            "ensemble_alpha_err": ens["alpha_err"],
            "ensemble_D_alpha": ens["D_alpha_nm2_s_alpha"],
            "ensemble_D_brownian": ens["D_nm2_s"],
            "seconds": samem_s,
        },
        "trackpy": {
            "alpha": spread(tp_alpha),
            "D_alpha_px2_per_frame_alpha": spread(tp_D),
            "ensemble_alpha": tp_ens_alpha,
            "ensemble_D_alpha": tp_ens_A / 4,
            "seconds_imsd_emsd": trackpy_s,
        },
        "agreement_samem_gls_vs_trackpy_powerlaw": {
            "alpha": _agreement(s_alpha, tp_alpha, ids),
            "D_alpha": _agreement(s_Da, tp_D, ids),
        },
        "agreement_without_samem_alpha_at_bound": {
            "tracks": int((~at_bound).sum()),
            "alpha": _agreement(s_alpha[~at_bound], tp_alpha[~at_bound], ids[~at_bound]),
            "D_alpha": _agreement(s_Da[~at_bound], tp_D[~at_bound], ids[~at_bound]),
        },
        "alpha_samem_minus_trackpy_median": float(np.nanmedian(s_alpha - tp_alpha)),
        "agreement_same_loglog_fit_on_samem_msd": {
            "alpha_max_abs_diff": float(np.nanmax(np.abs(own[:, 0] - tp_alpha))),
            "D_max_rel_diff": float(np.nanmax(relative_difference(own[:, 1] / 4, tp_D))),
        },
        "emsd_px2": {
            str(int(k)): float(v) for k, v in s_emsd.items() if int(k) in (1, 2, 5, 10, 20, 50, 100)
        },
    }
    if img_dir is not None:
        plot_monet(s_emsd, tp_emsd, s_alpha[ok], tp_alpha, s_Da, tp_D, img_dir / "real_monet.png")
    return out


def plot_monet(s_emsd, tp_emsd, s_alpha, tp_alpha, s_D, tp_D, path: Path) -> None:
    """Ensemble MSD, alpha histogram, alpha and D scatter (samem vs trackpy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(12, 3.1), dpi=90)
    ax[0].loglog(s_emsd.index, s_emsd.to_numpy(), "o", ms=3, label="samem")
    ax[0].loglog(tp_emsd.index, tp_emsd.to_numpy(), "-", label="trackpy")
    ax[0].set_xlabel("lag (frames)")
    ax[0].set_ylabel("ensemble MSD (px²)")
    ax[0].legend(fontsize=7)
    bins = np.linspace(0, 2.0, 41)
    ax[1].hist(s_alpha, bins, alpha=0.6, label="samem (GLS, offset)")
    ax[1].hist(tp_alpha[np.isfinite(tp_alpha)], bins, histtype="step", color="k", label="trackpy power law")
    ax[1].set_xlabel("α per track")
    ax[1].legend(fontsize=7)
    ax[2].plot(tp_alpha, np.asarray(s_alpha) if len(s_alpha) == len(tp_alpha) else np.nan, ".", ms=3)
    ax[2].plot([0, 2], [0, 2], "k-", lw=0.5)
    ax[2].set_xlabel("α trackpy")
    ax[2].set_ylabel("α samem")
    floor = 1e-2
    low = np.asarray(s_D) < floor
    ax[3].loglog(tp_D[~low], np.asarray(s_D)[~low], ".", ms=3)
    ax[3].loglog(tp_D[low], np.full(low.sum(), floor), "v", ms=3, color="C3", label=f"samem D < {floor}")
    ax[3].legend(fontsize=7)
    lim = [np.nanmin(tp_D[tp_D > 0]), np.nanmax(tp_D)]
    ax[3].loglog(lim, lim, "k-", lw=0.5)
    ax[3].set_xlabel("D trackpy (px²/frame^α)")
    ax[3].set_ylabel("D samem (px²/frame^α)")
    fig.suptitle("MoNet-AuNR: 459 real LPTEM tracks x 300 frames (px, frames)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


# --------------------------------------------------------------------------- main


def save_figure(fig, path: Path, colours: int = 256) -> None:
    """Save a matplotlib figure as a palette PNG of at most ``colours`` colours (small files)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as img:
        img.convert("RGB").quantize(colours, method=Image.Quantize.MAXCOVERAGE).save(path, optimize=True)


def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(f"{float(v):.6g}") if math.isfinite(v) else None
    return v


def samem_source() -> dict:
    """Which samem ran: its folder, the repository's commit and whether its samem/ had local changes."""
    import subprocess

    import samem

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "package": str(Path(samem.__file__).parent),
        "repo_commit": git("rev-parse", "HEAD").strip(),
        "repo_samem_changed": bool(git("status", "--porcelain", "--", "samem", "configs").strip()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="realdata folder (default ../shared/realdata)"
    )
    ap.add_argument(
        "--parts", nargs="+", default=["seg", "shine", "monet"], choices=["seg", "shine", "monet"]
    )
    ap.add_argument("--splits", nargs="+", default=["test", "train"], choices=["test", "train"])
    ap.add_argument("--model", default=None, help="model for samem (default: the shipped default)")
    ap.add_argument(
        "--refine", action="store_true", help="stretch: choose refine_mask settings on train, score them"
    )
    ap.add_argument(
        "--tracker",
        action="append",
        metavar="NAME=VALUE",
        help="tracker option for the segmentation part (e.g. refine_band_px=5); repeatable",
    )
    ap.add_argument(
        "--config",
        help="settings file over the shipped serve settings for the segmentation part, as samem "
        "analyze --config (e.g. real_tem: auto-prompt and tracker settings for real micrographs)",
    )
    ap.add_argument("--window", type=int, default=10, help="SHINE2: frames in the averages")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "records" / "real" / "real.json")
    ap.add_argument("--img", default=str(REPO / "docs" / "img"), help="figure folder ('' for none)")
    ap.add_argument("--overlay-tiles", nargs="+", default=["image_0", "image_5", "image_13"])
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    img_dir = Path(args.img) if args.img else None
    if img_dir is not None:
        img_dir.mkdir(parents=True, exist_ok=True)
    if not args.data.is_dir():
        print(f"no real data at {args.data} (use --data PATH)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    report: dict = {
        "command": "python bench/bench_real.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": str(args.data),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)",
        "samem": samem_source(),
    }

    def bar(desc):
        return lambda it: tqdm(it, desc=desc, leave=False, disable=not sys.stderr.isatty())

    factory = None
    if "seg" in args.parts or "shine" in args.parts:
        from samem.track.options import parse_options

        tracker_options = parse_options(args.tracker)
        factory, model_name, settings = _tracker_factory(
            args.model, args.threads, args.config, **tracker_options
        )
        report["model"] = model_name
        report["tracker_options"] = tracker_options
    if "seg" in args.parts:
        seg: dict = {
            "matching": f"one-to-one (Hungarian) at IoU >= {MATCH_IOU}",
            "whole_particle": f"4-connected component not touching the tile edge, >= {MIN_AREA_PX} px",
            "box_prompt": "(x0, y0, x_max, y_max): first and last pixel index of the component",
        }
        report["segmentation"] = seg
        splits = {
            s: run_segmentation(args.data / "microscopy-seg-track" / s, factory, settings, bar(s))
            for s in args.splits
        }
        methods = ["samem", "otsu", "classical"]
        if args.refine:
            if "train" not in splits:
                splits["train"] = run_segmentation(
                    args.data / "microscopy-seg-track" / "train", factory, settings
                )
            seg["refinement"] = choice = choose_refinement(splits["train"])
            c, e = choice["chosen"], choice["chosen_erosion"]["px"]
            for per_tile in splits.values():
                apply_postprocess(
                    per_tile,
                    "samem_refined",
                    lambda im, m: refine_mask(im, m, c["band_px"], c["sigma_px"], c["level"]),
                )
                apply_postprocess(per_tile, "samem_eroded", lambda im, m: erode(m, e))
            methods += ["samem_refined", "samem_eroded"]
        for split, per_tile in splits.items():
            seg[split] = summary = summarise_segmentation(per_tile, methods)
            if split == "test" and img_dir is not None:
                plot_overlays(per_tile, args.overlay_tiles, img_dir / "real_seg_overlay.png")
            iu = summary["instance_iou"]
            print(
                f"{split}: {summary['whole_particles']} particles; instance IoU mean/median/p10 "
                + "; ".join(f"{m} {v['mean']:.3f}/{v['median']:.3f}/{v['p10']:.3f}" for m, v in iu.items())
            )
            print(
                f"{split}: semantic IoU "
                + "; ".join(f"{m} {v['mean']:.3f}" for m, v in summary["semantic_iou"].items())
                + "; detection P/R "
                + "; ".join(
                    f"{m} {v['precision']:.2f}/{v['recall']:.2f}" for m, v in summary["detection"].items()
                )
            )
        if args.refine:
            ch = seg["refinement"]
            print(f"refinement chosen on train: {ch['chosen']}; erosion {ch['chosen_erosion']}")
    if "shine" in args.parts:
        report["shine2"] = run_shine(
            args.data / "SHINE2-Au", args.model, args.threads, args.window, img_dir, bar("shine2")
        )
        for k, r in report["shine2"]["runs"].items():
            print(
                f"shine2 {k}: present {r['present_fraction']:.2f}, distance median "
                f"{r['distance_px']['median']:.1f} px, within radius {r['within_radius_of_all_frames']:.2f}, "
                f"jitter {r['jitter_px_per_frame']:.2f} px/frame "
                f"(reference {report['shine2']['reference_jitter_px_per_frame']:.2f})"
            )
    if "monet" in args.parts:
        report["monet"] = run_monet(args.data / "MoNet-AuNR" / "AuNRs_300.mat", img_dir)
        m = report["monet"]
        ag = m["agreement_samem_gls_vs_trackpy_powerlaw"]
        a, d = ag["alpha"], ag["D_alpha"]
        print(
            f"monet: {m['tracks']} tracks; alpha median samem {m['samem']['alpha']['median']:.3f}, "
            f"trackpy {m['trackpy']['alpha']['median']:.3f}; alpha rel diff median "
            f"{a['median_rel_diff']:.3f} max {a['max_rel_diff']:.3f}; D rel diff median "
            f"{d['median_rel_diff']:.3f} max {d['max_rel_diff']:.3f}; "
            f"MSD max rel diff {m['msd_agreement_max_rel_diff']:.1e}"
        )
    report["seconds"] = time.perf_counter() - t_start
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(report), indent=1, allow_nan=False) + "\n")
    print(f"done in {report['seconds']:.0f} s; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
