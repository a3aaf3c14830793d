"""Image formation in a liquid cell and detection, in electrons per pixel.

Expected electrons in pixel (x, y) of frame t::

    lam = dose_px * flicker_t * G(x, y) * T(x, y, t) * ((1 - h) * M(x, y, t) + h)

* ``dose_px = dose_e_A2 * (10 * pixel_size_nm)**2`` incident electrons per pixel;
* ``G`` a linear illumination gradient, ``flicker_t`` the beam current of frame t;
* ``T = exp(-t_liq(x, y, t) / mfp_liquid - membrane / mfp_membrane)`` background
  transmission, with the local liquid thickness varying slowly in space and time;
* ``h = 1 - exp(-thickness / mfp_inelastic)`` the diffuse (inelastic) haze fraction,
  which carries no particle contrast;
* ``M`` the particle modulation (1 outside particles): for projected particle
  thickness ``tp`` (nm), ``exp(-(tp / mfp_particle - min(tp, t_liq) / mfp_liquid))``
  (dark; the particle displaces liquid) or ``2 - that`` (bright), blurred by beam
  broadening in the liquid with sigma ``blur_at_100nm_nm * (thickness / 100)**1.5``.

Detection: shot noise (Poisson, or its Gaussian approximation with matched skewness),
detector PSF (Gaussian, ``mtf_sigma_px``), white read noise and spatially correlated
noise (electrons), then conversion to uint8/uint16 and optional JPEG compression.
Large fields are drawn with OpenCV's random generator (about 3x faster than numpy's),
seeded per frame, so frames stay reproducible.
"""

from __future__ import annotations

import cv2
import numpy as np

from samem.synthetic.params import SynthParams

#: shot noise uses the skew-corrected Gaussian when every pixel expects at least this many
#: electrons; after a detector blur of >= 0.5 px its distribution is indistinguishable from
#: blurred Poisson noise down to ~3 electrons (docs/synthetic.md), without blur we require 10
GAUSSIAN_MIN_COUNTS = {"blurred": 3.0, "sharp": 10.0}


