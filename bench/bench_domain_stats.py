"""Image statistics of the real TEM tiles (train split only) against the synthetic training stream.

Measures the same statistics on the real labelled tiles of microscopy-seg-track **train**
(``--real``, default ``../shared/realdata/microscopy-seg-track/train``: 20 bright-field TEM
tiles of gold nanoparticles, 512 x 512 px, 8-bit, hand-drawn masks; CC-BY-4.0, credit
msa-em/microscopy-seg-track, doi 10.69761/HDTA8338) and on the first frame of ``--clips``
clips of the synthetic training stream exactly as the default training run draws them
(:class:`samem.synthetic.ClipStream` on recipe ``synthetic/train.yaml`` with
``configs/train/default.yaml``'s ``frame_size`` 384, ``clip_len`` 4 and stream ``seed`` 0:
clips ``0 .. N-1`` of ``--seed``), with the renderer's truth labels as particle masks. The
test split is never read.

Units: lengths in **pixels of the image as stored** (the synthetic recipe has 1 nm/px; the
real tiles' pixel size is not stated); intensities in **background-noise sigmas** of the
image, ``z = (I - median background) / sigma``, where

* background = pixels at least :data:`BACKGROUND_MARGIN_PX` (5) px from every mask;
* sigma = ``1.4826 * MAD`` of the background's high-pass residual (image minus its 3 x 3
  median) divided by :data:`WHITE_RESIDUAL_FACTOR` (0.8625, the ratio of that MAD-sigma to
  the true sigma for white Gaussian noise), i.e. the exact noise sigma for white noise; for
  spatially correlated noise it is the high-frequency part only (smaller than the rms).

Statistics (per particle: whole particles, i.e. components of at least :data:`MIN_AREA_PX`
px not touching the image edge; per image: every image):

1. ``diameter_px`` (per particle): equivalent diameter ``2 sqrt(area / pi)`` of the mask.
2. ``contrast_sigma`` (per particle): mean of z inside the mask eroded by 2 px, i.e.
   (mean inside - background median) / sigma; negative = dark particle. ``contrast_rms``:
   the same difference over the *broadband* background noise rms (``1.4826 * MAD`` of the
   background minus its :data:`CORR_SMOOTH_PX`-px background-only Gaussian smoothing), which
   includes the correlated part of the noise that the 3 x 3 high-pass misses.
3. ``edge_width_px`` (per particle): 10-90 % rise distance of the azimuthally averaged
   profile of z against the signed distance to the mask boundary (inside negative, outside
   positive, 0 = between the last mask pixel and the first outside pixel), binned at 0.5 px
   from -6 to +6 px; the 0 % level is the profile's mean over -6..-4 px (the innermost bin
   for particles thinner than that), the 100 % level its mean over +4..+6 px. Pixels within
   3 px of another mask are left out. Particles whose step is below :data:`MIN_STEP_SIGMA`
   get no edge figures. ``edge_mid_px``: where the 50 % point lies (px, positive = outside
   the mask): positive means the mask sits inside the visible edge. For a blurred step of
   Gaussian sigma b the width is 2.56 b (checked to 10 % for b <= 2 px; the +-6 px window
   makes widths above ~5 px lower bounds: b = 3 px reads 6.8 instead of 7.7); a projected
   sphere's own thickness profile (~ sqrt of the depth) adds to it even without blur.
4. ``corr_length_px`` (per image): distance at which the radially averaged autocorrelation
   of the background noise falls to 1/e; noise = image minus a background-only Gaussian
   smoothing of :data:`CORR_SMOOTH_PX` px (white noise: ~0.6 px; Gaussian-filtered white
   noise of sigma s: ~2 s for s <= 2 px, less beyond: s = 3 reads 4.8 px).
5. ``gradient_fraction`` (per image): range across the image of a plane fitted to the
   background pixels, divided by the plane's value at the centre (depends on the stored
   offset: the real tiles are contrast-stretched); ``gradient_sigma``: the same range in
   noise sigmas (offset- and gain-free).
6. ``particles_per_mpx`` (per image): components of at least :data:`MIN_AREA_PX` px (edge
   ones included) per 10^6 px; ``coverage``: fraction of the image in masks.

Also ``noise_adu`` (per image): sigma in stored 8-bit counts.

Printed: a Markdown table, per statistic, real median [10th-90th percentile] against
synthetic median [10th-90th], the fraction of real values outside the synthetic 1st-99th
percentile range (below / above), and the share of synthetic values below the real median
(near 0 or 1: the real data sit in a tail of what training sees). ``--json`` keeps the
summaries, every value and the drawn parameters of every synthetic clip.

    python bench/bench_domain_stats.py --json bench/records/real/domain_stats.json
    python bench/bench_domain_stats.py --clips 200 --seed 0 --size 384

One process, a few seconds per 10 clips on the 2-vCPU development machine.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from samem.jsonsafe import jsonable

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO.parent / "shared" / "realdata" / "microscopy-seg-track" / "train"
#: components smaller than this (px) are specks, not particles (as bench_real.py)
MIN_AREA_PX = 20
#: background pixels are at least this far (px) from every mask
BACKGROUND_MARGIN_PX = 5.0
#: 1.4826 * MAD of (white Gaussian noise - its 3 x 3 median) / its sigma (Monte Carlo, 4 Mpx)
WHITE_RESIDUAL_FACTOR = 0.8625
#: edge profile: signed distances from -EDGE_RANGE_PX to +EDGE_RANGE_PX in EDGE_BIN_PX bins
EDGE_RANGE_PX = 6.0
EDGE_BIN_PX = 0.5
#: the profile's 0 % and 100 % levels are its means over these |distances| (px)
LEVEL_BAND_PX = (4.0, 6.0)
#: pixels closer than this (px) to another mask are left out of a particle's profile
OTHER_MARGIN_PX = 3.0
#: particles with a profile step smaller than this (noise sigmas) get no edge figures
MIN_STEP_SIGMA = 1.0
#: noise for the correlation length: image minus a background-only Gaussian smoothing (sigma, px)
CORR_SMOOTH_PX = 8.0
#: autocorrelation lags considered (px)
CORR_MAX_LAG_PX = 16
#: the default training run's stream (configs/train/default.yaml)
TRAIN_SIZE, TRAIN_CLIP_LEN, TRAIN_SEED = 384, 4, 0

PER_PARTICLE = ("diameter_px", "contrast_sigma", "contrast_rms", "edge_width_px", "edge_mid_px")
PER_IMAGE = (
    "corr_length_px",
    "gradient_fraction",
    "gradient_sigma",
    "particles_per_mpx",
    "coverage",
    "noise_adu",
)
LABELS = {
    "diameter_px": "1. particle equivalent diameter (px)",
    "contrast_sigma": "2. particle contrast (noise sigmas, dark < 0)",
    "contrast_rms": "2b. particle contrast (broadband noise rms, dark < 0)",
    "edge_width_px": "3. edge 10-90 % width (px)",
    "edge_mid_px": "3. edge 50 % point vs mask boundary (px, + = outside)",
    "corr_length_px": "4. noise correlation length, 1/e (px)",
    "gradient_fraction": "5. background plane range / level",
    "gradient_sigma": "5. background plane range (noise sigmas)",
    "particles_per_mpx": "6. particles per megapixel",
    "coverage": "6. fraction of image covered by particles",
    "noise_adu": "noise sigma (8-bit counts)",
}


# --------------------------------------------------------------------------- background and noise


def background_mask(labels: np.ndarray, margin_px: float = BACKGROUND_MARGIN_PX) -> np.ndarray:
    """Pixels at least ``margin_px`` (px) from every labelled pixel (bool ``(H, W)``)."""
    particles = np.asarray(labels) > 0
    if not particles.any():
        return np.ones(particles.shape, bool)
    return ndimage.distance_transform_edt(~particles) >= margin_px


def noise_sigma(image: np.ndarray, background: np.ndarray) -> float:
    """Robust noise sigma (intensity units of ``image``) from the background pixels.

    ``1.4826 * MAD`` of the high-pass residual (image minus its 3 x 3 median) over
    ``background``, divided by :data:`WHITE_RESIDUAL_FACTOR` (exact for white Gaussian noise).
    Where quantisation makes the MAD 0, the residual's rms over the background is used instead.
    """
    img = np.asarray(image, np.float64)
    r = (img - ndimage.median_filter(img, 3))[background]
    mad = float(np.median(np.abs(r - np.median(r))))
    if mad > 0:
        return 1.4826 * mad / WHITE_RESIDUAL_FACTOR
    return float(np.sqrt(np.mean(r**2))) / WHITE_RESIDUAL_FACTOR or 1.0


def normalise(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(z, background, median, sigma)``: ``z = (image - background median) / sigma`` (noise sigmas)."""
    img = np.asarray(image, np.float64)
    bg = background_mask(labels)
    med = float(np.median(img[bg]))
    sigma = noise_sigma(img, bg)
    return (img - med) / sigma, bg, med, sigma


