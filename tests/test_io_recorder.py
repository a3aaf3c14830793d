"""HDF5 recorder: layout, live reading by another process (SWMR), survival of SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import RECORDER_SHAPE, recorder_frame_data

from samem.errors import SamemError
from samem.io.recorder import TRACK_COLUMNS, Recorder, open_results
from samem.io.table import read_table

H, W = RECORDER_SHAPE
_frame_data = recorder_frame_data


def test_layout_and_stats(tmp_path):
    path = tmp_path / "rec.h5"
    rec = Recorder(
        path,
        (H, W),
        np.uint16,
        pixel_size_nm=0.5,
        frame_interval_s=0.1,
        flush_every=3,
        attrs={"source": "unit", "model": "tiny", "config_json": {"a": 1}},
    )
    for t in range(7):
        labels, raw, tracks = recorder_frame_data(t)
        rec.append(100 + t, 1000.0 + t, labels, tracks, raw)
    assert rec.frames_flushed == 6  # flushed at 3 and 6

    def stats(f):
        f.create_group("stats").create_dataset("D_nm2_s", data=[1.0, 2.0])

    assert rec.close(stats_writer=stats) == path
    with h5py.File(path, "r") as f:
        assert f["frames"].shape == (7, H, W) and f["labels"].dtype == np.uint16
        np.testing.assert_array_equal(f["frame_index"][()], np.arange(100, 107))
        np.testing.assert_array_equal(f["timestamp"][()], 1000.0 + np.arange(7))
        np.testing.assert_array_equal(f["labels"][4], _frame_data(4)[0])
        np.testing.assert_array_equal(f["frames"][6], _frame_data(6)[1])
        tracks = read_table(f["tracks"])
        assert list(tracks.columns) == list(TRACK_COLUMNS)
        assert len(tracks) == 14 and tracks["present"].dtype == bool
        pd.testing.assert_frame_equal(tracks.iloc[8:10].reset_index(drop=True), _frame_data(4)[2])
        assert f.attrs["pixel_size_nm"] == 0.5 and f.attrs["frame_interval_s"] == 0.1
        assert f.attrs["source"] == "unit" and json.loads(f.attrs["config_json"]) == {"a": 1}
        np.testing.assert_array_equal(f["stats/D_nm2_s"][()], [1.0, 2.0])
        assert pd.DataFrame(f["tracks"][()]).shape == (14, 11)  # plain h5py + pandas


def test_without_frames_and_unknown_units(tmp_path):
    path = tmp_path / "labels.h5"
    with Recorder(path, (H, W), np.uint8, None, None, save_frames=False, compression="gzip") as rec:
        rec.append(0, 0.0, _frame_data(0)[0], _frame_data(0)[2].iloc[:0])
    with open_results(path) as f:
        assert "frames" not in f and f["labels"].shape == (1, H, W)
        assert np.isnan(f.attrs["pixel_size_nm"]) and len(f["tracks"]) == 0


def test_user_errors_and_atomic_abort(tmp_path):
    path = tmp_path / "a.h5"
    path.write_bytes(b"old")
    with pytest.raises(SamemError, match="exists"):
        Recorder(path, (H, W), np.uint8, 1.0, 1.0)
    with pytest.raises(SamemError, match="no such folder"):
        Recorder(tmp_path / "nope" / "x.h5", (H, W), np.uint8, 1.0, 1.0)
    with pytest.raises(SamemError, match="compression"):
        Recorder(tmp_path / "b.h5", (H, W), np.uint8, 1.0, 1.0, compression="zstd")
    out = tmp_path / "c.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with Recorder(out, (H, W), np.uint16, 1.0, 1.0, atomic=True) as rec:
            rec.append(0, 0.0, *_frame_data(0)[::2], _frame_data(0)[1])
            assert (tmp_path / "c.h5.part").exists() and not out.exists()
            raise RuntimeError("boom")
    assert not out.exists() and not (tmp_path / "c.h5.part").exists()
    with Recorder(out, (H, W), np.uint16, 1.0, 1.0, atomic=True) as rec:
        rec.append(0, 0.0, *_frame_data(0)[::2], _frame_data(0)[1])
    assert out.exists() and not (tmp_path / "c.h5.part").exists()


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from helpers import RECORDER_SHAPE as SHAPE, recorder_frame_data
    from samem.io.recorder import Recorder
    rec = Recorder({path!r}, SHAPE, np.uint16, 0.5, 0.1, flush_every=5)
    for t in range(100000):
        labels, raw, tracks = recorder_frame_data(t)
        rec.append(t, float(t), labels, tracks, raw)
        if rec.frames_flushed == t + 1:
            print("flushed", t + 1, flush=True)
            if {pause_at} and t + 1 == {pause_at}:
                time.sleep(60)  # the parent reads meanwhile, then kills
    """
)


def _writer(tmp_path, pause_at=0):
    path = tmp_path / "live.h5"
    code = WRITER.format(path=str(path), pause_at=pause_at)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    return path, proc


def _wait_flushed(proc, n, timeout_s=30):
    import select
    import time

    deadline = time.monotonic() + timeout_s
    last = 0
    while last < n:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"writer did not flush {n} frames within {timeout_s} s (last {last})")
        line = proc.stdout.readline()
        assert line, "writer exited early"
        last = int(line.split()[1])
    return last


def _check_prefix(f, n):
    assert f["labels"].shape[0] >= n and f["frame_index"].shape[0] >= n
    for t in range(n):
        labels, raw, _ = _frame_data(t)
        np.testing.assert_array_equal(f["labels"][t], labels)
        np.testing.assert_array_equal(f["frames"][t], raw)
    np.testing.assert_array_equal(f["frame_index"][:n], np.arange(n))
    tracks = pd.DataFrame(f["tracks"][()])
    assert len(tracks) >= 2 * n
    expected = pd.concat([_frame_data(t)[2] for t in range(n)], ignore_index=True)
    pd.testing.assert_frame_equal(tracks.iloc[: 2 * n].reset_index(drop=True), expected, check_dtype=False)


def test_readable_by_another_process_while_written(tmp_path):
    path, proc = _writer(tmp_path, pause_at=20)
    try:
        n = _wait_flushed(proc, 20)
        reader = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import h5py; f = h5py.File({str(path)!r}, 'r', swmr=True); "
                "print(f['labels'].shape[0], len(f['tracks']))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reader.returncode == 0, reader.stderr
        frames, rows = map(int, reader.stdout.split())
        assert frames == n and rows == 2 * n
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_sigkill_keeps_everything_up_to_last_flush(tmp_path):
    path, proc = _writer(tmp_path)
    try:
        n = _wait_flushed(proc, 40)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open_results(path) as f:
        _check_prefix(f, n)


def test_track_rows_without_the_edge_and_sigma_columns_are_recorded(tmp_path):
    """Tables written before the ``edge`` and ``sigma`` columns existed are still accepted."""
    path = tmp_path / "old.h5"
    rec = Recorder(path, (H, W), np.uint16, pixel_size_nm=0.5, frame_interval_s=0.1)
    labels, raw, tracks = _frame_data(0)
    rec.append(0, 0.0, labels, tracks.drop(columns=["edge", "sigma"]), raw)
    rec.close()
    with h5py.File(path, "r") as f:
        got = read_table(f["tracks"])
    assert list(got.columns) == list(TRACK_COLUMNS) and not got["edge"].any() and len(got) == 2
    assert got["sigma"].isna().all()  # unknown, not zero
