"""Rendering synthetic LPTEM videos frame by frame.

:func:`iter_frames` yields ``(frame, labels, rows)`` one frame at a time (long videos
never sit in memory); :func:`generate` collects a whole :class:`SynthVideo`. Frames are
rendered in a small thread pool (numpy and OpenCV release the GIL); each frame draws its
noise from its own seed, so the output is identical for any number of workers.

Per frame, each particle is rendered only in a patch around it: label pixels, projected
thickness -> modulation, blurred locally by beam broadening; the smooth background comes
from a coarse grid; shot noise, detector blur and noise are full-frame and vectorised.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from samem.synthetic.imaging import Imaging, gaussian_blur
from samem.synthetic.params import SynthParams
from samem.synthetic.scene import Scene, build_scene
from samem.synthetic.snr import ring_geometry, snr_from_pixels

#: columns of the per-frame truth rows (and of ``SynthVideo.tracks``)
TRACK_COLUMNS = ["frame", "particle", "x", "y", "inside", "visible", "area_px", "angle_rad", "snr"]


@dataclass
class SynthVideo:
    """A generated video with its ground truth.

    Attributes
    ----------
    frames : array (T, H, W) uint8 or uint16.
    labels : array (T, H, W) uint16 instance labels (0 background, particle id).
    tracks : DataFrame with :data:`TRACK_COLUMNS`; ``x, y`` (px, x = column) are the
        centroid of the projected shape, sub-pixel, also when partly outside the frame;
        ``inside``: the whole shape is in the frame; ``snr``: the particle's local SNR.
    snr : array (T,) per-frame SNR (mean over particles fully inside; NaN if none).
    particles : DataFrame, one row per particle: shape, size_nm, D_nm2_s, alpha, motion, ...
    pixel_size_nm : nm per pixel.
    frame_interval_s : s per frame.
    params : the :class:`SynthParams` used.
    stage_px : array (T, 2) stage drift offset (px) contained in the positions.
    """

    frames: np.ndarray
    labels: np.ndarray
    tracks: pd.DataFrame
    snr: np.ndarray
    particles: pd.DataFrame
    pixel_size_nm: float
    frame_interval_s: float
    params: SynthParams
    stage_px: np.ndarray


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class Renderer:
    """Everything fixed for a video (scene, imaging state); renders frame ``t`` on demand.

    Parameters
    ----------
    params : SynthParams
        Validated on construction.
    """

    def __init__(self, params: SynthParams):
        self.params = params.validate()
        self.scene: Scene = build_scene(params, _rng(params.seed, 0))
        self.imaging = Imaging(params, _rng(params.seed, 1))
        flick = _rng(params.seed, 2).standard_normal(params.frames) * params.imaging.flicker
        self.flicker = np.clip(1.0 + flick, 0.1, None)
        sigma = float(np.hypot(self.imaging.blur_px, params.imaging.mtf_sigma_px))
        self.rings = [ring_geometry(s.radius_px, sigma) for s in self.scene.shapes]
        # patch margin: the SNR ring and the reach of the beam-broadening blur
        reach = 4.0 * self.imaging.blur_px
        self.pads = [int(np.ceil(max(gap + width, reach))) + 1 for gap, width in self.rings]

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Render frame ``t``: (frame, labels, truth rows)."""
        n = self.params.size
        lam, lam_min, patches = self.expected(t)
        labels = np.zeros((n, n), np.uint16)
        for k, patch in enumerate(patches):
            if patch is not None:
                labels[patch.rows, patch.cols][patch.mask] = k + 1
        frame = self.imaging.detect(lam, _rng(self.params.seed, 3, t), lam_min)
        return frame, labels, self._rows(t, frame, labels, patches)

    def expected(self, t: int) -> tuple[np.ndarray, float, list]:
        """Expected electrons per pixel of frame ``t`` (what the detector gets), a lower bound
        of them, and every particle's rendered patch (None where it is outside the frame)."""
        p, sc, img = self.params, self.scene, self.imaging
        n, px = p.size, p.pixel_size_nm
        patches, mods = [], []
        for k, shape in enumerate(sc.shapes):
            x, y = sc.xy_px[t, k]
            patch = shape.render(x, y, sc.angle_rad[t, k], n, n, pad=self.pads[k])
            patches.append(patch)
            if patch is not None:
                mods.append((patch, img.modulation(patch.thickness * px, bool(sc.dark[k]))))
        lam, lam_min = img.background(t, float(self.flicker[t]))
        self._apply_particles(lam, mods)
        darkest = min([float(m.min()) for _, m in mods] + [1.0])
        lam_min *= 1.0 - (1.0 - img.haze) * (1.0 - darkest)  # lower bound of lam after particles
        return lam, lam_min, patches

    def _apply_particles(self, lam: np.ndarray, mods) -> None:
        """Multiply particle contrast, blurred by beam broadening, into ``lam`` (in place).

        Patches reach 4 sigma beyond each shape; overlapping patches are merged into one
        box so every pixel is modulated once.
        """
        boxes = _merge_boxes(
            [(m[0].rows.start, m[0].rows.stop, m[0].cols.start, m[0].cols.stop) for m in mods]
        )
        keep = np.float32(1.0 - self.imaging.haze)
        sigma = self.imaging.blur_px
        for r0, r1, c0, c1 in boxes:
            local = np.ones((r1 - r0, c1 - c0), np.float32)
            for patch, m in mods:
                if (
                    r0 <= patch.rows.start
                    and patch.rows.stop <= r1
                    and c0 <= patch.cols.start
                    and patch.cols.stop <= c1
                ):
                    local[
                        patch.rows.start - r0 : patch.rows.stop - r0,
                        patch.cols.start - c0 : patch.cols.stop - c0,
                    ] *= m
            if sigma >= 0.2:
                local = gaussian_blur(local, sigma)
            local -= 1.0
            local *= keep
            local += 1.0
            lam[r0:r1, c0:c1] *= local

    def _rows(self, t: int, frame: np.ndarray, labels: np.ndarray, patches) -> pd.DataFrame:
        sc, n = self.scene, self.params.size
        k = len(sc.shapes)
        area = np.zeros(k, np.int64)
        snr = np.full(k, np.nan)
        inside = np.zeros(k, bool)
        for i, patch in enumerate(patches):
            if patch is None:
                continue
            lab = labels[patch.rows, patch.cols]
            own = lab == i + 1
            area[i] = int(np.count_nonzero(own))
            x, y = sc.xy_px[t, i]
            r = sc.shapes[i].radius_px
            inside[i] = (x - r >= 0) and (y - r >= 0) and (x + r <= n - 1) and (y + r <= n - 1)
            if inside[i] and area[i]:
                gap, width = self.rings[i]
                ring = (patch.sd >= gap) & (patch.sd < gap + width) & (lab == 0)
                pix = frame[patch.rows, patch.cols]
                snr[i] = snr_from_pixels(pix[own], pix[ring], bool(sc.dark[i]))
        return pd.DataFrame(
            {
                "frame": np.full(k, t, np.int64),
                "particle": np.arange(1, k + 1, dtype=np.int64),
                "x": sc.xy_px[t, :, 0].astype(np.float64),
                "y": sc.xy_px[t, :, 1].astype(np.float64),
                "inside": inside,
                "visible": area > 0,
                "area_px": area,
                "angle_rad": sc.angle_rad[t].astype(np.float64),
                "snr": snr,
            }
        )