def broadband_noise(
    image: np.ndarray, background: np.ndarray, smooth_px: float = CORR_SMOOTH_PX
) -> np.ndarray:
    """Background noise at all spatial frequencies above ~1 / ``smooth_px``: image minus its
    background-only Gaussian smoothing (sigma ``smooth_px`` px, normalised convolution over
    ``background``), zero outside ``background``, zero mean on it (intensity units)."""
    img = np.asarray(image, np.float64)
    m = background.astype(np.float64)
    smooth = ndimage.gaussian_filter(img * m, smooth_px) / np.maximum(
        ndimage.gaussian_filter(m, smooth_px), 1e-9
    )
    r = (img - smooth) * m
    r[background] -= r[background].mean()
    return r


def broadband_sigma(image: np.ndarray, background: np.ndarray) -> float:
    """``1.4826 * MAD`` (intensity units) of :func:`broadband_noise` over the background: the noise
    rms including its correlated part (for white noise, ~ :func:`noise_sigma`)."""
    r = broadband_noise(image, background)[background]
    return 1.4826 * float(np.median(np.abs(r - np.median(r)))) or float(r.std()) or 1.0


def correlation_length(image: np.ndarray, background: np.ndarray) -> float:
    """Distance (px) at which the background noise's radially averaged autocorrelation falls to 1/e.

    Noise = :func:`broadband_noise` (image minus a background-only Gaussian smoothing of
    :data:`CORR_SMOOTH_PX`); the autocorrelation (FFT, zero-padded, divided by the number of
    background pixel pairs at each lag) is averaged over lags of equal length up to
    :data:`CORR_MAX_LAG_PX` and interpolated linearly. NaN if it never falls that far.
    """
    m = background.astype(np.float64)
    r = broadband_noise(image, background)
    h, w = r.shape
    shape = (2 * h, 2 * w)
    fr, fm = np.fft.rfft2(r, shape), np.fft.rfft2(m, shape)
    num = np.fft.irfft2(fr * np.conj(fr), shape)
    den = np.fft.irfft2(fm * np.conj(fm), shape)
    k = CORR_MAX_LAG_PX
    lags = np.arange(-k, k + 1)
    num = num[np.ix_(lags % shape[0], lags % shape[1])]
    den = den[np.ix_(lags % shape[0], lags % shape[1])]
    acf = num / np.maximum(den, 1.0)
    dist = np.hypot(*np.meshgrid(lags, lags, indexing="ij"))
    ok = (dist <= k) & (den > 100)
    keys = np.round(dist[ok], 3)
    uniq, inv = np.unique(keys, return_inverse=True)
    prof = np.bincount(inv, acf[ok]) / np.bincount(inv)
    prof = prof / prof[0]
    below = np.nonzero(prof < 1 / math.e)[0]
    if not below.size:
        return math.nan
    i = below[0]
    d0, d1, a0, a1 = uniq[i - 1], uniq[i], prof[i - 1], prof[i]
    return float(d0 + (a0 - 1 / math.e) / (a0 - a1) * (d1 - d0))


