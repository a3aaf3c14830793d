"""Trajectory tables: built frame by frame from tracker results, or linked from detections.

Table convention (trackpy's, plus shape): one row per (frame, particle) with columns

======================  ==========================================================================
``frame``               frame number (int)
``particle``            tracker object id, stable for the whole video (a particle lost and found
                        again keeps its id)
``x``, ``y``            centroid in pixels (x = column, y = row); NaN when absent
``area``                mask area, px
``orientation``         angle of the mask's major axis, rad, from +x towards +y (image down),
                        in (-π/2, π/2]; meaningless for round masks (eccentricity near 0)
``eccentricity``        ``sqrt(1 - λ_min / λ_max)`` of the mask's second moments (0 = circle)
``score``               tracker confidence
``present``             whether the tracker says the object is visible in this frame
``edge``                the object's mask touches the frame border: the particle is cut by the
                        field of view, so its centroid is pulled toward the inside by up to
                        half its size; with the stats option ``exclude_edge`` statistics leave
                        such rows out (as trackpy's ``locate`` drops features near the edge);
                        the trajectory keeps them
``sigma``               estimated localisation error of ``x`` and ``y`` (px, per coordinate) from
                        the particle's size and signal-to-noise ratio
                        (:meth:`samem.track.verify.Verifier.sigma`; docs/tracker.md, *Precision*);
                        NaN when absent or unknown; with the stats option ``max_sigma_nm``
                        statistics leave out rows whose error exceeds it
======================  ==========================================================================

Absent objects: every object the tracker reports in a frame gets a row; when it reports
the object absent (or gives no finite centroid) the row has ``present = False``, NaN
``x``, ``y``, ``orientation``, ``eccentricity`` and ``area = 0``. Statistics ignore such rows.
``df.attrs`` carries ``pixel_size_nm`` (nm/px) and ``frame_interval_s`` (s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.stats.units import FRAME_INTERVAL_KEY, PIXEL_SIZE_KEY, positive

#: columns of a trajectory table, in order
COLUMNS = [
    "frame", "particle", "x", "y", "area", "orientation", "eccentricity", "score", "present", "edge", "sigma"
]


def mask_shape(mask: np.ndarray, bbox=None) -> tuple[int, float, float]:
    """Area (px), orientation (rad) and eccentricity of a boolean mask from its moments.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        Object mask.
    bbox : (x0, y0, x1, y1), optional
        Box that contains the mask (pixels); only that crop is read, which keeps the cost
        proportional to the object rather than the frame. Taken as inclusive and
        widened by one pixel, so both inclusive and exclusive boxes work.

    Returns
    -------
    area_px : int
    orientation_rad : float
        Major-axis angle from +x towards +y; NaN for an empty mask.
    eccentricity : float
        In [0, 1); NaN for an empty mask.
    """
    m = np.asarray(mask)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        if all(np.isfinite([x0, y0, x1, y1])):
            H, W = m.shape[-2:]
            c0, r0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
            c1, r1 = min(int(math.ceil(x1)) + 2, W), min(int(math.ceil(y1)) + 2, H)
            m = m[r0:r1, c0:c1]
    if m.size == 0:
        return 0, math.nan, math.nan
    mom = cv2.moments(np.ascontiguousarray(m, dtype=np.uint8), binaryImage=True)
    area = mom["m00"]
    if area <= 0:
        return 0, math.nan, math.nan
    a, b, c = mom["mu20"] / area, mom["mu11"] / area, mom["mu02"] / area
    half_diff = math.hypot((a - c) / 2, b)
    lam1, lam2 = (a + c) / 2 + half_diff, (a + c) / 2 - half_diff
    orientation = 0.5 * math.atan2(2 * b, a - c)
    ecc = math.sqrt(max(0.0, 1 - lam2 / lam1)) if lam1 > 0 else 0.0
    return int(round(area)), orientation, ecc


def _result_attr(res, name, pid):
    try:
        return getattr(res, name)
    except AttributeError:
        raise SamemError(f"tracker result for object {pid!r} has no attribute {name!r}") from None


def touches_border(mask: np.ndarray) -> bool:
    """Whether a boolean mask reaches the first or last row or column of its frame."""
    m = np.asarray(mask, bool)
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def frame_rows(
    frame: int, results: Mapping, exclude_edge: bool = False, max_sigma_px: float = math.inf
) -> tuple[list[tuple], dict]:
    """Table rows (:data:`COLUMNS` order) and present positions of one frame of tracker results.

    Parameters
    ----------
    frame : int
        Frame number.
    results : Mapping
        object id -> result with attributes ``mask`` (bool H×W), ``score`` (float),
        ``present`` (bool), ``centroid`` ((x, y) px) and ``bbox`` ((x0, y0, x1, y1) px).
    exclude_edge : bool
        Leave objects cut by the frame border out of ``positions`` (the stats option
        ``exclude_edge``); their rows are made either way.
    max_sigma_px : float
        Leave objects whose estimated localisation error (``sigma``, px) exceeds this out of
        ``positions`` (the stats option ``max_sigma_nm`` in pixels); unknown errors (NaN) pass.

    Returns
    -------
    rows : list of tuple
        One row per object; absent objects have NaN position and shape and area 0.
    positions : dict
        object id -> (x, y) px of the objects present (and, with ``exclude_edge``, clear of
        the frame border, and within ``max_sigma_px``): what :meth:`LiveStats.update` takes.
    """
    rows, positions = [], {}
    for pid, res in results.items():
        present = bool(_result_attr(res, "present", pid))
        score = float(_result_attr(res, "score", pid))
        x = y = math.nan
        if present:
            cx, cy = _result_attr(res, "centroid", pid)
            x, y = float(cx), float(cy)
            present = math.isfinite(x) and math.isfinite(y)
        edge = False
        sigma = math.nan
        if present:
            mask = _result_attr(res, "mask", pid)
            area, orient, ecc = mask_shape(mask, getattr(res, "bbox", None))
            edge = touches_border(mask)
            sigma = float(getattr(res, "sigma", math.nan))
            if not (edge and exclude_edge) and not sigma > max_sigma_px:
                positions[pid] = (x, y)
        else:
            x = y = orient = ecc = math.nan
            area = 0
        rows.append((int(frame), pid, x, y, area, orient, ecc, score, present, edge, sigma))
    return rows, positions


class TrajectoryBuilder:
    """Accumulate tracker results frame by frame into a trajectory table.

    Parameters
    ----------
    pixel_size_nm : float
        Pixel size, nm/px.
    frame_interval_s : float
        Frame interval, s.
    exclude_edge : bool
        :meth:`add` leaves objects cut by the frame border out of the positions it returns.

    Examples
    --------
    >>> builder = TrajectoryBuilder(pixel_size_nm=0.5, frame_interval_s=0.04)
    >>> positions = builder.add(frame, tracker_results)   # doctest: +SKIP
    >>> live.update(frame, positions)                        # doctest: +SKIP
    >>> df = builder.table()                                 # doctest: +SKIP
    """

    def __init__(self, pixel_size_nm, frame_interval_s, exclude_edge: bool = False):
        self.exclude_edge = bool(exclude_edge)
        self.pixel_size_nm = positive("pixel_size_nm", pixel_size_nm)
        self.frame_interval_s = positive("frame_interval_s", frame_interval_s)
        self._rows: list[tuple] = []
        self._last_frame: int | None = None
        self._cache: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, frame: int, results: Mapping) -> dict:
        """Add one frame of tracker results.

        Parameters
        ----------
        frame : int
            Frame number; must increase from call to call.
        results : Mapping
            object id -> result with attributes ``mask`` (bool H×W), ``score`` (float),
            ``present`` (bool), ``centroid`` ((x, y) px) and ``bbox`` ((x0, y0, x1, y1) px).

        Returns
        -------
        dict
            object id -> (x, y) in pixels for the objects present in this frame (what
            :meth:`samem.stats.LiveStats.update` takes).
        """
        f = int(frame)
        if not isinstance(results, Mapping):
            raise SamemError(f"results must map object id -> result, got {type(results).__name__}")
        rows, positions = frame_rows(f, results, self.exclude_edge)
        self.add_rows(f, rows)
        return positions

    def add_rows(self, frame: int, rows: list[tuple]) -> None:
        """Add rows already made by :func:`frame_rows` for ``frame`` (no shape work repeated)."""
        f = int(frame)
        if self._last_frame is not None and f <= self._last_frame:
            raise SamemError(f"frames must increase: got {f} after {self._last_frame}")
        self._last_frame = f
        self._cache = None
        self._rows.extend(rows)

    def table(self) -> pd.DataFrame:
        """The trajectory table so far (columns :data:`COLUMNS`, units in ``attrs``)."""
        if self._cache is None:
            df = pd.DataFrame(self._rows, columns=COLUMNS)
            df = df.astype(
                {
                    "frame": np.int64,
                    "x": float,
                    "y": float,
                    "area": np.int64,
                    "orientation": float,
                    "eccentricity": float,
                    "score": float,
                    "present": bool,
                    "edge": bool,
                    "sigma": float,
                }
            )
            if all(isinstance(r[1], (int, np.integer)) and not isinstance(r[1], bool) for r in self._rows):
                df["particle"] = df["particle"].astype(np.int64)
            df.attrs.update({PIXEL_SIZE_KEY: self.pixel_size_nm, FRAME_INTERVAL_KEY: self.frame_interval_s})
            self._cache = df
        return self._cache.copy()


def with_units(traj: pd.DataFrame, pixel_size_nm, frame_interval_s) -> pd.DataFrame:
    """Return ``traj`` (not copied) with validated unit metadata in ``attrs``."""
    traj.attrs[PIXEL_SIZE_KEY] = positive("pixel_size_nm", pixel_size_nm)
    traj.attrs[FRAME_INTERVAL_KEY] = positive("frame_interval_s", frame_interval_s)
    return traj


def to_physical(traj: pd.DataFrame, pixel_size_nm=None, frame_interval_s=None) -> pd.DataFrame:
    """Copy of ``traj`` with ``t_s`` (s), ``x_nm``, ``y_nm`` (nm) and ``area_nm2`` (nm², if ``area``).

    Units default to ``traj.attrs``; missing or non-positive units raise SamemError.
    """
    from samem.stats.units import resolve_scale

    scale = resolve_scale(traj.attrs, None, None, pixel_size_nm, frame_interval_s)
    out = traj.copy()
    out["t_s"] = out["frame"].to_numpy(dtype=float) * scale.frame_interval_s
    out["x_nm"] = out["x"] * scale.length_per_px
    out["y_nm"] = out["y"] * scale.length_per_px
    if "area" in out:
        out["area_nm2"] = out["area"] * scale.length_per_px**2
    out.attrs.update({PIXEL_SIZE_KEY: scale.length_per_px, FRAME_INTERVAL_KEY: scale.frame_interval_s})
    return out


#: trackpy predictors by name for :func:`link_detections`
PREDICTORS = ("none", "nearest_velocity", "drift")


def link_detections(
    features: pd.DataFrame, search_range_px: float, memory_frames: int = 3, predictor: str = "none", **link_kw
) -> pd.DataFrame:
    """Link per-frame detections into trajectories with trackpy.

    Parameters
    ----------
    features : DataFrame
        Columns ``frame``, ``x``, ``y`` (pixels), plus any others (kept).
    search_range_px : float
        Largest displacement between linked frames, px.
    memory_frames : int
        Frames a particle may vanish and still keep its id.
    predictor : {"none", "nearest_velocity", "drift"}
        trackpy motion predictor (:mod:`trackpy.predict`): none, the velocity of the
        nearest linked neighbours, or the common drift.
    **link_kw
        Passed to :func:`trackpy.link` (e.g. ``adaptive_stop``).

    Returns
    -------
    DataFrame
        ``features`` with a ``particle`` column, same ``attrs``.
    """
    import trackpy

    missing = [c for c in ("frame", "x", "y") if c not in features.columns]
    if missing:
        raise SamemError(f"detections lack column(s) {missing}")
    search = positive("search_range_px", search_range_px)
    if int(memory_frames) != memory_frames or memory_frames < 0:
        raise SamemError(f"memory_frames must be a non-negative integer, got {memory_frames!r}")
    if predictor not in PREDICTORS:
        raise SamemError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    feats = features.drop(columns=["particle"], errors="ignore").reset_index(drop=True)
    if len(feats) == 0:
        out = feats.assign(particle=pd.Series(dtype=np.int64))
        out.attrs.update(features.attrs)
        return out
    trackpy.quiet()
    kw = dict(memory=int(memory_frames), pos_columns=["x", "y"], t_column="frame", **link_kw)
    if predictor == "none":
        out = trackpy.link(feats, search, **kw)
    else:
        pred = {
            "nearest_velocity": trackpy.predict.NearestVelocityPredict,
            "drift": trackpy.predict.DriftPredict,
        }[predictor](pos_columns=["x", "y"])
        out = pred.link_df(feats, search, **kw)
    out = out.reset_index(drop=True)
    out.attrs.update(features.attrs)
    return out
