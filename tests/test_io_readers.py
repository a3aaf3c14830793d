"""Video readers: every format returns the frames that were written, lazily, with metadata."""

from __future__ import annotations

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from samem.errors import SamemError
from samem.io.base import VideoReader, rgb_to_luma
from samem.io.readers import open_video, register_reader, supported_suffixes


@pytest.fixture
def frames():
    rng = np.random.default_rng(7)
    return rng.integers(0, 4000, size=(6, 24, 40), dtype=np.uint16)


def _smooth_video(n=8, h=32, w=48):
    """Smooth moving blobs: lossy codecs reproduce them closely."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(n):
        img = 120 + 80 * np.exp(-((xx - 10 - 3 * t) ** 2 + (yy - 16) ** 2) / 40.0)
        out.append(img.astype(np.uint8))
    return np.stack(out)


def test_hdf5_frames_and_metadata(tmp_path, frames):
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("frames", data=frames, chunks=(1, 24, 40))
        ds.attrs["pixel_size_nm"] = 0.8
        ds.attrs["frame_interval_s"] = 0.05
    with open_video(path) as r:
        assert len(r) == 6 and r.shape == (6, 24, 40) and r.dtype == np.uint16
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.8)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.05)
        np.testing.assert_array_equal(r[4], frames[4])
        np.testing.assert_array_equal(r[-1], frames[-1])
        np.testing.assert_array_equal(np.stack(list(r)), frames)
        with pytest.raises(IndexError):
            r[6]


def test_hdf5_root_attrs_and_override(tmp_path, frames):
    path = tmp_path / "results.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=frames)
        f.attrs["pixel_size_nm"] = 1.5
        f.attrs["frame_interval_s"] = 0.1
    with open_video(path, frame_interval_s=0.02) as r:
        assert r.metadata["pixel_size_nm"] == pytest.approx(1.5)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.02)


def test_hdf5_without_frames_is_a_user_error(tmp_path):
    path = tmp_path / "labels_only.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(SamemError, match="no /frames"):
        open_video(path)


def test_tiff_uncompressed_is_memory_mapped(tmp_path, frames):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path,
        frames,
        imagej=True,
        resolution=(1 / 0.002, 1 / 0.002),
        metadata={"unit": "um", "finterval": 0.25, "axes": "TYX"},
    )
    with open_video(path) as r:
        assert r._mm is not None
        assert r.shape == (6, 24, 40)
        np.testing.assert_array_equal(r[2], frames[2])
        np.testing.assert_array_equal(np.stack(list(r)), frames)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.25)
        assert r.metadata["pixel_size_nm"] == pytest.approx(2.0)


def test_tiff_compressed_pages_and_rgb(tmp_path, frames):
    path = tmp_path / "zip.tiff"
    tifffile.imwrite(path, frames, compression="zlib")
    with open_video(path) as r:
        assert r._mm is None
        np.testing.assert_array_equal(r[5], frames[5])
        assert r.metadata["pixel_size_nm"] is None
    rgb = np.zeros((3, 10, 12, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 50, 200
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    with open_video(path) as r:
        assert r.shape == (3, 10, 12)
        expected = round(0.299 * 100 + 0.587 * 50 + 0.114 * 200)
        assert np.all(r[1] == expected)


def test_avi_lossless_and_random_access(tmp_path):
    video = _smooth_video()
    path = tmp_path / "v.avi"
    iio.imwrite(path, video, fps=20, codec="ffv1", macro_block_size=1, pixelformat="gray")
    with open_video(path) as r:
        assert r.shape == video.shape and r.dtype == np.uint8
        assert r.metadata["frame_interval_s"] == pytest.approx(0.05)
        np.testing.assert_array_equal(np.stack(list(r)), video)
        np.testing.assert_array_equal(r[5], video[5])  # seek forward
        np.testing.assert_array_equal(r[2], video[2])  # seek back


def test_mp4_lossy_close_to_source(tmp_path):
    video = _smooth_video()
    path = tmp_path / "v.mp4"
    iio.imwrite(path, video, fps=10, codec="libx264", macro_block_size=16)
    with open_video(path, pixel_size_nm=0.5) as r:
        assert r.shape == video.shape
        seq = np.stack(list(r)).astype(int)
        # H.264 at default quality on smooth content: mean error of a few grey levels at most
        assert np.abs(seq - video).mean() < 3
        np.testing.assert_array_equal(r[6], seq[6])
        assert r.metadata["pixel_size_nm"] == 0.5


def test_image_folder_natural_order_and_rgb(tmp_path):
    video = _smooth_video(n=11)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(video):
        rgb = np.repeat(img[..., None], 3, axis=2)
        iio.imwrite(folder / f"frame{i}.png", rgb)  # frame10 must sort after frame9
    (folder / "notes.txt").write_text("ignored")
    with open_video(folder) as r:
        assert r.shape == (11, 32, 48)
        np.testing.assert_array_equal(r[10], video[10])
        np.testing.assert_array_equal(r[2], video[2])


def test_image_folder_jpeg_tiff_and_mismatch(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    img = _smooth_video(n=1)[0]
    iio.imwrite(folder / "a_000.jpg", img, quality=95)
    tifffile.imwrite(folder / "a_001.tif", img)
    iio.imwrite(folder / "a_002.png", img[:20])
    with open_video(folder) as r:
        assert len(r) == 3
        assert np.abs(r[0].astype(int) - img).mean() < 2
        np.testing.assert_array_equal(r[1], img)
        with pytest.raises(SamemError, match="differs from the first image"):
            r[2]


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("missing.h5", None, "no such file"),
        ("video.xyz", b"abc", "unsupported file type"),
        ("bad.h5", b"not hdf5 at all", "not a readable HDF5"),
        ("bad.tif", b"II*\x00garbage", "not a readable TIFF"),
        ("bad.mp4", b"\x00" * 64, "cannot decode|no decodable"),
    ],
)
def test_user_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SamemError, match=match):
        open_video(path)


def test_empty_folder_and_bad_override(tmp_path):
    with pytest.raises(SamemError, match="no JPG"):
        open_video(tmp_path)
    with pytest.raises(SamemError, match="pixel_size_nm must be a positive"):
        open_video(tmp_path, pixel_size_nm=-1)


def test_registry_extends_by_suffix(tmp_path):
    class Constant(VideoReader):
        def __init__(self, path):
            self.path, self.shape, self.dtype = path, (2, 3, 4), np.dtype(np.uint8)
            self.metadata = {"format": "const", "pixel_size_nm": 1.0, "frame_interval_s": None}

        def _read(self, i):
            return np.full((3, 4), i, np.uint8)

    path = tmp_path / "x.const"
    path.write_bytes(b"")
    register_reader(".CONST", Constant)
    assert ".const" in supported_suffixes()
    with open_video(path) as r:
        assert [int(f[0, 0]) for f in r] == [0, 1]


def test_rgb_to_luma_weights_and_dtype():
    img = np.zeros((2, 2, 3), np.uint16)
    img[..., 0] = 1000
    assert rgb_to_luma(img).dtype == np.uint16
    assert rgb_to_luma(img)[0, 0] == 299
    assert rgb_to_luma(img, order="bgr")[0, 0] == 114
    with pytest.raises(SamemError):
        rgb_to_luma(np.zeros((2, 2, 5)))
