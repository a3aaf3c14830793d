"""Checking each position against the image and the particle's own motion (``TrackerOptions.verify``).

SAM 2 reports an object present while its object score is above 0.5. A fast, faint particle
can be lost in a few frames, and SAM 2 then keeps drawing masks on noise near where it was,
with scores that still say "present": a wrong position that silently corrupts the MSD. A gap
costs a scientist little; a wrong position does not. This module gives every object a second,
independent opinion, computed on the frame at native resolution, and a motion model of its
own:

Motion (:class:`Motion`)
    Brownian particles have no useful velocity, so the prediction is the last verified
    position (plus the mean step when the particle drifts measurably, directed motion); its
    uncertainty is the particle's own step spread, measured on its verified frames (a running
    per-axis step variance in px per frame over about its last 50 steps, started from a prior
    of ``verify_step`` x the prompt-box side), times ``sqrt(frames since the last verified
    frame)``, the frames counted up to ``verify_max_gap`` (a particle lost for long is found
    again near where it was lost, or by the user, never anywhere in the field). The *gate* is
    ``gate_sigmas`` such spreads plus the particle's radius.

Detector (:func:`contrast_map`)
    A band-pass of the frame around the prediction: a Gaussian of the particle's size minus a
    wider background, signed by the particle's contrast (dark particles count positive) and
    divided by the robust noise level of the band-passed crop: a *z* map in which a particle
    stands out as a peak (trackpy's locate does the same filtering). It runs on the crop
    downsampled so that the particle radius is about :data:`RADIUS_PX` px: the cost does
    not grow with particle size.

Decision (:meth:`Verifier.check`), per object and frame
    - SAM 2's position is *supported* when it lies inside the gate, not on another tracked
      particle, and the *z* there reaches ``verify_z`` and ``verify_fraction`` of the
      particle's typical *z* (a running mean over its supported frames) on the mean of the
      last ``verify_average`` frames (a particle that stays within its size adds up over
      them, noise does not), and ``verify_floor_z`` and ``verify_floor_fraction`` of the
      typical *z* on the current frame alone (a track that has just jumped onto noise beside
      the particle, or that lags behind a particle which moved more than its radius: the
      mean of the last frames still holds the particle where the track is); on the first
      frame back after a gap, ``verify_return_z`` and ``verify_return_fraction`` there
      instead (a gap has grown the gate, and the more ground the gate covers the likelier
      noise inside it looks like a faint particle). Supported frames update the motion
      model and are written to SAM 2's memory. After ``verify_max_gap`` frames or more
      without one, a position is reported only once it has been supported on
      ``verify_rejoin_frames`` consecutive frames (each within one frame's gate of the
      last): a particle found again truly stays found, noise near where it was lost rarely
      holds for long; until then the ROI window follows the candidate.
    - An unsupported frame is reported absent (a gap) and not written to memory (so one bad
      frame cannot poison the next ones); the ROI window waits at the prediction.
    - If the *z* map holds a peak of at least ``verify_peak_z`` (and ``verify_peak_fraction``
      of the typical *z*) inside the gate, away from the other tracked particles, while SAM 2
      is absent or unsupported, on ``verify_frames`` consecutive frames (each peak within one
      frame's gate of the previous one), the object is prompted again on the next frame with
      its prompt box centred on that peak.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

#: particle radius (px) after the crop is downsampled for the detector
RADIUS_PX = 5.0
#: prior weight (in steps) of the prior step spread in the running estimate
PRIOR_STEPS = 2.0
#: weight kept by the past steps at each new one (about 50 steps shape the estimate)
FORGET = 0.98
#: largest crop side (frame px) the detector looks at
MAX_CROP_PX = 768
#: :meth:`Verifier.sigma` = SIGMA_SCALE (radius / typical z) ** SIGMA_POWER (px): fitted by
#: ``bench/bench_precision.py --fit`` to the per-particle errors on the 24 tuning videos
SIGMA_SCALE = 0.566
SIGMA_POWER = 1.352


@dataclass
class Motion:
    """A particle's motion model: constant position (plus a measured drift), spread from its own steps.

    Parameters
    ----------
    prior_px
        Prior per-axis step spread (px per frame) before steps are measured.
    max_gap
        Frames after which the spread stops growing (``TrackerOptions.verify_max_gap``).
    """

    prior_px: float
    max_gap: int = 1_000_000
    last: tuple[float, float] | None = None  # last verified position (x, y), px
    last_frame: int = 0
    # exponentially weighted (FORGET) sums over the verified steps:
    sum_sq: float = 0.0  # per-axis squared steps, each divided by its frame gap (px^2/frame)
    sum_dx: float = 0.0  # steps (px) ...
    sum_dy: float = 0.0
    frames: float = 0.0  # ... over this many frames
    steps: float = 0.0  # weight of the steps
    count: int = 0  # steps measured

    def spread(self) -> float:
        """Per-axis step spread (px per frame): prior and measured steps pooled."""
        prior = PRIOR_STEPS * FORGET**self.count  # forgotten like a step measured first
        var = (prior * self.prior_px**2 + self.sum_sq) / (prior + self.steps)
        return math.sqrt(var)

    def velocity(self) -> tuple[float, float]:
        """Mean step (px per frame) when it differs from zero by more than 3 standard errors, else 0."""
        if self.count < 8 or self.frames <= 0:
            return 0.0, 0.0
        vx, vy = self.sum_dx / self.frames, self.sum_dy / self.frames
        err = self.spread() / math.sqrt(self.frames)
        return (vx, vy) if math.hypot(vx, vy) > 3 * err else (0.0, 0.0)

    def predict(self, frame: int) -> tuple[tuple[float, float], float]:
        """Predicted position (x, y; px) on ``frame`` and its per-axis spread (px)."""
        gap = max(1, frame - self.last_frame)
        vx, vy = self.velocity()
        x, y = self.last
        return (x + vx * gap, y + vy * gap), self.spread() * math.sqrt(min(gap, self.max_gap))

    def update(self, position: tuple[float, float], frame: int) -> None:
        """A verified position on ``frame`` (steps over gaps count per frame of the gap)."""
        if self.last is not None and frame > self.last_frame:
            gap = frame - self.last_frame
            dx, dy = position[0] - self.last[0], position[1] - self.last[1]
            k = FORGET
            self.sum_sq = k * self.sum_sq + (dx * dx + dy * dy) / (2 * gap)
            self.sum_dx, self.sum_dy = k * self.sum_dx + dx, k * self.sum_dy + dy
            self.frames = k * self.frames + gap
            self.steps = k * self.steps + 1
            self.count += 1
        self.last, self.last_frame = (float(position[0]), float(position[1])), frame


@dataclass
class ZMap:
    """The detector's *z* map of a crop (see :func:`contrast_map`)."""

    z: np.ndarray  # (h, w) float32, downsampled crop
    x0: float  # frame position (px) of the crop's top-left pixel centre
    y0: float
    scale: float  # frame px per map px

    def at(self, x: float, y: float, radius: float = 0.0) -> float:
        """Largest *z* within ``radius`` (frame px) of ``(x, y)``; -inf outside the map."""
        i, j = (y - self.y0) / self.scale, (x - self.x0) / self.scale
        r = max(1, math.ceil(radius / self.scale))
        i0, j0 = round(i), round(j)
        h, w = self.z.shape
        if not (0 <= i0 < h and 0 <= j0 < w):
            return -math.inf
        return float(self.z[max(0, i0 - r) : i0 + r + 1, max(0, j0 - r) : j0 + r + 1].max())

    def peak(
        self, centre: tuple[float, float], radius: float, exclude
    ) -> tuple[tuple[float, float], float] | None:
        """Highest point (frame px) within ``radius`` of ``centre``, outside the discs ``exclude``
        (``[(x, y, r), ...]``, frame px); ``None`` if there is none."""
        h, w = self.z.shape
        yy, xx = np.mgrid[0:h, 0:w]
        fx, fy = self.x0 + xx * self.scale, self.y0 + yy * self.scale
        ok = (fx - centre[0]) ** 2 + (fy - centre[1]) ** 2 <= radius**2
        for ex, ey, er in exclude:
            ok &= (fx - ex) ** 2 + (fy - ey) ** 2 > er**2
        if not ok.any():
            return None
        masked = np.where(ok, self.z, -np.inf)
        k = int(np.argmax(masked))
        i, j = divmod(k, w)
        return (float(fx[i, j]), float(fy[i, j])), float(masked[i, j])


