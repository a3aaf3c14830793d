"""Frame normalisation shared by tracking and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samem.errors import SamemError
from samem.track.options import parse_options
from samem.track.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    denoise,
    intensity_levels,
    normalize_frame,
    resize_square,
    to_gray,
    to_model_input,
)


@pytest.fixture
def frame8():
    rng = np.random.default_rng(0)
    return rng.integers(20, 230, (48, 64)).astype(np.uint8)


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f.astype(np.uint16) * 257,  # 16-bit detector counts
        lambda f: f.astype(np.float32) / 255.0,
        lambda f: f.astype(np.float64) * 3.7 - 100.0,  # any offset and gain
        lambda f: np.repeat(f[..., None], 3, axis=2),  # gray stored as RGB
        lambda f: np.stack([f, f, f, np.full_like(f, 255)], axis=2),  # RGBA: alpha ignored
        lambda f: f[..., None],
        lambda f: f.astype(np.int32),
    ],
)
def test_dtype_scale_and_channels_do_not_change_the_normalised_frame(frame8, convert):
    ref, ref_bg = normalize_frame(frame8)
    out, bg = normalize_frame(convert(frame8))
    assert out.dtype == np.float32 and out.shape == frame8.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert bg == pytest.approx(ref_bg, abs=1e-5)


def test_percentiles_map_to_0_and_1_and_ignore_hot_pixels(frame8):
    out, _ = normalize_frame(frame8, 0.5, 99.5)
    lo, hi = np.percentile(frame8, [0.5, 99.5])
    assert out.min() == 0 and out.max() == pytest.approx(1, abs=1e-6)
    inside = (frame8 > lo) & (frame8 < hi)
    np.testing.assert_allclose(out[inside], (frame8[inside] - lo) / (hi - lo), rtol=1e-5)
    hot = frame8.astype(np.uint16)
    hot.flat[[5, 900, 2000]] = 65535  # 3 hot pixels of 3072 = 0.1 % < 0.5 %
    np.testing.assert_allclose(normalize_frame(hot)[0][hot < 1000], out[hot < 1000], atol=2e-2)


def test_large_frames_use_a_subsample_that_matches_full_percentiles():
    rng = np.random.default_rng(1)
    big = rng.normal(1000, 50, (1024, 1024)).astype(np.float32)
    levels = intensity_levels(big, 0.5, 99.5, max_samples=1 << 16)
    lo, hi = np.percentile(big, [0.5, 99.5])
    # 65536 samples: the standard error of a 0.5 % quantile of a normal is ~0.02 sigma
    assert abs(levels.low - lo) < 0.1 * 50 and abs(levels.high - hi) < 0.1 * 50


def test_flat_frame_gives_zeros():
    out, bg = normalize_frame(np.full((8, 8), 7, np.uint8))
    assert not out.any() and bg == 0.0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 2)), r"shape \(4, 4, 2\)"),
        (np.zeros((2, 4, 4, 3)), "shape"),
        (np.zeros((0, 5)), "empty"),
        (np.zeros((4, 4), complex), "not a number type"),
        (np.array([["a", "b"]]), "not a number type"),
        (np.array([[1.0, np.nan], [0.0, 2.0]]), "NaN or infinite"),
    ],
)
def test_bad_frames_are_user_errors(bad, message):
    with pytest.raises(SamemError, match=message):
        to_gray(bad)


def test_model_input_is_imagenet_standardised_gray():
    img = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    x = to_model_input([img, img[::-1]])
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    back = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(back[0], torch.from_numpy(img).expand(3, -1, -1), rtol=0, atol=1e-6)


def test_resize_square_shrinks_by_area_and_keeps_the_mean():
    img = np.random.default_rng(2).random((100, 60)).astype(np.float32)
    small = resize_square(img, 32)
    assert small.shape == (32, 32)
    assert abs(small.mean() - img.mean()) < 0.01
    assert resize_square(small, 32) is small


def test_denoise_lowers_white_noise_by_the_gaussian_factor_and_keeps_levels():
    rng = np.random.default_rng(3)
    image = (0.5 + 0.1 * rng.standard_normal((128, 128))).astype(np.float32)
    assert denoise(image, 0.0) is image
    for sigma in (1.0, 2.0):
        out = denoise(image, sigma)
        assert out.shape == image.shape and out.dtype == np.float32
        expected = 0.1 / (2 * sigma * np.sqrt(np.pi))  # std of white noise after the filter
        assert float(out[16:-16, 16:-16].std()) == pytest.approx(expected, rel=0.15)
        assert float(out.mean()) == pytest.approx(float(image.mean()), abs=2e-3)
    flat = np.full((40, 40), 0.3, np.float32)  # mirrored borders: no dark or bright rim
    assert np.allclose(denoise(flat, 3.0), 0.3)


@pytest.mark.parametrize("value", [-0.1, 0.6])
def test_denoise_option_is_checked(value):
    with pytest.raises(SamemError, match=f"denoise {value} must be from 0 to 0.5"):
        parse_options([f"denoise={value}"])
    assert parse_options(["denoise=0.04"]) == {"denoise": 0.04}
