"""Physical units of a trajectory table: pixel size and frame interval.

Trajectory tables are in pixels and frames. Their physical scale travels as metadata
(``df.attrs["pixel_size_nm"]`` in nm/px and ``df.attrs["frame_interval_s"]`` in s) or is
given explicitly, either the samem way (``pixel_size_nm``, ``frame_interval_s``) or the
trackpy way (``mpp`` in µm/px, ``fps`` in 1/s). This module turns any of those into one
:class:`Scale` and rejects missing, zero, negative or non-finite values with a
:class:`~samem.errors.SamemError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from samem.errors import SamemError

#: keys of the unit metadata in ``DataFrame.attrs`` and HDF5 attributes
PIXEL_SIZE_KEY = "pixel_size_nm"
FRAME_INTERVAL_KEY = "frame_interval_s"


def positive(name: str, value) -> float:
    """Return ``value`` as a float, raising SamemError unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SamemError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise SamemError(f"{name} must be a positive finite number, got {value!r}")
    return v


@dataclass(frozen=True)
class Scale:
    """Conversion of pixels and frames to physical units.

    Attributes
    ----------
    length_per_px : float
        Length of one pixel in ``length_unit`` (nm/px or µm/px).
    length_unit : str
        ``"nm"`` or ``"um"``; squared displacements come out in this unit squared.
    frame_interval_s : float
        Time between consecutive frames, s.
    fps : float or None
        Frames per second when the caller gave ``fps`` (trackpy style); lag times are then
        computed as ``lag / fps`` exactly as trackpy does, otherwise ``lag * frame_interval_s``.
    """

    length_per_px: float
    length_unit: str
    frame_interval_s: float
    fps: float | None = None

    def lag_time_s(self, lags):
        """Lag times in s for integer lags in frames (array-like)."""
        if self.fps is not None:
            return pd.Index(lags).to_numpy(dtype="float64") / self.fps
        return pd.Index(lags).to_numpy(dtype="float64") * self.frame_interval_s

    @property
    def pixel_size_nm(self) -> float:
        """Pixel size in nm/px, whatever unit the caller used."""
        return self.length_per_px * (1000.0 if self.length_unit == "um" else 1.0)


def resolve_scale(
    attrs: dict | None = None,
    mpp=None,
    fps=None,
    pixel_size_nm=None,
    frame_interval_s=None,
) -> Scale:
    """Build a :class:`Scale` from explicit arguments, falling back to table metadata.

    Parameters
    ----------
    attrs : dict, optional
        Metadata of the table (``df.attrs``); used for whichever of the length and time
        scales is not given explicitly.
    mpp : float, optional
        Microns per pixel (trackpy convention); squared lengths then come out in µm².
    fps : float, optional
        Frames per second (trackpy convention).
    pixel_size_nm : float, optional
        Pixel size, nm/px; squared lengths then come out in nm².
    frame_interval_s : float, optional
        Frame interval, s.

    Raises
    ------
    SamemError
        If both or neither of a length scale (mpp / pixel_size_nm) or a time scale
        (fps / frame_interval_s) are available, or a value is not positive and finite.
    """
    attrs = attrs or {}
    if mpp is not None and pixel_size_nm is not None:
        raise SamemError("give either mpp (µm/px) or pixel_size_nm (nm/px), not both")
    if fps is not None and frame_interval_s is not None:
        raise SamemError("give either fps (1/s) or frame_interval_s (s), not both")
    if mpp is not None:
        length, unit = positive("mpp (µm/px)", mpp), "um"
    else:
        if pixel_size_nm is None:
            pixel_size_nm = attrs.get(PIXEL_SIZE_KEY)
        if pixel_size_nm is None:
            raise SamemError(
                "pixel size missing: pass pixel_size_nm (nm/px) or mpp (µm/px), "
                "or set df.attrs['pixel_size_nm']"
            )
        length, unit = positive("pixel_size_nm", pixel_size_nm), "nm"
    if fps is not None:
        rate = positive("fps", fps)
        return Scale(length, unit, 1.0 / rate, rate)
    if frame_interval_s is None:
        frame_interval_s = attrs.get(FRAME_INTERVAL_KEY)
    if frame_interval_s is None:
        raise SamemError(
            "frame interval missing: pass frame_interval_s (s) or fps (1/s), "
            "or set df.attrs['frame_interval_s']"
        )
    return Scale(length, unit, positive("frame_interval_s", frame_interval_s))
