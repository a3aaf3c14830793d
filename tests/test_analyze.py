"""``samem analyze``: same session as serve, every input format, outputs vs truth, no half-written output."""

from __future__ import annotations

import json

import h5py
import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile
from helpers import OracleTracker, small_video, truth_boxes

from samem.cli.main import main
from samem.errors import SamemError
from samem.io.table import read_table
from samem.stats.summary import compute_statistics
from samem.stream.offline import analyze_video
from samem.stream.settings import load_settings
from samem.synthetic import write_h5

SETTINGS = load_settings()


@pytest.fixture(scope="module")
def long_video():
    return small_video(frames=300, n_particles=3, seed=4, boundary="reflect")  # all 3 stay inside


@pytest.fixture(scope="module")
def video():
    return small_video(frames=12, n_particles=2, seed=2)


def _boxes(video):
    return 0, truth_boxes(video)


def test_hdf5_outputs_match_truth(tmp_path, long_video):
    v = long_video
    src = write_h5(v, tmp_path / "synth.h5")
    out = tmp_path / "out"
    report = analyze_video(src, out, OracleTracker(v), SETTINGS, boxes=_boxes(v), model_name="oracle")
    assert report.frames == 300 and report.particles == 3
    names = {p.name for p in report.files}
    assert {"results.h5", "tracks.csv", "stats.json", "msd.png", "trajectories.png"} <= names
    assert not list(out.glob("*.part"))
    with h5py.File(out / "results.h5", "r") as f:
        np.testing.assert_array_equal(f["labels"][()], v.labels)
        assert "frames" not in f  # not copied unless asked
        assert (
            f.attrs["pixel_size_nm"] == v.pixel_size_nm and f.attrs["frame_interval_s"] == v.frame_interval_s
        )
        rec_tracks = read_table(f["tracks"])
    tracks = pd.read_csv(out / "tracks.csv")
    assert list(tracks.columns[:4]) == ["frame", "particle", "x", "y"]
    pd.testing.assert_frame_equal(
        tracks[["frame", "particle", "x", "y"]],
        rec_tracks[["frame", "particle", "x", "y"]],
        check_dtype=False,
    )
    truth = v.tracks[["frame", "particle", "x", "y", "inside"]]
    inside = tracks[tracks.present].merge(truth, on=["frame", "particle"], suffixes=("", "_true"))
    inside = inside[inside.inside]
    assert len(inside) > 0.5 * len(tracks)
    assert np.hypot(inside.x - inside.x_true, inside.y - inside.y_true).max() < 1.0
    # stats.json is the statistics of tracks.csv
    stats = json.loads((out / "stats.json").read_text())
    table = tracks.copy()
    table.attrs.update(pixel_size_nm=v.pixel_size_nm, frame_interval_s=v.frame_interval_s)
    batch = compute_statistics(table).summary
    for live_p, batch_p in zip(stats["particles"], batch["particles"]):
        assert live_p["D_nm2_s"] == pytest.approx(batch_p["D_nm2_s"], rel=1e-6)
    # D per particle vs the generator's D, for particles inside the frame throughout: within 4 standard
    # errors of the fit (over seeds 4-11 the pipeline's z-scores spanned -2.4 .. +0.4)
    true_D = v.particles.set_index("particle")["D_nm2_s"]
    always_inside = v.tracks.groupby("particle")["inside"].all()
    checked = 0
    for p in stats["particles"]:
        if always_inside[p["particle"]]:
            assert p["fit_ok"]
            assert abs(p["D_nm2_s"] - true_D[p["particle"]]) < 4 * p["D_err_nm2_s"]
            checked += 1
    assert checked == 3


def _write_formats(video, tmp_path):
    frames = video.frames
    folder = tmp_path / "png"
    folder.mkdir()
    for t, f in enumerate(frames):
        iio.imwrite(folder / f"img{t}.png", np.repeat(f[..., None], 3, axis=2))  # RGB, natural order
    tifffile.imwrite(tmp_path / "v.tif", frames)
    iio.imwrite(tmp_path / "v.avi", frames, fps=20, codec="ffv1", macro_block_size=1, pixelformat="gray")
    iio.imwrite(tmp_path / "v.mp4", frames, fps=20, codec="libx264", macro_block_size=16)
    return {
        "hdf5": write_h5(video, tmp_path / "v.h5"),
        "tiff": tmp_path / "v.tif",
        "avi": tmp_path / "v.avi",
        "mp4": tmp_path / "v.mp4",
        "folder": folder,
    }


def test_every_format_gives_the_same_tracks(tmp_path, video):
    sources = _write_formats(video, tmp_path)
    tables = {}
    for name, src in sources.items():
        out = tmp_path / f"out_{name}"
        analyze_video(
            src,
            out,
            OracleTracker(video),
            SETTINGS,
            boxes=_boxes(video),
            plots=False,
            pixel_size_nm=video.pixel_size_nm,
            frame_interval_s=video.frame_interval_s,
        )
        tables[name] = pd.read_csv(out / "tracks.csv")
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, tables["hdf5"], obj=name)


def test_auto_prompt_and_saved_frames(tmp_path, video):
    src = write_h5(video, tmp_path / "v.h5")
    out = tmp_path / "o"
    report = analyze_video(
        src, out, OracleTracker(video), SETTINGS, auto_prompt=True, save_frames=True, plots=False
    )
    assert report.particles >= 1
    with h5py.File(out / "results.h5", "r") as f:
        np.testing.assert_array_equal(f["frames"][()], video.frames)


