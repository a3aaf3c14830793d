"""EM formats through RosettaSciIO: frames as written, calibration converted to nm and s, clear errors."""

from __future__ import annotations

import logging
import sys
import tracemalloc

import h5py
import numpy as np
import pytest
import tifffile
from helpers import emfiles

from samem.errors import SamemError
from samem.io.formats.em import RsciioReader, calibration_from_axes, convert_scale
from samem.io.formats.tiff import EMTiffReader
from samem.io.readers import open_video, supported_suffixes


@pytest.fixture
def frames():
    rng = np.random.default_rng(11)
    return rng.integers(0, 60000, size=(7, 24, 40), dtype=np.uint16)


def _all_frames(reader):
    return np.stack(list(reader))


def _released(path):
    """True when no HDF5 handle of this process keeps ``path`` open (read-only handles block "a")."""
    try:
        with h5py.File(path, "a"):
            return True
    except OSError:
        return False


def test_suffixes_are_registered():
    for suffix in (".dm3", ".dm4", ".mrc", ".mrcs", ".emd", ".tif"):
        assert suffix in supported_suffixes()


@pytest.mark.parametrize(
    ("value", "units", "target", "expected"),
    [
        (0.0015, "µm", "nm", 1.5),
        (0.0015, "μm", "nm", 1.5),  # Greek mu
        (0.0015, "um", "nm", 1.5),
        (15.0, "Å", "nm", 1.5),
        (15.0, "A", "nm", 1.5),  # Angstrom, not ampere
        (2.5e-9, "m", "nm", 2.5),
        (40.0, "ms", "s", 0.04),
        (2.0, "sec", "s", 2.0),
        (1.0, "1/nm", "nm", None),  # diffraction: reciprocal space
        (3.0, "mrad", "nm", None),
        (1.0, "", "nm", None),
        (1.0, None, "s", None),
        (1.0, "px", "nm", None),
        (1.0, "nm", "s", None),
        (0.0, "nm", "nm", None),
        (1.0, "bogus unit ((", "nm", None),
    ],
)
def test_convert_scale(value, units, target, expected):
    got = convert_scale(value, units, target)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9)


def test_calibration_from_axes_uses_index_in_array():
    axes = [
        {"index_in_array": 2, "scale": 0.5, "units": "nm"},
        {"index_in_array": 0, "scale": 20.0, "units": "ms"},
        {"index_in_array": 1, "scale": 0.5, "units": "nm"},
    ]
    cal = calibration_from_axes(axes, 3)
    assert cal["pixel_size_nm"] == pytest.approx(0.5)
    assert cal["frame_interval_s"] == pytest.approx(0.02)
    # an image has no time axis even if the first axis has a time unit
    assert calibration_from_axes(axes[1:], 2)["frame_interval_s"] is None


@pytest.mark.parametrize("version", [3, 4])
def test_dm_frames_and_calibration(tmp_path, frames, version):
    path = emfiles.write_dm(tmp_path / f"movie.dm{version}", frames, version, (0.0015, "µm"), (40.0, "ms"))
    with open_video(path) as r:
        assert isinstance(r, RsciioReader)
        assert r.shape == frames.shape and r.dtype == np.uint16
        assert r.metadata["format"] == f"Gatan DM{version}"
        # DM stores calibrations as float32
        assert r.metadata["pixel_size_nm"] == pytest.approx(1.5, rel=1e-6)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.04, rel=1e-6)
        np.testing.assert_array_equal(r[3], frames[3])
        np.testing.assert_array_equal(r[-1], frames[-1])
        np.testing.assert_array_equal(_all_frames(r), frames)


def test_dm_single_float_image_angstrom(tmp_path):
    img = np.linspace(-1, 1, 30 * 20, dtype=np.float32).reshape(30, 20)
    path = emfiles.write_dm(tmp_path / "image.dm3", img, 3, (15.0, "A"), None)
    with open_video(path) as r:
        assert r.shape == (1, 30, 20) and r.dtype == np.float32
        np.testing.assert_array_equal(r[0], img)
        assert r.metadata["pixel_size_nm"] == pytest.approx(1.5, rel=1e-6)
        assert r.metadata["frame_interval_s"] is None