def gaussian_blur(img: np.ndarray, sigma_px: float, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Gaussian blur truncated at 3 sigma (weights beyond are < 1.2 % of the peak)."""
    k = 2 * int(np.ceil(3.0 * sigma_px)) + 1
    return cv2.GaussianBlur(img, (k, k), sigma_px, borderType=border)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_cells: float) -> np.ndarray:
    """Unit-rms smooth random field on a coarse grid (float32)."""
    f = rng.standard_normal(shape).astype(np.float32)
    f = cv2.GaussianBlur(f, (0, 0), max(sigma_cells, 0.5), borderType=cv2.BORDER_REFLECT)
    return (f - f.mean()) / max(float(f.std()), 1e-12)


class Imaging:
    """Per-video optics and detector state (background fields, gains, blur widths).

    Parameters
    ----------
    params : SynthParams
    rng : numpy.random.Generator
        Draws the slowly varying background fields and gradient direction.
    """

    def __init__(self, params: SynthParams, rng: np.random.Generator):
        im, px = params.imaging, params.pixel_size_nm
        self.params = params
        self.size = params.size
        self.dose_px = im.dose_e_A2 * (10.0 * px) ** 2
        self.haze = 1.0 - np.exp(-im.thickness_nm / im.mfp_inelastic_nm)
        self.blur_px = im.blur_at_100nm_nm * (im.thickness_nm / 100.0) ** 1.5 / px
        self.kappa_particle = 1.0 / params.particles.mfp_nm  # 1/nm
        self.kappa_liquid = 1.0 / im.mfp_liquid_nm
        # coarse grid for smooth fields (resolves the variation scale, 8 to 64 cells a side),
        # upsampled bilinearly to the frame
        scale_px = im.variation_scale_nm / px
        n = int(np.clip(np.ceil(4.0 * self.size / scale_px), 8, 64))
        cell = self.size / n
        self.fields = [_smooth_field(rng, (n, n), scale_px / cell / 2.0) for _ in range(2)]
        self.phase0 = rng.uniform(0, 2 * np.pi)
        heading = rng.uniform(0, 2 * np.pi)
        g = np.linspace(-0.5, 0.5, n, dtype=np.float32)
        self.gradient = 1.0 + im.illumination_gradient * (
            np.cos(heading) * g[None, :] + np.sin(heading) * g[:, None]
        )
        # expected background electrons (used to scale 8-bit output); no particles, no flicker
        self.background_mean = self.dose_px * np.exp(
            -im.thickness_nm / im.mfp_liquid_nm - im.membrane_nm / im.mfp_membrane_nm
        )
        # correlated noise: coarse white noise, bicubic upsampling; its rms after upsampling
        self.corr_cells = max(int(round(self.size / im.correlated_length_px)), 2)
        self.corr_norm = self._corr_rms()

    # ----------------------------------------------------------------- background
    def background(self, t: int, flicker: float) -> tuple[np.ndarray, float]:
        """Expected electrons per pixel without particles in frame ``t``, and their minimum.

        Returns
        -------
        (array (size, size) float32, float)
        """
        im = self.params.imaging
        phi = self.phase0 + 2 * np.pi * t * self.params.frame_interval_s / im.background_period_s
        rel = np.float32(np.cos(phi)) * self.fields[0] + np.float32(np.sin(phi)) * self.fields[1]
        t_liq = im.thickness_nm * (1.0 + im.thickness_variation * rel)
        coarse = (
            (self.dose_px * flicker)
            * self.gradient
            * np.exp(-np.maximum(t_liq, 0.0) / im.mfp_liquid_nm - im.membrane_nm / im.mfp_membrane_nm)
        )
        coarse = coarse.astype(np.float32)
        full = cv2.resize(coarse, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return full, float(coarse.min())  # bilinear interpolation never undershoots the nodes

    # ----------------------------------------------------------------- particles
    def modulation(self, thickness_nm: np.ndarray, dark: bool) -> np.ndarray:
        """Particle transmission relative to the liquid, for projected thickness (nm)."""
        t_liq = self.params.imaging.thickness_nm
        expo = thickness_nm * self.kappa_particle - np.minimum(thickness_nm, t_liq) * self.kappa_liquid
        m = np.exp(-expo).astype(np.float32)
        return m if dark else (2.0 - m).astype(np.float32)

    # ----------------------------------------------------------------- detector
    def _corr_rms(self) -> float:
        probe = np.random.default_rng(12345)
        f = probe.standard_normal((self.corr_cells, self.corr_cells)).astype(np.float32)
        return float(self._upsample_corr(f).std())

    def _upsample_corr(self, coarse: np.ndarray) -> np.ndarray:
        return cv2.resize(coarse, (self.size, self.size), interpolation=cv2.INTER_CUBIC)

    def detect(self, lam: np.ndarray, rng: np.random.Generator, lam_min: float | None = None) -> np.ndarray:
        """Noisy detector output for expected electrons ``lam`` (float32, overwritten).

        Parameters
        ----------
        lam : array (H, W) float32
            Expected electrons per pixel.
        rng : numpy.random.Generator
            The frame's generator (also seeds OpenCV's generator for this thread).
        lam_min : float, optional
            A lower bound of ``lam`` (saves a pass over the frame); computed if omitted.

        Returns
        -------
        array (H, W) uint8 or uint16
        """
        im = self.params.imaging
        cv2.setRNGSeed(int(rng.integers(1, 2**31 - 1)))
        lam_min = float(lam.min()) if lam_min is None else lam_min
        shift = 0.0  # constant electrons to add at the end
        floor = GAUSSIAN_MIN_COUNTS["blurred" if im.mtf_sigma_px >= 0.5 else "sharp"]
        if im.shot_noise == "poisson" or (im.shot_noise == "auto" and lam_min < floor):
            e = rng.poisson(lam).astype(np.float32)
        else:
            # Cornish-Fisher: lam + sqrt(lam - 1/18) z + (z^2 - 1)/6 has the Poisson mean and
            # variance exactly and its third central moment to within 0.02 e^3
            z = np.empty_like(lam)
            cv2.randn(z, 0.0, 1.0)
            e = cv2.subtract(lam, 1.0 / 18.0)
            if lam_min < 1.0 / 18.0:  # only with shot_noise: gaussian at very low dose
                cv2.max(e, 0.0, dst=e)
            e = cv2.sqrt(e)
            cv2.scaleAdd(z, 1.0 / 6.0, e, dst=e)
            cv2.multiply(e, z, dst=e)
            cv2.add(e, lam, dst=e)
            shift = -1.0 / 6.0
        if im.mtf_sigma_px > 0:
            e = gaussian_blur(e, im.mtf_sigma_px, cv2.BORDER_REFLECT)
        if im.read_noise_e > 0:
            cv2.randn(lam, shift, im.read_noise_e)  # lam is no longer needed
            cv2.add(e, lam, dst=e)
            shift = 0.0
        if im.correlated_noise_e > 0:
            coarse = rng.standard_normal((self.corr_cells, self.corr_cells)).astype(np.float32)
            cv2.scaleAdd(self._upsample_corr(coarse), im.correlated_noise_e / self.corr_norm, e, dst=e)
        return self._digitise(e, shift)

    @property
    def adu_per_electron(self) -> float:
        """Counts per electron of the output: the detector gain (uint16), or the scale that puts
        the mean background at ``level_8bit`` of the 8-bit range (uint8)."""
        im = self.params.imaging
        return im.gain_adu_per_e if im.dtype == "uint16" else im.level_8bit * 255.0 / self.background_mean

    def _digitise(self, e: np.ndarray, shift: float = 0.0) -> np.ndarray:
        """Electrons (+ ``shift``) to uint8/uint16 counts, rounded and clipped; optional JPEG."""
        im = self.params.imaging
        gain = self.adu_per_electron
        if im.dtype == "uint16":
            e *= np.float32(gain)
            e += np.float32(im.offset_adu + gain * shift)
            np.clip(e, 0, 65535, out=e)
            return np.rint(e, out=e).astype(np.uint16)
        cv2.max(e, -shift, dst=e)  # no negative electrons
        out = cv2.convertScaleAbs(e, alpha=gain, beta=gain * shift)  # rounds and saturates at 255
        if im.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(im.jpeg_quality)])
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        return out
