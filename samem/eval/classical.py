"""The classical baseline: bandpass + trackpy locate + link, masks by local threshold.

This is what an LPTEM lab does without a learned model, and the reference every samem
accuracy number is reported next to. It gets the same information as samem: the
first-frame boxes. From them it takes the feature diameter (median box side, odd),
the contrast polarity (particles darker or brighter than their surroundings) and the
identities: after linking, the trajectory nearest to each box centre on the first
frame carries that box's id; other trajectories are dropped.

Masks: inside a window of 2 x diameter around each located centre, the bandpassed image
is thresholded at Otsu's level and the connected component under the centre is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import cv2
import numpy as np
import pandas as pd

from samem.stats.trajectories import link_detections

Box = tuple[float, float, float, float]


def _params(frame0: np.ndarray, boxes: Mapping[int, Box]) -> tuple[int, bool]:
    """Odd feature diameter (px) and polarity (True = particles darker) from the prompts."""
    sides = [max(b[2] - b[0], b[3] - b[1]) for b in boxes.values()]
    diameter = int(np.median(sides)) | 1
    img = frame0.astype(np.float32)
    inside = np.zeros(img.shape, bool)
    for x0, y0, x1, y1 in boxes.values():
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        r = max(1.0, min(x1 - x0, y1 - y0) / 4)
        inside[int(max(cy - r, 0)) : int(cy + r) + 1, int(max(cx - r, 0)) : int(cx + r) + 1] = True
    dark = float(img[inside].mean()) < float(np.median(img))
    return max(diameter, 3), dark


def _mask(band: np.ndarray, x: float, y: float, diameter: int) -> tuple[np.ndarray, int, int]:
    """Local Otsu mask of the feature at (x, y): (window mask, x offset, y offset)."""
    h, w = band.shape
    r = diameter
    x0, y0 = max(int(x) - r, 0), max(int(y) - r, 0)
    x1, y1 = min(int(x) + r + 1, w), min(int(y) + r + 1, h)
    win = band[y0:y1, x0:x1]
    if win.size == 0 or np.ptp(win) == 0:
        return np.zeros((0, 0), bool), x0, y0
    scaled = cv2.normalize(win, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, binary = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, comp = cv2.connectedComponents(binary)
    cy, cx = min(int(round(y)) - y0, win.shape[0] - 1), min(int(round(x)) - x0, win.shape[1] - 1)
    label = comp[cy, cx]
    if label == 0:
        return np.zeros(win.shape, bool), x0, y0
    return comp == label, x0, y0


def track_classical(
    frames: Iterable[np.ndarray],
    boxes: Mapping[int, Box],
    search_range_px: float | None = None,
    memory_frames: int = 5,
    min_mass_quantile: float = 0.5,
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Track prompted particles with bandpass + trackpy; return (tracks, label images).

    Parameters
    ----------
    frames : iterable of ndarray (H, W)
        The video.
    boxes : dict
        Object id -> first-frame box ``(x0, y0, x1, y1)`` (px).
    search_range_px : float, optional
        Largest frame-to-frame displacement; default: the feature diameter.
    memory_frames : int
        Frames a particle may be missed and keep its id.
    min_mass_quantile : float
        Features whose integrated brightness is below this quantile of the first frame's
        prompted features are ignored (rejects noise blobs).

    Returns
    -------
    tracks : DataFrame ``frame, particle, x, y, area, present`` (px; ids from ``boxes``)
    labels : list of uint16 label images, one per frame
    """
    import trackpy

    trackpy.quiet()
    frames = list(frames)
    diameter, dark = _params(frames[0], boxes)
    search = float(search_range_px or diameter)
    noise_px = max(1.0, diameter / 6)  # low-SNR frames need more smoothing than trackpy's default 1 px
    top_n = 2 * len(boxes) + 2  # the prompts say how many particles there are; keep a margin
    bands, located = [], []
    for i, frame in enumerate(frames):
        img = frame.astype(np.float32)
        img = img.max() - img if dark else img
        band = trackpy.bandpass(img, noise_px, diameter)
        bands.append(band)
        f = trackpy.locate(band, diameter, preprocess=False, characterize=False, topn=top_n)
        f["frame"] = i
        located.append(f[["frame", "x", "y", "mass"]])
    feats = pd.concat(located, ignore_index=True)
    first = feats[feats["frame"] == 0]
    if len(first):
        floor = np.quantile(_prompted_mass(first, boxes), min_mass_quantile) * 0.25
        feats = feats[feats["mass"] >= floor]
    linked = link_detections(feats, search, memory_frames=memory_frames)
    ids = _assign_ids(linked, boxes)
    tracks = linked[linked["particle"].isin(ids)].assign(particle=lambda d: d["particle"].map(ids))
    tracks = tracks.drop_duplicates(["frame", "particle"])
    tracks = tracks.sort_values(["frame"], kind="stable").reset_index(drop=True)
    labels, areas = [np.zeros(band.shape, np.uint16) for band in bands], []
    for row in tracks.itertuples():
        m, x0, y0 = _mask(bands[row.frame], row.x, row.y, diameter)
        painted = 0
        if m.size:
            sub = labels[row.frame][y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]]
            free = m & (sub == 0)
            sub[free] = row.particle
            painted = int(free.sum())
        areas.append(painted)
    tracks["area"] = areas
    tracks["present"] = True
    return tracks[["frame", "particle", "x", "y", "area", "present"]], labels


def _prompted_mass(first: pd.DataFrame, boxes: Mapping[int, Box]) -> np.ndarray:
    masses = []
    for x0, y0, x1, y1 in boxes.values():
        d = np.hypot(first["x"] - (x0 + x1) / 2, first["y"] - (y0 + y1) / 2)
        if len(d):
            masses.append(float(first["mass"].to_numpy()[int(np.argmin(d))]))
    return np.array(masses or [0.0])


def _assign_ids(linked: pd.DataFrame, boxes: Mapping[int, Box]) -> dict[int, int]:
    """trackpy particle -> prompted id: nearest first-frame trajectory to each box centre."""
    first = linked[linked["frame"] == 0]
    out: dict[int, int] = {}
    for oid, (x0, y0, x1, y1) in boxes.items():
        if not len(first):
            break
        d = np.hypot(first["x"] - (x0 + x1) / 2, first["y"] - (y0 + y1) / 2).to_numpy()
        for k in np.argsort(d):
            tp = int(first["particle"].iloc[k])
            if tp not in out and d[k] <= max(x1 - x0, y1 - y0):
                out[tp] = int(oid)
                break
    return out