def test_uncalibrated_file_says_so_and_cli_values_override(tmp_path, frames, caplog):
    path = emfiles.write_dm(tmp_path / "raw.dm4", frames, 4, None, None)
    with caplog.at_level(logging.WARNING, logger="samem.io.formats.em"):
        with open_video(path) as r:
            assert r.metadata["pixel_size_nm"] is None and r.metadata["frame_interval_s"] is None
    assert "raw.dm4" in caplog.text and "pixels" in caplog.text and "frames" in caplog.text
    with open_video(path, pixel_size_nm=0.7, frame_interval_s=0.01) as r:
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.7)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.01)
    calibrated = emfiles.write_dm(tmp_path / "cal.dm4", frames, 4, (2.0, "nm"), (0.1, "s"))
    with open_video(calibrated, pixel_size_nm=0.7) as r:  # the command line wins over the file
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.7)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.1)


def test_mrc_angstrom_to_nm(tmp_path, frames):
    path = emfiles.write_mrc(tmp_path / "stack.mrc", frames, pixel_size_A=12.5)
    with open_video(path) as r:
        assert r.metadata["format"] == "MRC"
        assert r.metadata["pixel_size_nm"] == pytest.approx(1.25, rel=1e-6)
        assert r.metadata["frame_interval_s"] is None  # MRC has no frame time
        np.testing.assert_array_equal(_all_frames(r), frames)
    with open_video(path, frame_interval_s=0.05) as r:
        assert r.metadata["frame_interval_s"] == pytest.approx(0.05)
    f32 = frames.astype(np.float32) / 7
    path = emfiles.write_mrc(tmp_path / "float.mrcs", f32, pixel_size_A=None)
    with open_video(path) as r:
        assert r.dtype == np.float32 and r.metadata["pixel_size_nm"] is None
        np.testing.assert_array_equal(r[2], f32[2])


def test_velox_emd_metres_and_seconds_picks_the_movie(tmp_path, frames):
    path = emfiles.write_velox_emd(tmp_path / "velox.emd", frames, 2.5e-10, 0.04, extra_images=1)
    with open_video(path) as r:
        assert r.metadata["signals_in_file"] == 2  # a single image and the movie
        assert r.shape == frames.shape
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.25, rel=1e-9)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.04, rel=1e-9)
        np.testing.assert_array_equal(_all_frames(r), frames)
        assert not _released(path)
    assert _released(path)  # close() releases the HDF5 file RosettaSciIO opened


def test_velox_emd_without_frame_time_uses_exposure(tmp_path, frames):
    path = emfiles.write_velox_emd(tmp_path / "camera.emd", frames, 1e-9, None)
    with open_video(path) as r:
        assert r.metadata["frame_interval_s"] == pytest.approx(0.001)  # the 1 ms camera exposure
        assert r.metadata["pixel_size_nm"] == pytest.approx(1.0)


def test_berkeley_emd_angstrom_and_ms(tmp_path, frames):
    path = emfiles.write_berkeley_emd(tmp_path / "ncem.emd", frames, (3.0, "Å"), (25.0, "ms"))
    with open_video(path) as r:
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.3)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.025)
        np.testing.assert_array_equal(_all_frames(r), frames)


def test_fei_tiff_calibration_through_rsciio(tmp_path, frames):
    path = emfiles.write_fei_tiff(tmp_path / "fei.tif", frames, pixel_size_m=2e-9)
    with open_video(path) as r:
        assert r.metadata["pixel_size_nm"] == pytest.approx(2.0)
        assert "m/px" in r.metadata["pixel_size_from"]
        np.testing.assert_array_equal(_all_frames(r), frames)


def test_imagej_tiff_calibration_is_kept(tmp_path, frames):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        frames,
        imagej=True,
        resolution=(1 / 0.8, 1 / 0.8),
        metadata={"unit": "nm", "finterval": 0.05, "axes": "TYX"},
    )
    with open_video(path) as r:
        assert r.metadata["pixel_size_nm"] == pytest.approx(0.8, rel=1e-6)
        assert r.metadata["frame_interval_s"] == pytest.approx(0.05)


