"""``samem movie``: annotated movies of a results file (MP4, GIF, PNG folder) and its errors."""

from __future__ import annotations

import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest

from samem.errors import SamemError
from samem.io.recorder import TRACK_COLUMNS, Recorder
from samem.view import render
from samem.view.movie import render_movie

CLI = [sys.executable, "-m", "samem.cli.main"]
H, W, T = 48, 64, 6


def _scene(t):
    """A bright-background frame with two dark discs, their labels and track rows."""
    yy, xx = np.mgrid[:H, :W]
    frame = np.full((H, W), 200, np.uint8)
    labels = np.zeros((H, W), np.uint16)
    rows = []
    for pid, (cx, cy) in ((1, (14 + t, 16)), (2, (46, 32 - t))):
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= 16
        frame[disc] = 40
        labels[disc] = pid
        rows.append((t, pid, float(cx), float(cy), float(disc.sum()), 0.0, 0.0, 0.9, True, False, 0.5))
    return frame, labels, pd.DataFrame(rows, columns=list(TRACK_COLUMNS))


def _results(path, save_frames=True):
    with Recorder(path, (H, W), np.uint8, 2.0, 0.1, save_frames=save_frames) as rec:
        for t in range(T):
            frame, labels, rows = _scene(t)
            rec.append(t, 0.1 * t, labels, rows, frame)
    return path


def test_png_folder_has_overlay_where_particles_are(tmp_path):
    out = render_movie(_results(tmp_path / "r.h5"), tmp_path / "frames")
    files = sorted(out.glob("*.png"))
    assert len(files) == T
    img = imageio.imread(files[-1])  # RGB
    assert img.shape == (H, W, 3)
    for pid, (cx, cy) in ((1, (14 + T - 1, 16)), (2, (46, 32 - T + 1))):
        c = np.array(render.color(pid))
        window = img[cy - 7 : cy + 8, cx - 7 : cx + 8].astype(int)
        near = np.abs(window - c).sum(axis=2) < 60  # the particle's contour colour around it
        assert near.sum() >= 6, pid
    grey = img[:, :, 0] == img[:, :, 1]
    assert grey[24, 30]  # between particles, no overlay


def test_mp4_and_gif_frame_counts(tmp_path):
    res = _results(tmp_path / "r.h5")
    mp4 = render_movie(res, tmp_path / "tracked.mp4", fps=5)
    reader = imageio.get_reader(str(mp4), format="FFMPEG")
    assert reader.count_frames() == T
    assert reader.get_data(0).shape[:2] == (H, W)
    gif = render_movie(res, tmp_path / "tracked.gif")
    assert len(imageio.mimread(gif)) == T
    with pytest.raises(SamemError, match="exists"):
        render_movie(res, tmp_path / "tracked.gif")


def test_frames_from_the_video_when_results_hold_none(tmp_path):
    res = _results(tmp_path / "r.h5", save_frames=False)
    video = tmp_path / "video"
    video.mkdir()
    for t in range(T):
        imageio.imwrite(video / f"f{t:03d}.png", _scene(t)[0])
    out = render_movie(res, tmp_path / "m", video=video)
    assert len(list(out.glob("*.png"))) == T


def test_no_frames_and_no_video_is_one_line_error(tmp_path):
    res = _results(tmp_path / "r.h5", save_frames=False)
    out = subprocess.run(
        CLI + ["movie", str(res), "--out", str(tmp_path / "m.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--video" in lines[0] and "no frames" in lines[0], out.stderr
    assert not (tmp_path / "m.mp4").exists()
    with pytest.raises(SamemError, match=r"\.mp4 or \.gif"):
        render_movie(res, tmp_path / "m.avi", video=tmp_path)


def test_analyze_movie_writes_tracked_mp4_beside_the_results(tmp_path):
    video = tmp_path / "video"
    video.mkdir()
    for t in range(T):
        imageio.imwrite(video / f"f{t:03d}.png", _scene(t)[0])
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"frame": 0, "boxes": {"1": [8, 10, 21, 23]}}')
    out = subprocess.run(
        CLI
        + [
            "analyze",
            str(video),
            "--boxes",
            str(boxes),
            "--out",
            str(tmp_path / "o"),
            "--model",
            "samem_tiny",
        ]
        + ["--no-plots", "--movie"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert imageio.get_reader(str(tmp_path / "o" / "tracked.mp4"), format="FFMPEG").count_frames() == T
