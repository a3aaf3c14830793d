"""Damaged and interrupted inputs: one-line user errors (issue 23 (6)) and recordings left by
``kill -9`` (issue 23 (7)), for every reader of recordings."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from samem.cli.main import main
from samem.errors import SamemError
from samem.io.readers import open_video


def _stack(tmp_path, compression=None, frames=6):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 65535, (frames, 32, 40), dtype=np.uint16)
    path = tmp_path / ("c.tif" if compression else "u.tif")
    tifffile.imwrite(path, data, compression=compression)
    return path, data


def _truncate(path, keep):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("samem: error:"), err
    assert "Traceback" not in err and all(f in err for f in fragments), err


@pytest.mark.parametrize("keep", [0.99, 0.6])
def test_truncated_uncompressed_tiff_is_a_user_error(tmp_path, keep):
    """0.6: 'mmap length is greater than file size'; 0.99: the last frame silently half missing."""
    path, _ = _stack(tmp_path, frames=12)
    _truncate(path, keep)
    with pytest.raises(SamemError, match="damaged or truncated TIFF.*invalid"):
        open_video(path)


def test_stack_shorter_than_its_header_says_is_a_user_error(tmp_path):
    """The memory-map guard: data that end before the stack does are refused, not mapped."""
    import os

    from samem.io.readers import TiffReader

    path, _ = _stack(tmp_path)

    class Shrunk(type(path)):  # the file as seen after losing its last 3000 bytes
        def stat(self, **kw):
            real = list(os.stat(self))
            real[6] -= 3000  # more than the page headers written after the pixel data
            return os.stat_result(real)

    with pytest.raises(SamemError, match=r"truncated TIFF: its 6x32x40 uint16 stack needs \d+ bytes"):
        TiffReader(Shrunk(path))


def test_truncated_compressed_tiff_fails_on_the_frame_it_lost(tmp_path):
    path, data = _stack(tmp_path, compression="zlib")
    _truncate(path, 0.5)
    try:
        reader = open_video(path)
    except SamemError as exc:  # noticed at open: the page headers are read then
        assert "damaged or truncated TIFF" in str(exc)
        return
    with reader:
        with pytest.raises(SamemError, match="cannot read frame|damaged"):
            for i in range(len(reader)):
                np.testing.assert_array_equal(reader[i], data[i])


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_analyze_and_replay_of_a_truncated_tiff_exit_2_with_one_line(tmp_path, capsys, compression):
    """Issue 23 (6): 'mmap length is greater than file size' was a traceback and exit 1."""
    path, _ = _stack(tmp_path, compression, frames=12)
    _truncate(path, 0.4)
    out = tmp_path / "out"
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"frame": 0, "boxes": {"1": [1, 1, 9, 9]}}')
    code = main(["analyze", str(path), "--boxes", str(boxes), "--out", str(out), "--model", "samem_tiny"])
    assert code == 2
    _one_line_error(capsys, str(path))
    assert not out.exists()
    import zmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    try:
        code = main(["replay", str(path), "--to", f"tcp://127.0.0.1:{port}", "--fps", "0"])
    finally:
        pull.close(0)
        ctx.term()
    assert code == 2
    _one_line_error(capsys, str(path))