def _merge_boxes(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge overlapping ``(r0, r1, c0, c1)`` boxes until all are disjoint."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    boxes[i] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def frame_snr(rows: pd.DataFrame) -> float:
    """Per-frame SNR: mean of the particles' SNR (NaN when no particle is fully inside)."""
    vals = rows["snr"].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def default_workers() -> int:
    """Worker threads for rendering: the CPU cores available to this process, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _iter(renderer: Renderer, workers: int) -> Iterator[tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    n = renderer.params.frames
    if workers <= 1:
        for t in range(n):
            yield renderer.frame(t)
        return
    # one OpenCV thread per worker: nested thread pools oversubscribe the cores
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth")
    try:
        pending: deque = deque()
        t_next = 0
        while t_next < n or pending:
            while t_next < n and len(pending) < 2 * workers:
                pending.append(ex.submit(renderer.frame, t_next))
                t_next += 1
            yield pending.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        cv2.setNumThreads(cv_threads)


def iter_frames(params: SynthParams, workers: int | None = None, renderer: Renderer | None = None):
    """Yield ``(frame, labels, rows)`` for t = 0..T-1.

    Parameters
    ----------
    params : SynthParams
    workers : int, optional
        Rendering threads (default :func:`default_workers`); the output does not depend on it.
    renderer : Renderer, optional
        A renderer already built for ``params`` (to reuse its scene).

    Yields
    ------
    frame : array (H, W) uint8/uint16
    labels : array (H, W) uint16
    rows : DataFrame with :data:`TRACK_COLUMNS` for this frame (one row per particle).
    """
    renderer = renderer or Renderer(params)
    yield from _iter(renderer, default_workers() if workers is None else int(workers))


def generate(params: SynthParams, workers: int | None = None, progress: bool = False) -> SynthVideo:
    """Render a whole video in memory (see :func:`iter_frames` for long ones)."""
    renderer = Renderer(params)
    n, size = params.frames, params.size
    frames = np.empty((n, size, size), np.dtype(params.imaging.dtype))
    labels = np.empty((n, size, size), np.uint16)
    rows, snr = [], np.empty(n)
    it = iter_frames(params, workers, renderer)
    for t, (f, lab, r) in enumerate(tqdm(it, total=n, disable=not progress, desc="synth", unit="frame")):
        frames[t], labels[t] = f, lab
        rows.append(r)
        snr[t] = frame_snr(r)
    tracks = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=TRACK_COLUMNS)
    return SynthVideo(
        frames,
        labels,
        tracks,
        snr,
        renderer.scene.particles,
        params.pixel_size_nm,
        params.frame_interval_s,
        params,
        renderer.scene.stage_px,
    )