def test_memory_does_not_grow_with_video_length(tmp_path):
    """Iterating a 30 MiB stack holds one 1 MiB block, not the stack."""
    rng = np.random.default_rng(0)
    frame_mib = 256 * 256 * 2 / 2**20
    emfiles.write_dm(tmp_path / "warm.dm4", rng.integers(0, 9, (2, 8, 8), dtype=np.uint16))
    with RsciioReader(tmp_path / "warm.dm4", "digitalmicrograph", "DM4", block_mib=1) as r:
        list(r)  # imports and unit registry, outside the measurement
    peaks = {}
    for n in (24, 240):
        stack = rng.integers(0, 60000, (n, 256, 256), dtype=np.uint16)
        path = emfiles.write_dm(tmp_path / f"long{n}.dm4", stack)
        tracemalloc.start()
        try:
            with RsciioReader(path, "digitalmicrograph", "DM4", block_mib=1) as r:
                assert np.diff(r._starts).max() * frame_mib <= 1.0
                checksum = sum(int(f[5, 5]) for f in r)
            peaks[n] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        assert checksum > 0
    assert peaks[240] < 4.0, peaks  # the file is 30 MiB
    assert peaks[240] < 1.5 * peaks[24] + 0.5, peaks


def test_random_access_reads_the_right_block(tmp_path, frames):
    path = emfiles.write_mrc(tmp_path / "s.mrc", frames, 1.0)
    with RsciioReader(path, "mrc", "MRC", block_mib=24 * 40 * 2 * 3 / 2**20) as r:  # 3 frames a block
        assert list(np.diff(r._starts)) == [3, 3, 1]
        for i in (6, 0, 4, 3, 2, 5, 1):
            np.testing.assert_array_equal(r[i], frames[i])
        out = r[1]
        out[:] = 0  # callers may modify what they get
        np.testing.assert_array_equal(r[1], frames[1])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("suffix", [".dm4", ".dm3", ".mrc", ".emd"])
def test_garbage_file_is_one_clear_error(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not a microscope file" * 3)
    with pytest.raises(SamemError) as err:
        open_video(path)
    msg = str(err.value)
    assert str(path) in msg and "not a readable" in msg and "(" in msg
    assert "\n" not in msg


def test_truncated_dm_file(tmp_path, frames):
    path = emfiles.write_dm(tmp_path / "cut.dm4", frames)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SamemError, match="cut.dm4: not a readable Gatan DM4 file"):
        open_video(path)


def test_truncated_mrc_names_the_sizes(tmp_path, frames):
    path = emfiles.write_mrc(tmp_path / "cut.mrc", frames)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SamemError, match=r"cut.mrc: not a readable MRC file \(the header announces 7 frames"):
        open_video(path)
    path.write_bytes(b"\0" * 100)
    with pytest.raises(SamemError, match="less than the 1024-byte header"):
        open_video(path)


def test_hdf5_that_is_not_emd(tmp_path):
    path = tmp_path / "plain.emd"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((3, 4, 4))
    with pytest.raises(SamemError, match="plain.emd: not a readable EMD file"):
        open_video(path)
    assert _released(path)


def test_file_without_images(tmp_path):
    path = tmp_path / "spectrum.emd"
    from rsciio.emd import file_writer

    axes = [{"name": "E", "size": 50, "scale": 0.01, "offset": 0.0, "units": "keV", "navigate": False}]
    file_writer(
        str(path),
        {
            "data": np.arange(50.0),
            "axes": axes,
            "metadata": {"General": {"title": "s"}, "Signal": {}},
            "original_metadata": {},
        },
    )
    with pytest.raises(SamemError, match=r"spectrum.emd: no grayscale image or image stack .*\(50,\)"):
        open_video(path)


def test_missing_rosettasciio_is_explained(tmp_path, frames, monkeypatch):
    path = emfiles.write_mrc(tmp_path / "a.mrc", frames)
    monkeypatch.setitem(sys.modules, "rsciio.mrc", None)
    with pytest.raises(SamemError, match=r"needs RosettaSciIO \(pip install 'samem\[formats\]'\)"):
        open_video(path)


def test_tiff_is_read_with_vendor_calibration_by_the_explicit_registry():
    from samem.io import readers

    assert readers.BUILTIN[".tif"] is readers.BUILTIN[".tiff"] is EMTiffReader
    assert readers._REGISTRY[".tif"] is EMTiffReader
