"""Projected particle shapes rendered into local patches, in pixel units.

Each shape is described in its body frame with the origin at the area centroid of its
projection, so the position of a particle is the centre of mass of its projected shape
and the centroid of its label mask. Rendering evaluates, on the pixel centres of a patch,

* a signed distance to the outline (px, negative inside): the label mask is ``sd < 0``
  (pixel centre inside the shape) and anti-aliased coverage is ``clip(0.5 - sd, 0, 1)``;
* the projected thickness along the beam (px), used for mass-thickness contrast.

Pixel ``(row i, column j)`` has its centre at ``x = j, y = i``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: number of angles used to tabulate blob outlines
_N_THETA = 720


@dataclass(frozen=True)
class Patch:
    """Rendered local patch: ``frame[rows, cols]`` with distance and thickness maps (px)."""

    rows: slice
    cols: slice
    sd: np.ndarray
    thickness: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.sd < 0


@dataclass(frozen=True)
class Shape:
    """A projected particle shape.

    Parameters
    ----------
    kind : ``sphere``, ``ellipse``, ``rod``, ``prism`` or ``blob``.
    size_px : longest dimension (px).
    aspect : length / width (ellipse, rod).
    height_ratio : plate thickness / edge (prism).
    harmonics : ``((k, amplitude, phase), ...)`` radial modulation of a blob.
    """

    kind: str
    size_px: float
    aspect: float = 1.0
    height_ratio: float = 0.3
    harmonics: tuple[tuple[int, float, float], ...] = ()

    # -------------------------------------------------------------- blob outline tables
    @cached_property
    def _blob_table(self):
        """(theta, radius, d radius / d theta, centroid (u, v)) for a blob scaled to size_px."""
        th = np.linspace(0.0, 2 * np.pi, _N_THETA, endpoint=False)
        r, dr = np.ones_like(th), np.zeros_like(th)
        for k, amp, ph in self.harmonics:
            r += amp * np.cos(k * th + ph)
            dr -= amp * k * np.sin(k * th + ph)
        half = _N_THETA // 2
        extent = np.max(r + np.roll(r, half))  # longest chord through the origin
        scale = self.size_px / extent
        r, dr = r * scale, dr * scale
        area = 0.5 * np.sum(r**2)  # times d(theta), cancels in the ratio
        cu = np.sum(r**3 * np.cos(th)) / 3.0 / area
        cv = np.sum(r**3 * np.sin(th)) / 3.0 / area
        return th, r, dr, (cu, cv)

    @cached_property
    def radius_px(self) -> float:
        """Radius (px) of the circle about the centroid that contains the whole shape."""
        if self.kind == "prism":
            return self.size_px / np.sqrt(3.0)
        if self.kind == "blob":
            th, r, _, (cu, cv) = self._blob_table
            return float(np.max(np.hypot(r * np.cos(th) - cu, r * np.sin(th) - cv)))
        return self.size_px / 2.0

    @property
    def area_px(self) -> float:
        """Projected area (px^2)."""
        a = self.size_px / 2.0
        if self.kind == "sphere":
            return np.pi * a * a
        if self.kind == "ellipse":
            return np.pi * a * a / self.aspect
        if self.kind == "rod":
            w = self.size_px / self.aspect
            return np.pi * (w / 2) ** 2 + (self.size_px - w) * w
        if self.kind == "prism":
            return np.sqrt(3.0) / 4.0 * self.size_px**2
        _, r, _, _ = self._blob_table
        return float(0.5 * np.sum(r**2) * 2 * np.pi / _N_THETA)

    # -------------------------------------------------------------- rendering
    def render(
        self, x: float, y: float, angle_rad: float, height: int, width: int, pad: int = 2
    ) -> Patch | None:
        """Render the shape centred (centroid) at ``(x, y)`` px, rotated by ``angle_rad``.

        The patch covers the shape plus ``pad`` px, clipped to the ``height x width``
        frame; returns None if it lies entirely outside.
        """
        reach = self.radius_px + pad
        r0, r1 = max(int(np.floor(y - reach)), 0), min(int(np.ceil(y + reach)) + 1, height)
        c0, c1 = max(int(np.floor(x - reach)), 0), min(int(np.ceil(x + reach)) + 1, width)
        if r0 >= r1 or c0 >= c1:
            return None
        dy = (np.arange(r0, r1, dtype=np.float32) - np.float32(y))[:, None]
        dx = (np.arange(c0, c1, dtype=np.float32) - np.float32(x))[None, :]
        c, s = np.float32(np.cos(angle_rad)), np.float32(np.sin(angle_rad))
        u = c * dx + s * dy  # body frame: u along the long axis
        v = c * dy - s * dx
        sd, thick = getattr(self, f"_{self.kind}")(u, v)
        return Patch(slice(r0, r1), slice(c0, c1), sd, thick)

    def _sphere(self, u, v):
        rad = self.size_px / 2.0
        r2 = u * u + v * v
        sd = np.sqrt(r2) - rad
        return sd, 2.0 * np.sqrt(np.maximum(rad * rad - r2, 0.0))

    def _ellipse(self, u, v):
        a = self.size_px / 2.0
        b = a / self.aspect
        g = (u / a) ** 2 + (v / b) ** 2 - 1.0
        grad = 2.0 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = np.where(grad > 0, g / grad, -b)
        # prolate ellipsoid of revolution about the long axis: depth semi-axis b
        return sd, 2.0 * b * np.sqrt(np.maximum(-g, 0.0))

    def _rod(self, u, v):
        rad = self.size_px / self.aspect / 2.0
        half_core = self.size_px / 2.0 - rad
        du = np.maximum(np.abs(u) - half_core, 0.0)
        d2 = du * du + v * v
        return np.sqrt(d2) - rad, 2.0 * np.sqrt(np.maximum(rad * rad - d2, 0.0))

    def _prism(self, u, v):
        inradius = self.size_px / (2.0 * np.sqrt(3.0))
        sd = None
        for k in range(3):  # outward edge normals at -90, 30, 150 degrees
            phi = -np.pi / 2 + k * 2 * np.pi / 3
            d = u * np.float32(np.cos(phi)) + v * np.float32(np.sin(phi)) - inradius
            sd = d if sd is None else np.maximum(sd, d)
        coverage = np.clip(0.5 - sd, 0.0, 1.0)
        return sd, self.height_ratio * self.size_px * coverage

    def _blob(self, u, v):
        th_tab, r_tab, dr_tab, (cu, cv) = self._blob_table
        uu, vv = u + cu, v + cv  # back to the generating origin
        r = np.sqrt(uu * uu + vv * vv)
        th = np.mod(np.arctan2(vv, uu), 2 * np.pi)
        idx = np.minimum((th / (2 * np.pi) * _N_THETA).astype(np.int32), _N_THETA - 1)
        frac = th / (2 * np.pi) * _N_THETA - idx
        nxt = (idx + 1) % _N_THETA
        rb = r_tab[idx] * (1 - frac) + r_tab[nxt] * frac
        drb = dr_tab[idx] * (1 - frac) + dr_tab[nxt] * frac
        sd = (r - rb) / np.sqrt(1.0 + (drb / rb) ** 2)
        rho2 = (r / rb) ** 2
        # dome profile: as deep at the centre as a sphere of the blob's mean radius
        depth = 2.0 * float(np.mean(r_tab))
        return sd.astype(np.float32), (depth * np.sqrt(np.maximum(1.0 - rho2, 0.0))).astype(np.float32)


def blob_harmonics(roughness: float, rng: np.random.Generator, orders=(2, 3, 4, 5)) -> tuple:
    """Random radial harmonics ``(k, amplitude, phase)`` with total rms ``roughness``."""
    amps = rng.uniform(0.5, 1.0, size=len(orders)) / np.asarray(orders, float)
    amps *= roughness * np.sqrt(2.0) / np.sqrt(np.sum(amps**2))
    phases = rng.uniform(0, 2 * np.pi, size=len(orders))
    return tuple((int(k), float(a), float(p)) for k, a, p in zip(orders, amps, phases))