def test_auto_prompt_on_fewer_frames_than_it_averages(tmp_path):
    """A single image (or a video shorter than ``autoprompt.frames``) is still auto-prompted."""
    assert SETTINGS["autoprompt"]["frames"] > 2
    two = small_video(frames=2, n_particles=2, seed=2)
    src = write_h5(two, tmp_path / "two.h5")
    report = analyze_video(src, tmp_path / "o", OracleTracker(two), SETTINGS, auto_prompt=True, plots=False)
    assert report.particles >= 1
    tracks = pd.read_csv(tmp_path / "o" / "tracks.csv")
    assert set(tracks["frame"]) == {0, 1}  # detected on the mean of both frames, tracked from frame 0


def test_offline_auto_prompt_tracks_from_frame_0(tmp_path, video):
    """Offline the first frames are at hand: the averaged detection prompts frame 0 (live, the
    session waits for them and starts on the last), so no frame goes without a track."""
    assert SETTINGS["autoprompt"]["frames"] > 1
    src = write_h5(video, tmp_path / "v.h5")
    analyze_video(src, tmp_path / "o", OracleTracker(video), SETTINGS, auto_prompt=True, plots=False)
    tracks = pd.read_csv(tmp_path / "o" / "tracks.csv")
    assert (
        tracks["frame"].min() == 0
        and tracks.groupby("particle")["frame"].nunique().eq(len(video.frames)).all()
    )


class Exploding(OracleTracker):
    def step(self, frame, prompts=None):
        if self.steps == 5:
            raise RuntimeError("tracker crashed")
        return super().step(frame, prompts)


def test_failure_leaves_nothing_behind(tmp_path, video):
    src = write_h5(video, tmp_path / "v.h5")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="crashed"):
        analyze_video(src, out, Exploding(video), SETTINGS, boxes=_boxes(video))
    assert not out.exists()  # issue 23: the folder the run created goes too
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="crashed"):
        analyze_video(src, kept / "a" / "b", Exploding(video), SETTINGS, boxes=_boxes(video))
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]  # only what the run made is removed


def test_cli_failed_analyze_of_mixed_images_leaves_no_out_folder(tmp_path, capsys):
    """Issue 23 (Also): a folder of images of different sizes failed at frame 1 and left --out."""
    import cv2

    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "f0.png"), np.full((32, 40), 200, np.uint8))
    cv2.imwrite(str(folder / "f1.png"), np.full((30, 40), 200, np.uint8))
    out = tmp_path / "out"
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"frame": 0, "boxes": {"1": [1, 1, 9, 9]}}')
    with pytest.warns(UserWarning):  # samem_tiny: seeded random weights
        code = main(
            ["analyze", str(folder), "--boxes", str(boxes), "--out", str(out), "--model", "samem_tiny"]
        )
    err = capsys.readouterr().err
    assert code == 2 and "f1.png" in err and "differs from the first image" in err
    assert not out.exists()


def test_user_errors(tmp_path, video):
    src = write_h5(video, tmp_path / "v.h5")
    with pytest.raises(SamemError, match="nothing to track"):
        analyze_video(src, tmp_path / "a", OracleTracker(video), SETTINGS)
    with pytest.raises(SamemError, match="outside"):
        analyze_video(
            src, tmp_path / "b", OracleTracker(video), SETTINGS, boxes=(0, {1: (100, 100, 200, 120)})
        )
    with pytest.raises(SamemError, match="frame 50"):
        analyze_video(src, tmp_path / "c", OracleTracker(video), SETTINGS, boxes=(50, {1: (1, 1, 5, 5)}))
    analyze_video(src, tmp_path / "d", OracleTracker(video), SETTINGS, boxes=_boxes(video), plots=False)
    with pytest.raises(SamemError, match="already holds"):
        analyze_video(src, tmp_path / "d", OracleTracker(video), SETTINGS, boxes=_boxes(video))


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "missing.h5"), "--auto-prompt", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samem: error:") and "no such file" in err and "Traceback" not in err
    assert not out.exists()
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"frame": 0, "boxes": {"one": [1, 2, 3, 4]}}')
    assert main(["analyze", str(tmp_path / "missing.h5"), "--boxes", str(boxes), "--out", str(out)]) == 2
    assert "object id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", "x.h5", "--boxes", str(boxes), "--auto-prompt", "--out", str(out)])


def test_cli_tracker_options_merge_over_the_config_file(tmp_path, video, capsys):
    src = write_h5(video, tmp_path / "v.h5")
    config = tmp_path / "settings.yaml"
    config.write_text("model:\n  tracker: {reappear_score: 0.6, smooth_frames: 3}\n")
    out = tmp_path / "o"
    args = ["analyze", str(src), "--auto-prompt", "--out", str(out), "--model", "samem_tiny", "--no-plots"]
    with pytest.warns(UserWarning):  # a config name: seeded random weights
        assert main(args + ["--config", str(config), "--tracker", "smooth_frames=2"]) == 0
    with h5py.File(out / "results.h5", "r") as f:
        stored = json.loads(f.attrs["config_json"])
    assert stored["model"]["tracker"] == {"reappear_score": 0.6, "smooth_frames": 2}
    assert main(args + ["--overwrite", "--tracker", "smooth_frames=0"]) == 2
    err = capsys.readouterr().err
    assert "smooth_frames 0 must be from 1 to 64" in err and "Traceback" not in err
