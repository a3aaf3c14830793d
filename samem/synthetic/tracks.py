"""Synthetic videos whose particles move exactly as given trajectories (``samem synth --tracks``).

Track files (positions in pixels of the source, x = column, y = row):

* **CSV**, trackpy's convention: columns ``frame, particle, x, y`` (more columns are
  ignored); ``frame`` and ``particle`` integers, one row per particle and frame; rows
  with a ``present`` column false (samem's ``tracks.csv``) are skipped.
* **HDF5**, samem's own: a results file's ``/tracks`` table (rows with ``present`` false
  are skipped) or a synthetic video's ``/truth/tracks``; the file's ``pixel_size_nm`` and
  ``frame_interval_s`` attributes (root, ``/truth`` or ``/frames``) are its units.
* **MATLAB** ``.mat`` as in MoNet (Jamali et al., PNAS 2021): variable ``tr``, N x 3
  columns ``[x, y, k]`` with k the trajectory index; rows of one k are consecutive frames.

Scaling. With source pixel size ``p_s`` (nm/px) and frame interval ``dt_s`` (s), and the
video's ``p`` and ``dt``, rendered frame ``i`` of a track shows the source position at
source frame ``f0 + i dt / dt_s`` (``f0``: the track's first frame; every track starts at
rendered frame 0), linearly interpolated between the source's frames when that is not
an integer (or across gaps in the track), and its displacements are multiplied by
``p_s / p``. Where the rendered frames fall on source frames (``dt / dt_s`` an integer
and no gaps) the truth positions are the source positions, scaled, to rounding error.

Placement (``tracks_place``): ``random`` translates each track by a random offset that
keeps the whole particle inside the frame in every frame and clear of the others
(``min_gap_nm``, redrawn up to :data:`~samem.synthetic.scene.MAX_TRIES` times);
``centre`` puts the centre of the track's bounding box at the frame centre; ``keep``
keeps the source coordinates, scaled (``x = x_s p_s / p``). A particle whose track would
take any part of it out of the frame is an error (explicit ``track_ids``) or the track is
skipped (automatic choice). Shapes, sizes, contrast and rotation are drawn as for any
synthetic particle; the stage drift of the parameters is added as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.synthetic import motion
from samem.synthetic.params import SynthParams
from samem.synthetic.scene import MAX_TRIES, Scene, _draw_particle, _overlaps, assemble

#: suffixes of the supported track files
SUFFIXES = {".csv": "csv", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".mat": "mat"}

#: columns a track table needs (trackpy's names)
COLUMNS = ("frame", "particle", "x", "y")

#: slack (source frames) allowed when checking that a track covers the rendered frames
_EPS = 1e-9


@dataclass
class SourceTracks:
    """Trajectories read from a file.

    Attributes
    ----------
    tracks : DataFrame ``frame, particle, x, y`` (x, y in source px), sorted by particle
        and frame.
    pixel_size_nm : float or None
        nm per source pixel, when the file states it.
    frame_interval_s : float or None
        s between source frames, when the file states it.
    path : Path
        The file.
    """

    tracks: pd.DataFrame
    pixel_size_nm: float | None
    frame_interval_s: float | None
    path: Path

    @property
    def ids(self) -> np.ndarray:
        """Track ids in ascending order."""
        return np.unique(self.tracks["particle"].to_numpy())

    def span(self) -> pd.Series:
        """Last minus first frame of each track (source frames), indexed by id."""
        g = self.tracks.groupby("particle")["frame"]
        return g.max() - g.min()


def read_tracks(path: str | Path) -> SourceTracks:
    """Read a CSV, HDF5 or MoNet ``.mat`` track file (see module docstring).

    Raises
    ------
    SamemError
        Missing or unreadable file, unknown suffix, missing columns, non-numeric, NaN or
        infinite values, non-integer frames or ids, or a frame given twice for one track.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SamemError(
            f"{path}: unsupported track file suffix {path.suffix!r}; use "
            ".csv (trackpy columns frame, particle, x, y), .h5 (samem results or synthetic video) "
            "or .mat (MoNet variable tr)"
        )
    if not path.is_file():
        raise SamemError(f"{path}: no such file")
    units: dict[str, float | None] = {"pixel_size_nm": None, "frame_interval_s": None}
    if kind == "csv":
        df = _read_csv(path)
    elif kind == "h5":
        df, units = _read_h5(path)
    else:
        df = _read_mat(path)
    if "present" in df.columns:  # samem results: rows of objects not found in a frame carry no position
        present = df["present"]
        if present.dtype != bool:
            present = present.astype(str).str.strip().str.lower().isin(("true", "1", "1.0"))
        df = df[present.to_numpy(bool)]
    return SourceTracks(_clean(df, path), units["pixel_size_nm"], units["frame_interval_s"], path)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SamemError(f"{path}: not a readable CSV table ({str(exc).strip().splitlines()[0]})") from None


