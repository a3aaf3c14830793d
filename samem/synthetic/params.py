"""Physical parameters of a synthetic LPTEM video, loaded from recipes in ``synthetic/*.yaml``.

A recipe is a YAML mapping with the top-level fields of :class:`SynthParams` and three
groups, ``particles``, ``motion`` and ``imaging``; ``base: <recipe>`` inherits another
recipe and overrides it. Ranges ``[lo, hi]`` are sampled per particle (log-uniformly for
sizes and coefficients). ``randomize`` (domain randomisation, used by
:class:`samem.synthetic.ClipStream`) maps field names to distributions drawn per clip.

Every field name is unique across groups, so overrides can be flat:
``SynthParams.from_preset("thin", frames=10, size=128, thickness_nm=20, n_particles=2)``.

Recipes and overrides load through samem's one configuration mechanism,
:func:`samem.config.load` (with ``cast``: ``50`` reads as ``50.0`` in a float field, ``[lo, hi]``
as a tuple) and :func:`samem.config.load_yaml_layers` (``base:``); every unknown name and every
value of the wrong kind is named in one :class:`SamemError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.config import load, load_yaml_layers, nest
from samem.errors import SamemError

SHAPES = ("sphere", "ellipse", "rod", "prism", "blob")
MOTIONS = ("brownian", "anomalous", "confined", "directed", "ctrw")
TRACK_PLACES = ("random", "centre", "keep")
PRESETS = ("thin", "medium", "thick")
DTYPES = ("uint8", "uint16")


@dataclass
class ParticleParams:
    """The particle population.

    Attributes
    ----------
    n_particles : number of particles (ids 1..n).
    shapes : relative weights of ``sphere, ellipse, rod, prism, blob`` (projections of a
        sphere, prolate ellipsoid, spherocylinder, flat triangular prism, irregular blob).
    size_nm : (lo, hi) longest projected dimension (nm), log-uniform per particle
        (sphere diameter, ellipse major axis, rod length, prism edge, blob extent).
    aspect : (lo, hi) length / width of ellipses and rods.
    prism_thickness_ratio : plate thickness / edge length of prisms.
    blob_roughness : relative rms modulation of a blob's radius.
    contrast : ``dark`` (mass-thickness), ``bright`` or ``mixed`` (random per particle).
    mfp_nm : effective mass-thickness mean free path of the particle material (nm);
        smaller is darker.
    rotation_D_rad2_s : in-plane rotational diffusion coefficient (rad^2/s).
    allow_overlap : if false, trajectories are redrawn until no two particles come closer
        than ``min_gap_nm`` (circumscribed circles) in any frame.
    min_gap_nm : smallest allowed gap between circumscribed circles (nm).
    boundary : ``open`` (particles may leave the field of view) or ``reflect``
        (positions are folded back so particles stay fully inside).
    enter_fraction : fraction of particles that start just outside the field of view.
    cluster_radius_nm : if > 0, particles start within this radius of a common point.
    """

    n_particles: int = 4
    shapes: dict[str, float] = field(default_factory=lambda: {"sphere": 1.0})
    size_nm: tuple[float, float] = (15.0, 40.0)
    aspect: tuple[float, float] = (1.5, 3.0)
    prism_thickness_ratio: float = 0.3
    blob_roughness: float = 0.12
    contrast: str = "dark"
    mfp_nm: float = 150.0
    rotation_D_rad2_s: float = 0.05
    allow_overlap: bool = False
    min_gap_nm: float = 2.0
    boundary: str = "open"
    enter_fraction: float = 0.0
    cluster_radius_nm: float = 0.0


@dataclass
class MotionParams:
    """Motion of each particle and of the stage.

    Attributes
    ----------
    models : relative weights of ``brownian, anomalous, confined, directed, ctrw``
        (ctrw: continuous-time random walk with pinning, ``samem.synthetic.motion.ctrw``).
    D_nm2_s : (lo, hi) diffusion coefficient (nm^2/s; nm^2/s^alpha for anomalous),
        log-uniform per particle (not used by ctrw particles, whose D follows from their
        jumps and waiting times).
    alpha : (lo, hi) anomalous exponent of ``anomalous`` particles (others have 1).
    trap_stiffness_pN_nm : (lo, hi) harmonic trap stiffness of ``confined`` particles
        (pN/nm), log-uniform.
    temperature_K : temperature (K) setting kT for traps.
    velocity_nm_s : (lo, hi) speed of ``directed`` particles (nm/s), random direction.
    stage_drift_nm_s : (vx, vy) stage drift of the whole field of view (nm/s).
    stage_jitter_nm2_s : random-walk coefficient of the stage (nm^2/s).
    jump_nm : (lo, hi) rms jump length per axis of ``ctrw`` particles (nm), log-uniform.
    wait_exponent : (lo, hi) tail exponent a of the ``ctrw`` waiting times,
        ``P(wait > t) = (wait_min_s / t)**a``, uniform per particle; a < 1 (infinite mean
        wait) gives subdiffusion with ensemble MSD ∝ t**a.
    wait_min_s : shortest ``ctrw`` waiting time (s), the scale of the power law.
    wait_max_s : cutoff of the ``ctrw`` waiting times (s), or none; with a cutoff the
        motion turns diffusive at lags beyond it.
    tracks_file : if set, particles move exactly as the trajectories in this file (CSV with
        trackpy columns ``frame, particle, x, y`` in px; samem HDF5 ``/tracks`` or
        ``/truth/tracks``; MoNet ``.mat`` variable ``tr`` with columns x, y, k) instead of a
        motion model (see :mod:`samem.synthetic.tracks`).
    tracks_pixel_size_nm : nm per pixel of the track file's coordinates (default: the
        file's own ``pixel_size_nm`` attribute, else the video's).
    tracks_frame_interval_s : time between the track file's frames (s) (default: the
        file's own ``frame_interval_s`` attribute, else the video's).
    track_ids : ids of the tracks to render, one per particle, in order (default: the
        first ``n_particles`` tracks, in id order, that cover the video and fit the frame).
    tracks_place : ``random`` (each track moved by a random offset that keeps it inside),
        ``centre`` (the bounding box of each track centred in the frame) or ``keep``
        (the file's coordinates, scaled).
    """

    models: dict[str, float] = field(default_factory=lambda: {"brownian": 1.0})
    D_nm2_s: tuple[float, float] = (100.0, 1000.0)
    alpha: tuple[float, float] = (0.5, 1.5)
    trap_stiffness_pN_nm: tuple[float, float] = (0.002, 0.02)
    temperature_K: float = 298.15
    velocity_nm_s: tuple[float, float] = (5.0, 30.0)
    stage_drift_nm_s: tuple[float, float] = (0.0, 0.0)
    stage_jitter_nm2_s: float = 0.0
    jump_nm: tuple[float, float] = (2.0, 8.0)
    wait_exponent: tuple[float, float] = (0.5, 0.9)
    wait_min_s: float = 0.01
    wait_max_s: float | None = None
    tracks_file: str | None = None
    tracks_pixel_size_nm: float | None = None
    tracks_frame_interval_s: float | None = None
    track_ids: tuple[int, ...] | None = None
    tracks_place: str = "random"


@dataclass
class ImagingParams:
    """Liquid cell, beam and detector.

    Attributes
    ----------
    thickness_nm : liquid layer thickness (nm).
    membrane_nm : total SiN window thickness (nm).
    mfp_liquid_nm, mfp_membrane_nm : mean free paths (nm) for scattering out of the
        objective aperture; they set the background attenuation ``exp(-t / mfp)``.
    mfp_inelastic_nm : mean free path (nm) for small-angle inelastic scattering in the
        liquid; that fraction ``1 - exp(-t / mfp)`` of the beam forms a diffuse haze that
        carries no particle contrast.
    blur_at_100nm_nm : Gaussian sigma (nm) of beam broadening by 100 nm of liquid; it
        scales as ``thickness**1.5``.
    dose_e_A2 : electron dose per frame (e-/A^2); sets Poisson shot noise.
    mtf_sigma_px : Gaussian sigma (px) of the detector point spread (MTF).
    read_noise_e : rms read noise (electrons), white.
    correlated_noise_e : rms spatially correlated detector noise (electrons).
    correlated_length_px : correlation length of that noise (px).
    thickness_variation : relative rms variation of the liquid thickness across the frame.
    variation_scale_nm : length scale of those variations (nm).
    background_period_s : period (s) over which the thickness variations evolve.
    illumination_gradient : relative intensity change of a linear beam gradient across the frame.
    flicker : relative rms frame-to-frame fluctuation of the beam current.
    dtype : ``uint8`` or ``uint16`` output.
    gain_adu_per_e, offset_adu : uint16 output ``ADU = offset + gain * electrons``.
    level_8bit : uint8 output maps the mean background to this fraction of 255.
    jpeg_quality : if set (1-100, uint8 only), frames pass through JPEG compression.
    shot_noise : ``poisson`` (exact), ``gaussian`` (mean, variance and skewness of
        Poisson) or ``auto`` (gaussian when every pixel expects >= 10 electrons).
    """

    thickness_nm: float = 50.0
    membrane_nm: float = 100.0
    mfp_liquid_nm: float = 350.0
    mfp_membrane_nm: float = 250.0
    mfp_inelastic_nm: float = 300.0
    blur_at_100nm_nm: float = 0.6
    dose_e_A2: float = 1.0
    mtf_sigma_px: float = 0.6
    read_noise_e: float = 0.5
    correlated_noise_e: float = 0.5
    correlated_length_px: float = 8.0
    thickness_variation: float = 0.05
    variation_scale_nm: float = 150.0
    background_period_s: float = 30.0
    illumination_gradient: float = 0.05
    flicker: float = 0.02
    dtype: str = "uint8"
    gain_adu_per_e: float = 10.0
    offset_adu: float = 100.0
    level_8bit: float = 0.5
    jpeg_quality: int | None = None
    shot_noise: str = "auto"


_GROUPS = {"particles": ParticleParams, "motion": MotionParams, "imaging": ImagingParams}
#: recipe keys that are not parameters
_NOT_PARAMS = ("base", "description")
#: recipe keys a recipe does not inherit from its ``base``: they describe the recipe itself
_OWN = ("name", "snr_range", "description")


@dataclass
class SynthParams:
    """Everything that defines a synthetic video; same params and seed give the same bytes.

    Attributes
    ----------
    frames : number of frames T.
    size : frame height and width (px).
    pixel_size_nm : nm per pixel.
    frame_interval_s : time between frames (s).
    seed : random seed.
    name : recipe or preset name (informational).
    snr_range : (lo, hi) SNR range the recipe is meant to land in (informational).
    particles, motion, imaging : the groups above.
    randomize : domain randomisation ``{field: {uniform|loguniform|integers: [lo, hi]} |
        {choice: [...]}}`` applied per clip by :class:`~samem.synthetic.ClipStream`.
    """

    frames: int = 100
    size: int = 1024
    pixel_size_nm: float = 0.5
    frame_interval_s: float = 0.05
    seed: int = 0
    name: str = "custom"
    snr_range: tuple[float, float] | None = None
    particles: ParticleParams = field(default_factory=ParticleParams)
    motion: MotionParams = field(default_factory=MotionParams)
    imaging: ImagingParams = field(default_factory=ImagingParams)
    randomize: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], /, **overrides) -> SynthParams:
        """Build from a (recipe-style) mapping plus flat or nested overrides."""
        return cls._load([data], overrides)

    @classmethod
    def from_recipe(cls, name_or_path: str | Path, /, **overrides) -> SynthParams:
        """Load a shipped recipe by name (``thin``, ``train``, ...) or a YAML path.

        ``base: <recipe>`` inside a recipe inherits that recipe first (all of it but its
        ``name``, ``snr_range`` and ``description``).
        """
        layers = load_yaml_layers(
            name_or_path, "samem.recipes", parent_key="base", not_inherited=_OWN, what="recipe"
        )
        layers[-1].setdefault("name", Path(str(name_or_path)).stem)
        return cls._load(layers, overrides)

    @classmethod
    def _load(cls, layers: list[Mapping[str, Any]], overrides: Mapping[str, Any]) -> SynthParams:
        """Recipe-style mappings, then each override in order, through :func:`samem.config.load`."""
        layers = [{k: v for k, v in layer.items() if k not in _NOT_PARAMS} for layer in layers]
        layers += [nest({_dotted(name, value): value}) for name, value in overrides.items()]
        return load(cls, layers, what="synthetic parameter", cast=True)

    @classmethod
    def from_preset(cls, name: str, /, **overrides) -> SynthParams:
        """One of the liquid-thickness presets ``thin`` (5 nm), ``medium`` (50 nm), ``thick`` (150 nm)."""
        if name not in PRESETS:
            raise SamemError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls.from_recipe(name, **overrides)

    def replace(self, **overrides) -> SynthParams:
        """A copy with flat or nested overrides applied."""
        return SynthParams.from_dict(self.to_dict(), **overrides)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible mapping (tuples become lists)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    # ------------------------------------------------------------------ validation
    def validate(self) -> SynthParams:
        """Check every parameter; raise :class:`SamemError` naming the first bad one."""
        p, m, im = self.particles, self.motion, self.imaging
        _require(self.frames >= 1, f"frames must be >= 1, got {self.frames}")
        _require(self.size >= 16, f"size must be >= 16 px, got {self.size}")
        _require(self.pixel_size_nm > 0, f"pixel_size_nm must be > 0, got {self.pixel_size_nm}")
        _require(self.frame_interval_s > 0, f"frame_interval_s must be > 0, got {self.frame_interval_s}")
        _require(0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed}")
        _require(p.n_particles >= 0, f"n_particles must be >= 0, got {p.n_particles}")
        _weights("shapes", p.shapes, SHAPES)
        _range("size_nm", p.size_nm, positive=True)
        largest_px = p.size_nm[1] / self.pixel_size_nm
        _require(
            largest_px <= self.size or p.n_particles == 0,
            f"particles larger than the frame: size_nm up to {p.size_nm[1]:g} nm is {largest_px:.0f} px "
            f"at {self.pixel_size_nm:g} nm/px, but the frame is {self.size} px",
        )
        _range("aspect", p.aspect, positive=True)
        _require(p.aspect[0] >= 1, f"aspect must be >= 1 (length / width), got {list(p.aspect)}")
        _require(p.prism_thickness_ratio > 0, "prism_thickness_ratio must be > 0")
        _require(0 <= p.blob_roughness < 0.3, f"blob_roughness must lie in [0, 0.3), got {p.blob_roughness}")
        _require(
            p.contrast in ("dark", "bright", "mixed"),
            f"contrast must be dark, bright or mixed, got {p.contrast!r}",
        )
        _require(p.mfp_nm > 0, f"mfp_nm must be > 0, got {p.mfp_nm}")
        _require(p.rotation_D_rad2_s >= 0, "rotation_D_rad2_s must be >= 0")
        _require(p.min_gap_nm >= 0, "min_gap_nm must be >= 0")
        _require(p.boundary in ("open", "reflect"), f"boundary must be open or reflect, got {p.boundary!r}")
        _require(0 <= p.enter_fraction <= 1, f"enter_fraction must lie in [0, 1], got {p.enter_fraction}")
        _require(p.cluster_radius_nm >= 0, "cluster_radius_nm must be >= 0")
        _weights("models", m.models, MOTIONS)
        _range("D_nm2_s", m.D_nm2_s, positive=False)
        _range("alpha", m.alpha, positive=True)
        _require(m.alpha[1] < 2, f"alpha must lie in (0, 2), got {list(m.alpha)}")
        _range("trap_stiffness_pN_nm", m.trap_stiffness_pN_nm, positive=True)
        _require(m.temperature_K > 0, f"temperature_K must be > 0, got {m.temperature_K}")
        _range("velocity_nm_s", m.velocity_nm_s, positive=False)
        _require(all(math.isfinite(v) for v in m.stage_drift_nm_s), "stage_drift_nm_s must be finite")
        _require(m.stage_jitter_nm2_s >= 0, "stage_jitter_nm2_s must be >= 0")
        _range("jump_nm", m.jump_nm, positive=False)
        _range("wait_exponent", m.wait_exponent, positive=True)
        _require(0 < m.wait_min_s < math.inf, f"wait_min_s must be > 0 and finite, got {m.wait_min_s}")
        _require(
            m.wait_max_s is None or m.wait_min_s < m.wait_max_s < math.inf,
            f"wait_max_s must be > wait_min_s ({m.wait_min_s:g} s) and finite, or none; got {m.wait_max_s}",
        )
        for name in ("tracks_pixel_size_nm", "tracks_frame_interval_s"):
            value = getattr(m, name)
            _require(value is None or 0 < value < math.inf, f"{name} must be > 0 and finite, got {value}")
        _require(m.tracks_file != "", "tracks_file must name a file, got ''")
        _require(
            m.tracks_place in TRACK_PLACES,
            f"tracks_place must be one of {', '.join(TRACK_PLACES)}, got {m.tracks_place!r}",
        )
        if m.track_ids is not None:
            _require(m.tracks_file is not None, "track_ids needs tracks_file")
            _require(
                len(set(m.track_ids)) == len(m.track_ids), f"track_ids repeat an id: {list(m.track_ids)}"
            )
            _require(
                len(m.track_ids) == p.n_particles,
                f"track_ids names {len(m.track_ids)} tracks but n_particles is {p.n_particles}",
            )
        _require(im.thickness_nm >= 0, f"thickness_nm must be >= 0 (liquid thickness), got {im.thickness_nm}")
        _require(im.membrane_nm >= 0, f"membrane_nm must be >= 0, got {im.membrane_nm}")
        for name in ("mfp_liquid_nm", "mfp_membrane_nm", "mfp_inelastic_nm", "dose_e_A2", "level_8bit"):
            _require(getattr(im, name) > 0, f"{name} must be > 0, got {getattr(im, name)}")
        _require(im.level_8bit < 1, f"level_8bit must be < 1, got {im.level_8bit}")
        for name in (
            "blur_at_100nm_nm",
            "mtf_sigma_px",
            "read_noise_e",
            "correlated_noise_e",
            "flicker",
            "thickness_variation",
            "illumination_gradient",
            "offset_adu",
        ):
            _require(getattr(im, name) >= 0, f"{name} must be >= 0, got {getattr(im, name)}")
        _require(im.flicker < 0.3, f"flicker must be < 0.3, got {im.flicker}")
        _require(
            im.thickness_variation < 0.5, f"thickness_variation must be < 0.5, got {im.thickness_variation}"
        )
        _require(im.illumination_gradient < 0.5, "illumination_gradient must be < 0.5")
        _require(im.correlated_length_px >= 1, "correlated_length_px must be >= 1")
        _require(
            im.variation_scale_nm > 0 and im.background_period_s > 0,
            "variation_scale_nm and background_period_s must be > 0",
        )
        _require(im.gain_adu_per_e > 0, "gain_adu_per_e must be > 0")
        _require(im.dtype in DTYPES, f"dtype must be uint8 or uint16, got {im.dtype!r}")
        _require(
            im.shot_noise in ("auto", "poisson", "gaussian"), "shot_noise must be auto, poisson or gaussian"
        )
        if im.jpeg_quality is not None:
            _require(1 <= im.jpeg_quality <= 100, f"jpeg_quality must lie in 1..100, got {im.jpeg_quality}")
            _require(im.dtype == "uint8", "jpeg_quality needs dtype uint8 (JPEG is 8-bit)")
        for key in self.randomize:
            _require(key.split(".")[-1] in _FLAT, f"randomize: unknown parameter {key!r}")
        return self


# ---------------------------------------------------------------------- helpers
_FLAT: dict[str, str | None] = {
    f.name: None for f in dataclasses.fields(SynthParams) if f.name not in _GROUPS
}
for _g, _cls in _GROUPS.items():
    for _f in dataclasses.fields(_cls):
        assert _f.name not in _FLAT, f"duplicate parameter name {_f.name}"
        _FLAT[_f.name] = _g


def field_group(name: str) -> str | None:
    """Group (``particles``, ``motion``, ``imaging``) of a flat field name; None for top-level ones."""
    if name not in _FLAT:
        raise SamemError(f"unknown synthetic parameter {name!r}")
    return _FLAT[name]


def _dotted(name: str, value: Any) -> str:
    """The dotted path (``imaging.thickness_nm``) of an override named flat (``thickness_nm``) or
    dotted (the field name picks the group); a group's name given a mapping stays as it is.

    Raises
    ------
    SamemError
        A name that is no synthetic parameter.
    """
    if name in _GROUPS and isinstance(value, dict):
        return name
    last = name.split(".")[-1]
    group = field_group(last)
    return last if group is None else f"{group}.{last}"


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SamemError(message)


def _range(name: str, pair, positive: bool) -> None:
    lo, hi = pair
    _require(lo <= hi, f"{name} must be [lo, hi] with lo <= hi, got {list(pair)}")
    _require(
        lo > 0 if positive else lo >= 0, f"{name} must be {'> 0' if positive else '>= 0'}, got {list(pair)}"
    )
    _require(math.isfinite(hi), f"{name} must be finite, got {list(pair)}")


def _weights(name: str, weights: dict[str, float], allowed: tuple[str, ...]) -> None:
    bad = sorted(set(weights) - set(allowed))
    _require(not bad, f"{name}: unknown {bad}; choose from {', '.join(allowed)}")
    _require(all(w >= 0 for w in weights.values()), f"{name}: weights must be >= 0")
    _require(sum(weights.values()) > 0, f"{name}: at least one weight must be > 0")