def background_gradient(image: np.ndarray, background: np.ndarray, sigma: float) -> tuple[float, float]:
    """``(range / centre level, range / sigma)`` of a plane fitted to the background pixels.

    The plane ``a + b u + c v`` (``u, v`` from -0.5 to 0.5 across the columns and rows) is a
    least-squares fit to the background intensities; its range over the image is ``|b| + |c|``
    (intensity units), divided by the level at the centre ``a`` (a fraction) and by ``sigma``.
    """
    img = np.asarray(image, np.float64)
    h, w = img.shape
    yy, xx = np.nonzero(background)
    u, v = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    a, b, c = np.linalg.lstsq(np.stack([np.ones_like(u), u, v], 1), img[yy, xx], rcond=None)[0]
    rng = abs(b) + abs(c)
    return float(rng / a) if a > 0 else math.nan, float(rng / sigma)


# --------------------------------------------------------------------------- particles


def equivalent_diameter(area_px: float) -> float:
    """Diameter (px) of the disc of ``area_px`` pixels: ``2 sqrt(area / pi)``."""
    return 2.0 * math.sqrt(area_px / math.pi)


def particle_contrast(z: np.ndarray, mask: np.ndarray, erode_px: float = 2.0) -> float:
    """Mean of ``z`` (noise sigmas) inside ``mask`` eroded by ``erode_px`` (pixels whose distance
    to the nearest outside pixel exceeds it); the deepest pixels if the erosion empties the mask."""
    d_in = ndimage.distance_transform_edt(mask)
    core = d_in > erode_px
    if not core.any():
        core = d_in >= d_in.max()
    return float(z[core].mean())


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the mask boundary: inside negative, outside positive, the boundary
    (between the last mask pixel and the first outside pixel) at 0."""
    d_out = ndimage.distance_transform_edt(~mask)
    d_in = ndimage.distance_transform_edt(mask)
    return np.where(mask, 0.5 - d_in, d_out - 0.5)


def edge_profile(
    z: np.ndarray, mask: np.ndarray, others: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(bin centres (px), mean z per bin)`` of the azimuthally averaged profile across the edge.

    Bins of :data:`EDGE_BIN_PX` from -:data:`EDGE_RANGE_PX` to +:data:`EDGE_RANGE_PX` of the
    :func:`signed_distance`; pixels within :data:`OTHER_MARGIN_PX` of ``others`` (other
    particles' masks) are left out; bins with fewer than 3 pixels are NaN.
    """
    s = signed_distance(mask)
    use = np.abs(s) < EDGE_RANGE_PX
    if others is not None and others.any():
        use &= ndimage.distance_transform_edt(~others) > OTHER_MARGIN_PX
    edges = np.arange(-EDGE_RANGE_PX, EDGE_RANGE_PX + EDGE_BIN_PX / 2, EDGE_BIN_PX)
    idx = np.digitize(s[use], edges) - 1
    n = np.bincount(idx, minlength=len(edges) - 1)[: len(edges) - 1]
    tot = np.bincount(idx, z[use], minlength=len(edges) - 1)[: len(edges) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(n >= 3, tot / n, np.nan)
    return (edges[:-1] + edges[1:]) / 2, prof


def _crossing(x: np.ndarray, f: np.ndarray, level: float, start: int, step: int) -> float:
    """First crossing of ``level`` by ``f`` walking from index ``start`` by ``step`` (interpolated x)."""
    i = start
    while 0 <= i < len(f) and 0 <= i + step < len(f):
        a, b = f[i], f[i + step]
        if (a - level) * (b - level) <= 0 and a != b:
            return float(x[i] + (level - a) / (b - a) * (x[i + step] - x[i]))
        i += step
    return math.nan


def edge_figures(x: np.ndarray, prof: np.ndarray, min_step: float = MIN_STEP_SIGMA) -> dict:
    """Edge width (px, 10-90 %), 50 % point (px, + = outside) and step (noise sigmas) of a profile.

    0 % level: mean profile over ``-6 .. -4`` px (the innermost finite bin if none there);
    100 %: mean over ``+4 .. +6`` px. Empty bins (the distance transform takes discrete
    values) are skipped; crossings are interpolated linearly between the remaining bins: the
    50 % crossing nearest the mask boundary, then the 10 % crossing nearest it on the inner
    side and the 90 % one on the outer side. NaN everywhere when the step is below
    ``min_step`` (noise sigmas) or a level is missing.
    """
    nan = {"edge_width_px": math.nan, "edge_mid_px": math.nan, "edge_step": math.nan}
    ok = np.isfinite(prof)
    x, prof = np.asarray(x)[ok], np.asarray(prof)[ok]
    lo_band, hi_band = LEVEL_BAND_PX
    inner = (x <= -lo_band) & (x >= -hi_band)
    outer = (x >= lo_band) & (x <= hi_band)
    if not outer.any() or not (x < 0).any():
        return nan
    lo = float(prof[inner].mean()) if inner.any() else float(prof[0])
    hi = float(prof[outer].mean())
    step = hi - lo
    if abs(step) < min_step:
        return {**nan, "edge_step": step}
    f = (prof - lo) / step
    mids = [
        x[i] + (0.5 - f[i]) / (f[i + 1] - f[i]) * (x[i + 1] - x[i])
        for i in range(len(f) - 1)
        if (f[i] - 0.5) * (f[i + 1] - 0.5) <= 0 and f[i] != f[i + 1]
    ]
    if not mids:
        return {**nan, "edge_step": step}
    mid = float(min(mids, key=abs))
    j = int(np.searchsorted(x, mid))  # first bin beyond the 50 % point
    x10 = _crossing(x, f, 0.1, j, -1)
    x90 = _crossing(x, f, 0.9, j - 1, +1)
    return {"edge_width_px": x90 - x10, "edge_mid_px": mid, "edge_step": step}


def image_stats(image: np.ndarray, labels: np.ndarray) -> dict:
    """Every statistic of one image.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` intensities as stored.
    labels : ndarray
        ``(H, W)`` instance labels (0 = background); an instance is one label id.

    Returns
    -------
    dict
        Per-particle lists (:data:`PER_PARTICLE`, whole particles only) and per-image floats
        (:data:`PER_IMAGE`), plus ``"whole"`` (number of whole particles).
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    z, bg, med, sigma = normalise(image, labels)
    rms = broadband_sigma(image, bg)
    out: dict = {k: [] for k in PER_PARTICLE}
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(labels.max() + 1))
    pad = int(EDGE_RANGE_PX + OTHER_MARGIN_PX + 2)
    n_particles = 0
    for pid, sl in enumerate(ndimage.find_objects(labels), 1):
        if sl is None or areas[pid] < MIN_AREA_PX:
            continue
        n_particles += 1
        ys, xs = sl
        if ys.start == 0 or xs.start == 0 or ys.stop == h or xs.stop == w:
            continue  # cut by the image edge: no per-particle figures
        crop = (
            slice(max(ys.start - pad, 0), min(ys.stop + pad, h)),
            slice(max(xs.start - pad, 0), min(xs.stop + pad, w)),
        )
        lab = labels[crop]
        mask = lab == pid
        out["diameter_px"].append(equivalent_diameter(float(areas[pid])))
        out["contrast_sigma"].append(particle_contrast(z[crop], mask))
        out["contrast_rms"].append(out["contrast_sigma"][-1] * sigma / rms)
        x, prof = edge_profile(z[crop], mask, (lab > 0) & ~mask)
        fig = edge_figures(x, prof)
        for k in ("edge_width_px", "edge_mid_px"):
            out[k].append(fig[k])
    out["whole"] = len(out["diameter_px"])
    out["corr_length_px"] = correlation_length(image, bg)
    out["gradient_fraction"], out["gradient_sigma"] = background_gradient(image, bg, sigma)
    out["particles_per_mpx"] = n_particles / (h * w) * 1e6
    out["coverage"] = float(np.count_nonzero(labels) / labels.size)
    out["noise_adu"] = sigma
    return out


# --------------------------------------------------------------------------- sources


def read_tile(image_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real tile as :mod:`samem.train.tiles` reads it: grayscale image and the 4-connected
    components of its mask (label pixel > 127 in the first channel) as instance labels."""
    import cv2
    from PIL import Image

    img = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"{image_path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    with Image.open(label_path) as lab_img:
        lab = np.asarray(lab_img)
    if lab.ndim == 3:
        lab = lab[..., 0]
    comp, _ = ndimage.label(lab > 127)
    return img, comp


def real_images(folder: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, labels)`` of every tile of a split folder (``images/``, ``labels/``)."""
    from samem.train.tiles import tile_pairs

    if "test" in Path(folder).resolve().parts:
        raise SystemExit(f"{folder}: refusing a test split (statistics are measured on train only)")
    for img, lab in tile_pairs(folder):
        yield img.stem, *read_tile(img, lab)


#: drawn parameters kept per synthetic clip in the JSON
CLIP_KEYS = (
    "n_particles",
    "size_nm",
    "contrast",
    "mfp_nm",
    "thickness_nm",
    "blur_at_100nm_nm",
    "dose_e_A2",
    "mtf_sigma_px",
    "read_noise_e",
    "correlated_noise_e",
    "correlated_length_px",
    "illumination_gradient",
    "thickness_variation",
    "level_8bit",
    "jpeg_quality",
)


def synthetic_images(
    n: int,
    seed: int = TRAIN_SEED,
    size: int = TRAIN_SIZE,
    clip_len: int = TRAIN_CLIP_LEN,
    recipe: str = "train",
) -> Iterator[tuple[str, np.ndarray, np.ndarray, dict]]:
    """``(name, frame 0, truth labels of frame 0, drawn parameters)`` of clips ``0 .. n-1`` of
    ``ClipStream(recipe, clip_len, size, seed)``."""
    from samem.synthetic import ClipStream

    stream = ClipStream(recipe, clip_len=clip_len, size=size, seed=seed)
    for i in range(n):
        clip = stream.clip(i)
        p = clip.params
        drawn = {}
        for k in CLIP_KEYS:
            for group in (p, p.particles, p.motion, p.imaging):
                if hasattr(group, k):
                    drawn[k] = getattr(group, k)
                    break
        yield f"clip_{i}", clip.frames[0], clip.labels[0], drawn


# --------------------------------------------------------------------------- summaries


def collect(images) -> dict:
    """Pool :func:`image_stats` over ``(name, image, labels, ...)`` items: ``{stat: [values]}``."""
    pooled: dict = {k: [] for k in (*PER_PARTICLE, *PER_IMAGE)}
    pooled["images"] = []
    for name, image, labels, *_ in images:
        s = image_stats(image, labels)
        for k in PER_PARTICLE:
            pooled[k] += s[k]
        for k in PER_IMAGE:
            pooled[k].append(s[k])
        pooled["images"].append({"name": name, "whole_particles": s["whole"], **{k: s[k] for k in PER_IMAGE}})
    return pooled


def spread(values) -> dict:
    """Count, median and 1st / 10th / 90th / 99th percentiles of the finite values (NaN when none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    q = np.percentile(v, [1, 10, 50, 90, 99]) if v.size else [math.nan] * 5
    return {"n": int(v.size), "p1": q[0], "p10": q[1], "median": q[2], "p90": q[3], "p99": q[4]}


def outside(real, synth) -> dict:
    """Fractions of the finite ``real`` values below the 1st and above the 99th percentile of
    ``synth`` (``below``, ``above``, ``total``), and ``median_rank``: the fraction of the
    synthetic values below the real median (0.5 = the real median is the synthetic median)."""
    r = np.asarray(real, float)
    r = r[np.isfinite(r)]
    v = np.asarray(synth, float)
    v = v[np.isfinite(v)]
    s = spread(v)
    if not r.size or not s["n"]:
        return {"below": math.nan, "above": math.nan, "total": math.nan, "median_rank": math.nan}
    below, above = float(np.mean(r < s["p1"])), float(np.mean(r > s["p99"]))
    rank = float(np.mean(v < np.median(r)))
    return {"below": below, "above": above, "total": below + above, "median_rank": rank}


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    a = abs(v)
    return f"{v:.3f}" if a < 1 else f"{v:.2f}" if a < 10 else f"{v:.1f}" if a < 1000 else f"{v:.0f}"


def table(real: dict, synth: dict) -> str:
    """Markdown table: per statistic, real and synthetic median [p10-p90] (n), the real
    fraction outside the synthetic 1st-99th percentile range (below / above) and the share of
    synthetic values below the real median."""
    rows = [
        "| statistic | real train median [p10-p90] (n) | synthetic median [p10-p90] (n) "
        "| synthetic p1-p99 | real outside p1-p99 (below / above) | synthetic share below real median |",
        "|---|---|---|---|---|---|",
    ]
    for k in (*PER_PARTICLE, *PER_IMAGE):
        r, s, o = spread(real[k]), spread(synth[k]), outside(real[k], synth[k])
        rows.append(
            f"| {LABELS[k]} | {_fmt(r['median'])} [{_fmt(r['p10'])} - {_fmt(r['p90'])}] ({r['n']}) "
            f"| {_fmt(s['median'])} [{_fmt(s['p10'])} - {_fmt(s['p90'])}] ({s['n']}) "
            f"| {_fmt(s['p1'])} - {_fmt(s['p99'])} "
            f"| {_fmt(o['total'])} ({_fmt(o['below'])} / {_fmt(o['above'])}) | {_fmt(o['median_rank'])} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--real", type=Path, default=DEFAULT_REAL, help="real TRAIN split folder (images/, labels/)"
    )
    ap.add_argument("--clips", type=int, default=40, help="synthetic clips (first frame of each)")
    ap.add_argument("--seed", type=int, default=TRAIN_SEED, help="synthetic stream seed (default run: 0)")
    ap.add_argument(
        "--size", type=int, default=TRAIN_SIZE, help="synthetic frame size, px (default run: 384)"
    )
    ap.add_argument("--clip-len", type=int, default=TRAIN_CLIP_LEN, help="frames per clip (default run: 4)")
    ap.add_argument("--recipe", default="train", help="synthetic recipe with a randomize section")
    ap.add_argument("--json", type=Path, default=None, help="write summaries and values here")
    args = ap.parse_args(argv)
    if not args.real.is_dir():
        print(f"no real tiles at {args.real} (use --real DIR)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    real = collect(real_images(args.real))
    clips = list(synthetic_images(args.clips, args.seed, args.size, args.clip_len, args.recipe))
    synth = collect(clips)
    seconds = time.perf_counter() - t0
    stream = (
        f"ClipStream({args.recipe!r}, clip_len={args.clip_len}, size={args.size}, seed={args.seed}), "
        f"clips 0..{args.clips - 1}, frame 0, truth labels"
    )
    print(f"real: {args.real} ({len(real['images'])} tiles); synthetic: {stream}\n")
    print(table(real, synth))
    print(f"\ndone in {seconds:.0f} s")
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
        report = {
            "command": "python bench/bench_domain_stats.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "repo_commit": commit.strip(),
            "real": str(args.real),
            "synthetic": stream,
            "units": "lengths in px of the image as stored; intensities in background-noise sigmas "
            "(1.4826 MAD of image - 3x3 median on background >= 5 px from masks, / 0.8625)",
            "seconds": seconds,
            "summary": {
                k: {
                    "real": spread(real[k]),
                    "synthetic": spread(synth[k]),
                    "real_outside": outside(real[k], synth[k]),
                }
                for k in (*PER_PARTICLE, *PER_IMAGE)
            },
            "values": {"real": real, "synthetic": synth},
            "clips": [{"name": name, **drawn} for name, _, _, drawn in clips],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(jsonable(report), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