def _read_h5(path: Path) -> tuple[pd.DataFrame, dict]:
    from samem.io.h5 import open_h5
    from samem.io.table import read_table

    with open_h5(path) as f:
        name = "tracks" if "tracks" in f else "truth/tracks"
        if name not in f:
            raise SamemError(f"{path}: no /tracks (samem results) or /truth/tracks (synthetic video) table")
        try:
            df = read_table(f[name])
        except (TypeError, ValueError, AttributeError) as exc:
            raise SamemError(f"{path}: /{name} is not a table ({exc})") from None
        units = {}
        for key in ("pixel_size_nm", "frame_interval_s"):
            units[key] = None
            for obj in (f, f.get("truth"), f.get("frames")):
                if obj is not None and key in obj.attrs:
                    value = float(obj.attrs[key])
                    units[key] = value if np.isfinite(value) and value > 0 else None
                    break
    return df, units


def _read_mat(path: Path) -> pd.DataFrame:
    from scipy.io import loadmat

    try:
        data = loadmat(path, variable_names=["tr"])
    except NotImplementedError:
        raise SamemError(f"{path}: MATLAB v7.3 files are not supported; save with -v7") from None
    except (ValueError, TypeError, OSError) as exc:
        raise SamemError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    if "tr" not in data:
        try:
            from scipy.io import whosmat

            names = sorted(name for name, _, _ in whosmat(path))
        except (ValueError, TypeError, OSError, NotImplementedError):
            names = []
        raise SamemError(f"{path}: no variable 'tr' (MoNet layout: N x 3 [x, y, k]); variables: {names}")
    tr = np.asarray(data["tr"])
    if tr.ndim != 2 or tr.shape[1] != 3 or not np.issubdtype(tr.dtype, np.number):
        raise SamemError(f"{path}: 'tr' must be a numeric N x 3 array [x, y, k], got shape {tr.shape}")
    df = pd.DataFrame({"x": tr[:, 0], "y": tr[:, 1], "particle": tr[:, 2]})
    # rows of one trajectory are its consecutive frames, from 0
    df["frame"] = df.groupby("particle", sort=False).cumcount() if len(df) else []
    return df