def _folded(n: int, sigma: float) -> np.ndarray:
    """``(n, n)``: column q is the response of cv2.GaussianBlur (reflected border) to an
    impulse at q, so row p holds the weights the blurred pixel p gives every pixel."""
    eye = np.eye(n, dtype=np.float32)
    return cv2.GaussianBlur(eye, (0, 0), sigmaX=1e-6, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


@functools.lru_cache(maxsize=64)
def noise_gain(shape: tuple[int, int], s_small: float, s_big: float) -> np.ndarray:
    """Standard deviation of the band-pass (``blur(s_big) - blur(s_small)``, reflected
    borders) of unit white noise, pixel by pixel, over its value far from the borders.

    Near a border the reflection makes the filter average the same noise pixels twice, so
    the band-pass of pure noise is up to ~1.4 x stronger there than inside (more in corners): without this
    correction, noise at the edge of the field looks like a particle far more often.
    Exact for white noise; the filters are separable, so the variance map is a sum of
    three outer products of 1-D sums.
    """
    h, w = shape
    parts = []
    for n in (h, w):
        small, big = _folded(n, s_small), _folded(n, s_big)
        parts.append(((small * small).sum(1), (big * big).sum(1), (small * big).sum(1)))
    (ay, by, cy), (ax, bx, cx) = parts
    var = np.outer(ay, ax) + np.outer(by, bx) - 2 * np.outer(cy, cx)
    var = np.maximum(var, 1e-12)
    inner = var[h // 2, w // 2]
    gain = np.sqrt(var / inner).astype(np.float32)
    gain.setflags(write=False)
    return gain


def contrast_map(frames, centre: tuple[float, float], half: float, radius: float, sign: float) -> ZMap | None:
    """The detector's *z* map around ``centre`` (module docstring).

    Parameters
    ----------
    frames
        The frame ``(H, W)`` (float, any scale), or a sequence of the last frames: their mean
        is filtered (a particle that stays within its own size over them adds up, noise
        averages out).
    centre
        ``(x, y)`` px, pixel indices.
    half
        Half the crop side (frame px); capped at ``MAX_CROP_PX / 2``.
    radius
        The particle's radius (frame px).
    sign
        +1 for particles darker than the background, -1 for brighter ones.

    Returns
    -------
    ZMap or None
        ``None`` when the crop lies outside the frame.
    """
    frames = [frames] if isinstance(frames, np.ndarray) else list(frames)
    h, w = frames[-1].shape
    half = min(half, MAX_CROP_PX / 2)
    x0, x1 = max(0, int(centre[0] - half)), min(w, int(centre[0] + half) + 1)
    y0, y1 = max(0, int(centre[1] - half)), min(h, int(centre[1] + half) + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = np.asarray(frames[-1][y0:y1, x0:x1], np.float32)
    if len(frames) > 1:
        crop = sum((np.asarray(f[y0:y1, x0:x1], np.float32) for f in frames[:-1]), crop) / len(frames)
    scale = max(1.0, radius / RADIUS_PX)
    if scale > 1:
        size = (max(4, round((x1 - x0) / scale)), max(4, round((y1 - y0) / scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    r = radius / scale
    s_small, s_big = max(0.8, r / 2), 2.5 * r
    smooth = cv2.GaussianBlur(crop, (0, 0), s_small, borderType=cv2.BORDER_REFLECT)
    back = cv2.GaussianBlur(crop, (0, 0), s_big, borderType=cv2.BORDER_REFLECT)
    band = sign * (back - smooth) / noise_gain(crop.shape, s_small, s_big)
    noise = 1.4826 * float(np.median(np.abs(band - np.median(band))))
    z = band / noise if noise > 0 else np.zeros_like(band)
    sx, sy = (x1 - x0) / crop.shape[1], (y1 - y0) / crop.shape[0]
    return ZMap(z, x0 + 0.5 * (sx - 1), y0 + 0.5 * (sy - 1), (sx + sy) / 2)


@dataclass
class Verdict:
    """One object's check on one frame."""

    supported: bool  # SAM 2's position is confirmed
    found: tuple[float, float] | None  # a detector peak to prompt on (x, y; px), if any
    z: float  # z at SAM 2's position (nan when SAM 2 reports it absent)
    centre: tuple[float, float]  # the prediction (x, y; px): where the window should wait


class Verifier:
    """Per-object state of the check (module docstring).

    Parameters
    ----------
    radius
        The particle's radius (px), from its prompt box.
    prior_step
        Prior step spread as a fraction of the prompt-box side (px per frame per box side).
    gate_sigmas, z_min, fraction, peak_z, peak_fraction, frames
        ``TrackerOptions.verify_sigmas``, ``verify_z``, ``verify_fraction``,
        ``verify_peak_z``, ``verify_peak_fraction``, ``verify_frames``.
    floor, back
        ``(verify_floor_z, verify_floor_fraction)`` and ``(verify_return_z,
        verify_return_fraction)``: the current frame's least *z* and fraction of the typical
        *z*, on every frame and on the first frame after a gap.
    max_gap, rejoin
        ``TrackerOptions.verify_max_gap``, ``verify_rejoin_frames``.
    """

    def __init__(
        self,
        radius: float,
        prior_step: float,
        gate_sigmas: float,
        z_min: float,
        fraction: float,
        peak_z: float,
        peak_fraction: float,
        frames: int,
        floor: tuple[float, float] = (1.5, 0.2),
        back: tuple[float, float] = (1.5, 0.2),
        max_gap: int = 1_000_000,
        rejoin: int = 1,
    ):
        self.radius = float(radius)
        self.floor, self.back = floor, back
        self.gate_sigmas, self.z_min, self.fraction, self.frames = gate_sigmas, z_min, fraction, frames
        self.peak_z, self.peak_fraction = peak_z, peak_fraction
        self.motion = Motion(prior_step * 2 * radius, max_gap)
        self.rejoin = rejoin
        self.candidate: tuple[tuple[float, float], int] | None = None  # after a long gap: (x, y), frame
        self.candidate_run = 0  # consecutive frames it was found on
        self.sign = 1.0
        self.typical = math.nan  # running mean of z (mean of the last frames) at verified positions
        self.misses = 0  # consecutive frames with a peak to prompt on but no supported SAM 2 position
        self.last_peak: tuple[float, float] | None = None

    def start(self, frames, position: tuple[float, float], frame: int) -> None:
        """A prompted (trusted) position on the last of ``frames``: sets the contrast sign,
        the typical z and the motion origin."""
        zmap = contrast_map(frames[-1], position, 4 * self.radius, self.radius, 1.0)
        if zmap is not None:
            self.sign = -1.0 if zmap.at(*position, self.radius / 2) < 0 else 1.0
        self.motion.last = None  # a correction is not a step (the step statistics are kept)
        self._accept(frames[-1:], position, frame, zmap=None)
        self.misses, self.last_peak = 0, None

    def _typical(self) -> float:
        return self.typical if math.isfinite(self.typical) else 0.0

    def sigma(self) -> float:
        """Estimated localisation error of the particle's reported positions (px, per coordinate).

        ``SIGMA_SCALE × (radius / z) ** SIGMA_POWER`` with ``z`` the particle's typical *z*: a
        centroid's error grows with the particle's size over its signal-to-noise ratio, and
        faster than in proportion where noise blobs start to compete with a faint particle
        (:data:`SIGMA_SCALE`, :data:`SIGMA_POWER` say how they were calibrated). NaN before
        the typical *z* is known or when it is not positive.
        """
        z = self.typical
        if not (math.isfinite(z) and z > 0):
            return math.nan
        return SIGMA_SCALE * (self.radius / z) ** SIGMA_POWER

    def threshold(self) -> float:
        """The *z* (on the mean of the last frames) a position needs."""
        return max(self.z_min, self.fraction * self._typical())

    def frame_gate(self) -> float:
        """One frame's gate radius (px): how far the particle may go between two frames."""
        return self.gate_sigmas * self.motion.spread() + self.radius

    def peak_threshold(self) -> float:
        """The *z* a detector peak needs to prompt the object again."""
        return max(self.peak_z, self.peak_fraction * self._typical())

    def check(self, frames, frame: int, position: tuple[float, float] | None, others) -> Verdict:
        """Judge SAM 2's ``position`` (``None``: SAM 2 reports it absent) on ``frame``.

        ``frames``: the last frames, the current one last (``verify_average`` of them);
        ``others``: ``[(x, y, radius), ...]`` (px) of the other tracked particles on this frame.
        """
        centre, spread = self.motion.predict(frame)
        gate = self.gate_sigmas * spread + self.radius
        half = gate + 2 * self.radius
        zmap = contrast_map(frames, centre, half, self.radius, self.sign)
        z_here = math.nan
        supported = False
        if position is not None and zmap is not None:
            z_here = zmap.at(*position, self.radius / 2)
            inside = math.hypot(position[0] - centre[0], position[1] - centre[1]) <= gate
            px, py = position
            on_other = any(math.hypot(px - x, py - y) < max(r, self.radius) for x, y, r in others)
            supported = inside and not on_other and z_here >= self.threshold()
            if supported and len(frames) > 1:  # and on this frame alone
                one = contrast_map(frames[-1], position, 4 * self.radius, self.radius, self.sign)
                z_one = -math.inf if one is None else one.at(*position, self.radius / 2)
                least, fraction = self.back if frame - self.motion.last_frame > 1 else self.floor
                supported = z_one >= max(least, fraction * self._typical())
        if supported and frame - self.motion.last_frame >= self.motion.max_gap and self.rejoin > 1:
            # back after a long gap: reported only once found on `rejoin` consecutive frames
            near = self.candidate is not None and self.candidate[1] == frame - 1
            if near:
                (cx, cy), _ = self.candidate
                near = math.hypot(position[0] - cx, position[1] - cy) <= self.frame_gate()
            self.candidate_run = self.candidate_run + 1 if near else 1
            self.candidate = (position, frame)
            if self.candidate_run < self.rejoin:
                return Verdict(False, None, z_here, position)  # the window follows the candidate
        if supported:
            self._accept(frames, position, frame, zmap)
            self.misses, self.last_peak = 0, None
            self.candidate, self.candidate_run = None, 0
            return Verdict(True, None, z_here, position)
        found = None if zmap is None else self._prompt_peak(zmap, centre, gate, others)
        step = self.frame_gate()
        consistent = found is not None and (
            self.last_peak is None
            or math.hypot(found[0] - self.last_peak[0], found[1] - self.last_peak[1]) <= step
        )
        self.misses = self.misses + 1 if consistent else (1 if found is not None else 0)
        self.last_peak = found
        prompt = found if found is not None and self.misses >= self.frames else None
        if prompt is not None:
            self.misses, self.last_peak = 0, None
        return Verdict(False, prompt, z_here, centre)

    def peak_near(
        self, frames, centre: tuple[float, float], gate: float, others
    ) -> tuple[float, float] | None:
        """The strongest detector peak within ``gate`` px of ``centre`` on ``frames`` (as
        :func:`contrast_map` takes them) that could prompt the object again, away from
        ``others`` (``[(x, y, radius), ...]``, px); ``None`` if there is none."""
        zmap = contrast_map(frames, centre, gate + 2 * self.radius, self.radius, self.sign)
        return None if zmap is None else self._prompt_peak(zmap, centre, gate, others)

    def _prompt_peak(self, zmap: ZMap, centre, gate: float, others) -> tuple[float, float] | None:
        peak = zmap.peak(centre, gate, [(x, y, r + self.radius) for x, y, r in others])
        return peak[0] if peak is not None and peak[1] >= self.peak_threshold() else None

    def _accept(self, frames, position, frame: int, zmap: ZMap | None) -> None:
        if zmap is None:
            zmap = contrast_map(frames, position, 4 * self.radius, self.radius, self.sign)
        if zmap is not None:
            z = zmap.at(*position, self.radius / 2)
            if math.isfinite(z):
                self.typical = z if not math.isfinite(self.typical) else 0.9 * self.typical + 0.1 * z
        self.motion.update(position, frame)
