"""The particle population and its exact trajectories for a whole video.

:func:`build_scene` draws each particle's shape, size, contrast and motion, then its
path (in nm, with :mod:`samem.synthetic.motion`), converts it to pixels, applies the
boundary rule and the stage drift, and redraws paths that would make particles overlap.
Only positions are computed here; frames are rendered later, one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.synthetic import motion
from samem.synthetic.params import SynthParams
from samem.synthetic.shapes import Shape, blob_harmonics

#: attempts to place one particle without overlaps before giving up
MAX_TRIES = 200


@dataclass
class Scene:
    """Particles and their positions in every frame.

    Attributes
    ----------
    particles : DataFrame, one row per particle (``particle`` id from 1).
    shapes : the :class:`Shape` of each particle, same order.
    xy_px : array (T, K, 2) of centroid positions (x = column, y = row; px) in the image.
    angle_rad : array (T, K) of in-plane orientations (rad).
    stage_px : array (T, 2) of the stage drift offset (px) included in ``xy_px``.
    dark : array (K,) bool, True for dark (mass-thickness) contrast.
    """

    particles: pd.DataFrame
    shapes: list[Shape]
    xy_px: np.ndarray
    angle_rad: np.ndarray
    stage_px: np.ndarray
    dark: np.ndarray


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if lo <= 0 or hi <= lo:
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(weights)
    w = np.array([weights[n] for n in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates into [lo, hi] (reflecting boundaries for a free path)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, 0.5 * (lo + hi))
    y = np.mod(x - lo, 2 * span)
    return lo + span - np.abs(y - span)


def _draw_particle(params: SynthParams, rng: np.random.Generator) -> dict:
    p, m = params.particles, params.motion
    kind = _pick(rng, p.shapes)
    size_nm = _loguniform(rng, *p.size_nm)
    aspect = float(rng.uniform(*p.aspect)) if kind in ("ellipse", "rod") else 1.0
    harmonics = blob_harmonics(p.blob_roughness, rng) if kind == "blob" else ()
    dark = p.contrast == "dark" or (p.contrast == "mixed" and rng.random() < 0.5)
    model = _pick(rng, m.models)
    row = dict(
        shape=kind,
        size_nm=size_nm,
        size_px=size_nm / params.pixel_size_nm,
        aspect=aspect,
        contrast="dark" if dark else "bright",
        motion=model,
        D_nm2_s=_loguniform(rng, *m.D_nm2_s),
        alpha=float(rng.uniform(*m.alpha)) if model == "anomalous" else 1.0,
        trap_stiffness_pN_nm=_loguniform(rng, *m.trap_stiffness_pN_nm) if model == "confined" else 0.0,
        velocity_x_nm_s=0.0,
        velocity_y_nm_s=0.0,
        rotation_D_rad2_s=p.rotation_D_rad2_s,
        jump_nm=0.0,
        wait_exponent=0.0,
    )
    if model == "directed":
        speed, heading = rng.uniform(*m.velocity_nm_s), rng.uniform(0, 2 * np.pi)
        row["velocity_x_nm_s"], row["velocity_y_nm_s"] = speed * np.cos(heading), speed * np.sin(heading)
    if model == "ctrw":  # D and alpha: the asymptotic ensemble values of its jumps and waits
        row["jump_nm"] = _loguniform(rng, *m.jump_nm)
        row["wait_exponent"] = float(rng.uniform(*m.wait_exponent))
        row["D_nm2_s"], row["alpha"] = motion.ctrw_coefficients(
            row["jump_nm"], m.wait_min_s, row["wait_exponent"], m.wait_max_s
        )
    shape = Shape(kind, row["size_px"], aspect, p.prism_thickness_ratio, harmonics)
    return row, shape


def _path_nm(row: dict, params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    n, dt = params.frames, params.frame_interval_s
    D = row["D_nm2_s"]
    if row["motion"] == "anomalous":
        return motion.fractional_brownian(n, D, row["alpha"], dt, rng)
    if row["motion"] == "confined":
        return motion.confined(n, D, dt, row["trap_stiffness_pN_nm"], rng, params.motion.temperature_K)
    if row["motion"] == "directed":
        return motion.directed(n, D, dt, (row["velocity_x_nm_s"], row["velocity_y_nm_s"]), rng)
    if row["motion"] == "ctrw":
        m = params.motion
        return motion.ctrw(n, row["jump_nm"], m.wait_min_s, row["wait_exponent"], dt, rng, m.wait_max_s)
    return motion.brownian(n, D, dt, rng)


def _start(params: SynthParams, radius: float, entering: bool, cluster_xy, rng) -> np.ndarray:
    """Start position (px) of a centroid: fully inside, around a cluster centre, or just outside."""
    hi = params.size - 1.0
    lo_in, hi_in = min(radius, hi / 2), max(hi - radius, hi / 2)
    if entering:
        edge = rng.integers(4)
        along = rng.uniform(0, hi)
        out = radius * rng.uniform(1.0, 2.0)
        return np.array([[-out, along], [hi + out, along], [along, -out], [along, hi + out]][edge])
    if cluster_xy is not None:
        r = params.particles.cluster_radius_nm / params.pixel_size_nm * np.sqrt(rng.random())
        phi = rng.uniform(0, 2 * np.pi)
        xy = cluster_xy + r * np.array([np.cos(phi), np.sin(phi)])
        return np.clip(xy, lo_in, hi_in)
    return rng.uniform(lo_in, hi_in, size=2)


def _overlaps(path: np.ndarray, radius: float, placed: list, params: SynthParams) -> bool:
    """True if ``path`` (T, 2) comes too close to any placed particle while both are near the frame."""
    gap = params.particles.min_gap_nm / params.pixel_size_nm
    hi = params.size - 1.0
    near = np.all((path > -radius) & (path < hi + radius), axis=1)
    for other, r_other in placed:
        both = near & np.all((other > -r_other) & (other < hi + r_other), axis=1)
        if not both.any():
            continue
        d = np.hypot(*(path[both] - other[both]).T)
        if np.any(d < radius + r_other + gap):
            return True
    return False


def build_scene(params: SynthParams, rng: np.random.Generator) -> Scene:
    """Draw particles and their trajectories (see module docstring).

    With ``tracks_file`` set, particles follow the given trajectories instead
    (:func:`samem.synthetic.tracks.build_track_scene`).

    Raises
    ------
    SamemError
        If a particle cannot be placed without overlaps in ``MAX_TRIES`` attempts.
    """
    if params.motion.tracks_file is not None:
        from samem.synthetic.tracks import build_track_scene

        return build_track_scene(params, rng)
    p = params.particles
    n, k = params.frames, p.n_particles
    rows, shapes, paths, angles, placed = [], [], [], [], []
    n_enter = int(round(p.enter_fraction * k))
    entering = np.zeros(k, bool)
    entering[rng.permutation(k)[:n_enter]] = True
    cluster_xy = None
    if p.cluster_radius_nm > 0:
        cluster_xy = rng.uniform(0.25, 0.75, size=2) * (params.size - 1)
    hi = params.size - 1.0
    for i in range(k):
        row, shape = _draw_particle(params, rng)
        radius = shape.radius_px
        for _ in range(MAX_TRIES):
            path = (
                _start(params, radius, entering[i], cluster_xy, rng)
                + _path_nm(row, params, rng) / params.pixel_size_nm
            )
            if p.boundary == "reflect" and not entering[i]:
                path = np.stack(
                    [_fold(path[:, j], min(radius, hi / 2), max(hi - radius, hi / 2)) for j in (0, 1)], 1
                )
            if p.allow_overlap or not _overlaps(path, radius, placed, params):
                break
        else:
            raise SamemError(
                f"could not place particle {i + 1} of {k} without overlaps in {MAX_TRIES} tries "
                f"({n} frames, {params.size} px frame); use fewer or smaller particles, lower D, "
                "fewer frames, or allow_overlap: true"
            )
        placed.append((path, radius))
        rows.append(dict(row, particle=i + 1, entering=bool(entering[i]), area_px=shape.area_px))
        shapes.append(shape)
        paths.append(path)
        angles.append(
            motion.rotation(n, p.rotation_D_rad2_s, params.frame_interval_s, rng, rng.uniform(0, 2 * np.pi))
        )
    return assemble(params, rng, rows, shapes, paths, angles)


#: columns of the particles table, in order
PARTICLE_COLUMNS = [
    "particle",
    "shape",
    "size_nm",
    "size_px",
    "aspect",
    "area_px",
    "contrast",
    "motion",
    "D_nm2_s",
    "alpha",
    "trap_stiffness_pN_nm",
    "velocity_x_nm_s",
    "velocity_y_nm_s",
    "rotation_D_rad2_s",
    "jump_nm",
    "wait_exponent",
    "entering",
]


def assemble(params: SynthParams, rng: np.random.Generator, rows, shapes, paths, angles) -> Scene:
    """A :class:`Scene` from per-particle rows, shapes, paths (T, 2) and angles (T,), adding the
    stage drift (drawn from ``rng``) to every path."""
    m, n = params.motion, params.frames
    stage = motion.drift(n, params.frame_interval_s, m.stage_drift_nm_s, m.stage_jitter_nm2_s, rng)
    stage_px = stage / params.pixel_size_nm
    xy = np.stack(paths, axis=1) if paths else np.zeros((n, 0, 2))
    xy = xy + stage_px[:, None, :]
    extra = [c for c in (rows[0] if rows else {}) if c not in PARTICLE_COLUMNS]
    particles = pd.DataFrame(rows, columns=PARTICLE_COLUMNS + extra)
    angle = np.stack(angles, axis=1) if angles else np.zeros((n, 0))
    dark = np.array([r["contrast"] == "dark" for r in rows], bool)
    return Scene(particles, shapes, xy, angle, stage_px, dark)