def _clean(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SamemError(
            f"{path}: missing column(s) {missing}; a track table needs frame, particle, x, y "
            f"(trackpy convention, pixels); found {[str(c) for c in df.columns][:12]}"
        )
    out = {}
    for col in COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise SamemError(
                f"{path}: column {col} has {bad.size} missing, non-numeric or infinite value(s) "
                f"(first at data row {int(bad[0]) + 1})"
            )
        if col in ("frame", "particle"):
            if not np.all(values == np.round(values)):
                raise SamemError(f"{path}: column {col} must hold integers")
            values = values.astype(np.int64)
        out[col] = values
    table = pd.DataFrame(out).sort_values(["particle", "frame"], kind="stable", ignore_index=True)
    if table.empty:
        raise SamemError(f"{path}: no track positions")
    dup = table.duplicated(["particle", "frame"])
    if dup.any():
        row = table[dup].iloc[0]
        raise SamemError(f"{path}: track {int(row.particle)} has frame {int(row.frame)} more than once")
    return table


def source_units(params: SynthParams, src: SourceTracks) -> tuple[float, float]:
    """(nm per source pixel, s per source frame): the parameters', else the file's, else the video's."""
    m = params.motion
    px = m.tracks_pixel_size_nm or src.pixel_size_nm or params.pixel_size_nm
    dt = m.tracks_frame_interval_s or src.frame_interval_s or params.frame_interval_s
    return float(px), float(dt)


def frames_covered(src: SourceTracks, step: float) -> pd.Series:
    """Rendered frames each track covers when one rendered frame is ``step`` source frames."""
    return (np.floor(src.span() / step + _EPS) + 1).astype(np.int64)


def resample(track: pd.DataFrame, step: float, n_frames: int) -> np.ndarray | None:
    """Source positions (px) of one track at rendered frames ``0..n_frames-1``, or None if too short.

    Parameters
    ----------
    track : DataFrame
        One track's ``frame, x, y``, sorted by frame.
    step : float
        Source frames per rendered frame (rendered frame interval / source frame interval).
    n_frames : int
        Rendered frames.

    Returns
    -------
    ndarray, shape (n_frames, 2), or None
        ``x, y`` at source frames ``f0 + i step``, linearly interpolated between given frames.
    """
    f = track["frame"].to_numpy(dtype=float)
    want = f[0] + np.arange(n_frames) * step
    if want[-1] > f[-1] + _EPS:
        return None
    want = np.minimum(want, f[-1])
    exact = np.searchsorted(f, np.round(want))
    on_grid = np.isclose(want, np.round(want), rtol=0, atol=_EPS) & (exact < f.size)
    on_grid[on_grid] &= f[exact[on_grid]] == np.round(want[on_grid])
    out = np.empty((n_frames, 2))
    for j, col in enumerate(("x", "y")):
        v = track[col].to_numpy(dtype=float)
        out[:, j] = np.interp(want, f, v)
        out[on_grid, j] = v[exact[on_grid]]  # given frames: the given positions, bit for bit
    return out


def _fits(path: np.ndarray, radius: float, size: int) -> bool:
    """True if a particle of circumscribed ``radius`` (px) centred on ``path`` stays in the frame."""
    hi = size - 1.0
    return bool(path.min() >= radius and path.max() <= hi - radius)


def _place(src_px: np.ndarray, scale: float, radius: float, params: SynthParams, rng) -> np.ndarray | None:
    """The track in video pixels, placed as ``tracks_place`` says; None if it cannot fit."""
    size, place = params.size, params.motion.tracks_place
    hi = size - 1.0
    if place == "keep":
        path = src_px * scale
    elif place == "centre":
        centre = 0.5 * (src_px.min(axis=0) + src_px.max(axis=0))
        path = (src_px - centre) * scale + 0.5 * hi
    else:
        disp = (src_px - src_px[0]) * scale
        lo, up = radius - disp.min(axis=0), hi - radius - disp.max(axis=0)
        if np.any(lo > up):
            return None
        path = disp + rng.uniform(lo, up)
    return path if _fits(path, radius, size) else None


def plan(params: SynthParams, src: SourceTracks | None = None) -> dict:
    """What a ``--tracks`` video can hold: source units, frame step and the frames each track covers.

    Returns
    -------
    dict
        ``pixel_size_nm``, ``frame_interval_s`` (source units), ``scale`` (video px per
        source px), ``step`` (source frames per rendered frame), ``covered`` (Series of
        rendered frames per track id), ``source`` (the :class:`SourceTracks`).
    """
    src = src or read_tracks(params.motion.tracks_file)
    px, dt = source_units(params, src)
    step = params.frame_interval_s / dt
    return dict(
        pixel_size_nm=px,
        frame_interval_s=dt,
        scale=px / params.pixel_size_nm,
        step=step,
        covered=frames_covered(src, step),
        source=src,
    )


def build_track_scene(params: SynthParams, rng: np.random.Generator) -> Scene:
    """A :class:`Scene` whose particles follow the tracks of ``params.motion.tracks_file``.

    Particle ``i`` follows ``track_ids[i]``, or (without ``track_ids``) the next track in
    id order that covers ``frames`` rendered frames and keeps the particle inside the
    frame. Its row in the particles table has ``motion = "track"``, ``source_track`` (the
    source id) and NaN ``D_nm2_s`` and ``alpha`` (unknown for a given track).

    Raises
    ------
    SamemError
        Bad file (see :func:`read_tracks`); an unknown id; a track shorter than the video
        or one that would take its particle out of the frame; more particles than usable
        tracks; overlapping particles (unless ``allow_overlap``).
    """
    p, m = params.particles, params.motion
    info = plan(params)
    src: SourceTracks = info["source"]
    n, k, step, scale = params.frames, p.n_particles, info["step"], info["scale"]
    by_id = {int(pid): g for pid, g in src.tracks.groupby("particle", sort=True)}
    explicit = m.track_ids is not None
    if k > len(by_id):
        raise SamemError(f"too many particles: {k} requested but {src.path} holds {len(by_id)} tracks")
    if explicit:
        unknown = [i for i in m.track_ids if i not in by_id]
        if unknown:
            raise SamemError(f"{src.path}: no track(s) with id {unknown}; ids run {min(by_id)}..{max(by_id)}")
        candidates = list(m.track_ids)
    else:
        candidates = [pid for pid in by_id if info["covered"][pid] >= n]
        if len(candidates) < k:
            raise SamemError(
                f"too many particles: {k} requested but only {len(candidates)} of the {len(by_id)} tracks "
                f"in {src.path} cover {n} frames (at {step:g} source frames per frame); "
                "use fewer --particles or --frames"
            )
    rows, shapes, paths, angles, placed = [], [], [], [], []
    where = (
        f"{params.size} px frame at {params.pixel_size_nm:g} nm/px, source {info['pixel_size_nm']:g} nm/px"
    )
    for i in range(k):
        row, shape = _draw_particle(params, rng)
        radius = shape.radius_px
        path = None
        while path is None:
            if not candidates:
                raise SamemError(
                    f"too many particles: only {i} of the tracks in {src.path} cover {n} frames and keep "
                    f"a particle inside the {where}; {k} requested. Use fewer --particles or --frames, "
                    "a larger --size, a smaller --tracks-pixel-size-nm or smaller --size-nm"
                )
            pid = candidates.pop(0)
            src_px = resample(by_id[pid], step, n)
            if src_px is None:
                if explicit:
                    raise SamemError(
                        f"{src.path}: track {pid} covers {info['covered'][pid]} frames at {step:g} source "
                        f"frames per frame, {n} requested; use --frames {info['covered'][pid]} or fewer"
                    )
                continue
            clash = False
            for _ in range(MAX_TRIES if m.tracks_place == "random" else 1):
                path = _place(src_px, scale, radius, params, rng)
                if path is None:
                    break
                clash = not p.allow_overlap and _overlaps(path, radius, placed, params)
                if not clash:
                    break
            if path is None:
                if not explicit:
                    continue  # automatic choice: try the next track
                ext = np.ptp(src_px, axis=0) * scale
                raise SamemError(
                    f"track {pid} leaves the frame: it spans {ext[0]:.0f} x {ext[1]:.0f} px "
                    f"(placement {m.tracks_place}) with a particle of radius {radius:.0f} px in the {where}; "
                    "use a larger --size, a smaller --tracks-pixel-size-nm, smaller --size-nm or "
                    "--tracks-place random"
                )
            if clash:
                how = (
                    f"in {MAX_TRIES} tries" if m.tracks_place == "random" else f"(placement {m.tracks_place})"
                )
                raise SamemError(
                    f"could not place track {pid} clear of the other particles {how} in the {where}; "
                    "use fewer or smaller particles, --tracks-place random or --allow-overlap"
                )
        placed.append((path, radius))
        row.update(
            motion="track",
            D_nm2_s=float("nan"),
            alpha=float("nan"),
            trap_stiffness_pN_nm=0.0,
            velocity_x_nm_s=0.0,
            velocity_y_nm_s=0.0,
            jump_nm=0.0,
            wait_exponent=0.0,
        )
        rows.append(dict(row, particle=i + 1, entering=False, area_px=shape.area_px, source_track=pid))
        shapes.append(shape)
        paths.append(path)
        angles.append(
            motion.rotation(n, p.rotation_D_rad2_s, params.frame_interval_s, rng, rng.uniform(0, 2 * np.pi))
        )
    return assemble(params, rng, rows, shapes, paths, angles)
