"""samem batch orchestration on a 2-worker LocalCluster, with a stand-in for the analyze pipeline.

The stand-in writes what ``samem analyze`` writes (results.h5 per docs/architecture.md,
tracks.csv, stats.json) for Brownian tracks of known D, so the summary statistics are checked
against ground truth and the orchestration (skipping, failures, atomic outputs) without the
cost of SAM 2. tests/test_batch_analyze.py runs the real pipeline.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from samem.batch import MARKER, is_finished, load_batch_config, plan_jobs, run_batch
from samem.batch.inputs import expand_inputs
from samem.batch.results import particle_table, read_results, statistics
from samem.cli.main import main
from samem.errors import SamemError
from samem.io.readers import open_video
from samem.io.table import read_table, write_table

PIXEL_NM, DT_S, D_PX2_FRAME = 2.0, 0.1, 0.8  # true D = 0.8 * 4 / 0.1 = 32 nm²/s
N_PARTICLES, N_FRAMES = 12, 120
SHORT = 30  # frames of the videos of the orchestration tests
CALLS: list[str] = []
_LOCK = threading.Lock()


def fake_analyze(video, out_dir, boxes=None, auto_prompt=False, **options):
    """Stand-in for analyze: Brownian tracks of D_PX2_FRAME px²/frame, seeded by the video."""
    with _LOCK:
        CALLS.append(Path(video).name)
    with open_video(video, options.get("pixel_size_nm"), options.get("frame_interval_s")) as r:
        meta, n_frames = dict(r.metadata), len(r)
    with h5py.File(video, "r") as f:
        seed = int(f.attrs["seed"])
        failure = f.attrs.get("fail", "")
    if failure == "user":
        raise SamemError(f"{video}: boxes outside the frame")
    if failure == "bug":
        raise RuntimeError("tracker exploded")
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, math.sqrt(2 * D_PX2_FRAME), size=(N_PARTICLES, n_frames, 2))
    steps[:, 0] = rng.uniform(20, 40, size=(N_PARTICLES, 2))
    pos = np.cumsum(steps, axis=1)
    frame, particle = np.meshgrid(np.arange(n_frames), np.arange(1, N_PARTICLES + 1))
    tracks = pd.DataFrame(
        {
            "frame": frame.ravel(),
            "particle": particle.ravel(),
            "x": pos[:, :, 0].ravel(),
            "y": pos[:, :, 1].ravel(),
            "present": np.ones(frame.size, bool),
        }
    )
    out_dir = Path(out_dir)
    with h5py.File(out_dir / "results.h5", "w") as f:
        f.attrs["pixel_size_nm"] = meta["pixel_size_nm"] if meta["pixel_size_nm"] else np.nan
        f.attrs["frame_interval_s"] = meta["frame_interval_s"] if meta["frame_interval_s"] else np.nan
        f.create_dataset("labels", shape=(n_frames, 8, 8), dtype=np.uint16)
        write_table(f, "tracks", tracks)
    tracks.to_csv(out_dir / "tracks.csv", index=False)
    (out_dir / "stats.json").write_text(json.dumps({"prompt": "auto" if auto_prompt else str(boxes)}))


def _video(path: Path, seed: int, calibrated: bool = True, fail: str = "", n_frames: int = N_FRAMES) -> Path:
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("frames", data=np.zeros((n_frames, 8, 8), np.uint8))
        if calibrated:
            ds.attrs["pixel_size_nm"] = PIXEL_NM
            ds.attrs["frame_interval_s"] = DT_S
        f.attrs["seed"] = seed
        f.attrs["fail"] = fail
    return path


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
    )
    c = Client(cluster, timeout=30)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def config():
    # plots are checked in test_batch_runs_resumes_and_reports
    return load_batch_config(None, {"summary.plot_formats": []})


def test_batch_runs_resumes_and_reports(tmp_path, client, config):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        _video(data / f"run{i}.h5", seed=i, n_frames=SHORT)
    (data / "run1.boxes.json").write_text('{"frame": 0, "boxes": {"1": [1, 1, 5, 5]}}')
    out = tmp_path / "out"
    CALLS.clear()
    with_plots = config.replace(summary=config.summary.replace(plot_formats=("png",)))
    result = run_batch([data], out, auto_prompt=True, config=with_plots, analyze=fake_analyze, client=client)
    assert sorted(CALLS) == ["run0.h5", "run1.h5", "run2.h5"]
    assert [r["status"] for r in result.rows] == ["done"] * 3
    for i in range(3):
        d = out / f"run{i}"
        assert {p.name for p in d.iterdir()} == {"results.h5", "tracks.csv", "stats.json", MARKER}
    assert json.loads((out / "run1" / "stats.json").read_text())["prompt"].endswith("run1.boxes.json")
    assert json.loads((out / "run0" / "stats.json").read_text())["prompt"] == "auto"
    assert not list(out.glob(".*partial*"))
    table = pd.read_csv(out / "summary.csv")
    assert list(table["name"]) == ["run0", "run1", "run2"]
    assert (table["particles"] == N_PARTICLES).all() and (table["frames"] == SHORT).all()
    assert (table["D_unit"] == "nm^2/s").all()
    assert (table["processing_fps"] > 0).all()
    for name in ("summary.json", "particles.csv", "ensemble_msd.png", "D_distribution.png", "per_video.png"):
        assert (out / name).is_file()
    # second run: everything is finished, nothing is analysed again
    CALLS.clear()
    again = run_batch([data], out, auto_prompt=True, config=config, analyze=fake_analyze, client=client)
    assert CALLS == [] and [r["status"] for r in again.rows] == ["skipped (finished)"] * 3
    assert [r["D_mean"] for r in again.rows] == [r["D_mean"] for r in result.rows]
    # a changed input is analysed again, the others stay skipped
    _video(data / "run2.h5", seed=7, n_frames=SHORT)
    CALLS.clear()
    third = run_batch([data], out, auto_prompt=True, config=config, analyze=fake_analyze, client=client)
    assert CALLS == ["run2.h5"] and third.rows[2]["status"] == "done"
    # --force analyses everything again
    CALLS.clear()
    run_batch([data], out, auto_prompt=True, force=True, config=config, analyze=fake_analyze, client=client)
    assert sorted(CALLS) == ["run0.h5", "run1.h5", "run2.h5"]


def test_summary_statistics_recover_true_D(tmp_path, client, config):
    """Mean D and α over particles and videos agree with the simulated Brownian motion."""
    data = tmp_path / "d"
    data.mkdir()
    videos = [_video(data / f"v{i}.h5", seed=100 + i) for i in range(3)]
    result = run_batch(
        videos, tmp_path / "o", auto_prompt=True, config=config, analyze=fake_analyze, client=client
    )
    D_true = D_PX2_FRAME * PIXEL_NM**2 / DT_S
    for row in result.rows:
        # 4 standard errors of a mean over 12 independent particles: a 4-sigma test
        assert abs(row["D_mean"] - D_true) < 4 * row["D_se"], row
        assert abs(row["alpha_mean"] - 1.0) < 4 * row["alpha_se"], row
        assert row["D_se"] < 0.25 * D_true  # the test has power: SE is small compared with D
    pooled = result.report["particles_pooled"]
    assert len(pooled) == 1 and pooled[0]["particles"] == 3 * N_PARTICLES
    assert abs(pooled[0]["D_mean"] - D_true) < 4 * pooled[0]["D_se"]
    ens = result.report["ensemble_msd"]
    assert len(ens) == 1 and ens[0]["videos"] == 3
    # pooled ensemble MSD at lag 1 frame: 4 D dt, within 4 standard errors
    lag1 = ens[0]["curve"]
    assert lag1["lag_s"][0] == pytest.approx(DT_S)
    assert abs(lag1["msd"][0] - 4 * D_true * DT_S) < 4 * lag1["sem"][0]
    fit = ens[0]["fit"]  # GLS fit of the pooled ensemble MSD, with its uncertainties
    assert fit["fit_ok"]
    assert abs(fit["D_nm2_s"] - D_true) < 4 * fit["D_err_nm2_s"]
    assert abs(fit["alpha"] - 1.0) < 4 * fit["alpha_err"]
    row = result.rows[0]
    assert abs(row["D_ensemble"] - D_true) < 4 * row["D_ensemble_err"]


def test_uncalibrated_video_is_summarised_in_pixels_and_frames(tmp_path, client, config):
    data = tmp_path / "d"
    data.mkdir()
    _video(data / "cal.h5", seed=1)
    _video(data / "raw.h5", seed=2, calibrated=False)
    result = run_batch(
        [data], tmp_path / "o", auto_prompt=True, config=config, analyze=fake_analyze, client=client
    )
    rows = {r["name"]: r for r in result.rows}
    assert rows["raw"]["D_unit"] == "px^2/frame" and rows["raw"]["pixel_size_nm"] is None
    assert abs(rows["raw"]["D_mean"] - D_PX2_FRAME) < 4 * rows["raw"]["D_se"]
    assert rows["cal"]["D_unit"] == "nm^2/s"
    units = sorted(g["D_unit"] for g in result.report["particles_pooled"])
    assert units == ["nm^2/s", "px^2/frame"]  # never pooled together
    # the command-line calibration applies to every video
    result = run_batch(
        [data / "raw.h5"],
        tmp_path / "o2",
        auto_prompt=True,
        config=config,
        analyze=fake_analyze,
        client=client,
        options={"pixel_size_nm": PIXEL_NM, "frame_interval_s": DT_S},
    )
    assert result.rows[0]["D_unit"] == "nm^2/s"


def test_failing_videos_are_reported_and_the_others_go_on(tmp_path, client, config):
    data = tmp_path / "d"
    data.mkdir()
    _video(data / "a.h5", seed=1, n_frames=SHORT)
    _video(data / "b.h5", seed=2, fail="user", n_frames=SHORT)
    _video(data / "c.h5", seed=3, fail="bug", n_frames=SHORT)
    (data / "d.mp4").write_bytes(b"not a video")
    _video(data / "e.h5", seed=4, n_frames=SHORT)
    out = tmp_path / "o"
    result = run_batch([data], out, config=config, analyze=fake_analyze, client=client, auto_prompt=False)
    rows = {r["name"]: r for r in result.rows}
    # no boxes file and no --auto-prompt: a clear per-video error
    assert rows["a"]["status"] == "failed" and "no prompts" in rows["a"]["error"]
    result = run_batch([data], out, auto_prompt=True, config=config, analyze=fake_analyze, client=client)
    rows = {r["name"]: r for r in result.rows}
    assert rows["a"]["status"] == rows["e"]["status"] == "done"
    assert rows["b"]["status"] == "failed" and rows["b"]["error"].endswith("boxes outside the frame")
    assert rows["c"]["error"] == "RuntimeError: tracker exploded"
    assert rows["d"]["status"] == "failed" and "d.mp4" in rows["d"]["error"]
    assert {r["name"] for r in result.failed} == {"b", "c", "d"}
    for name in "bcd":
        assert not (out / name).exists()  # nothing half-written
    assert not list(out.glob(".*partial*"))
    table = pd.read_csv(out / "summary.csv")
    assert list(table["status"]) == ["done", "failed", "failed", "failed", "done"]


def test_marker_is_what_makes_a_video_finished(tmp_path, client, config):
    data = tmp_path / "d"
    data.mkdir()
    video = _video(data / "a.h5", seed=1, n_frames=SHORT)
    out = tmp_path / "o"
    (job,) = plan_jobs([video], out, auto_prompt=True)
    assert not is_finished(job)
    run_batch([video], out, auto_prompt=True, config=config, analyze=fake_analyze, client=client)
    assert is_finished(job)
    (out / "a" / MARKER).unlink()  # e.g. a crash between the analysis and the marker
    with pytest.raises(SamemError, match="did not write"):
        run_batch([video], out, auto_prompt=True, config=config, analyze=fake_analyze, client=client)


def test_cli_batch_on_a_local_cluster(tmp_path, capsys, monkeypatch):
    """The command end to end: LocalCluster of 2 thread workers, exit status 1 on a failed video."""
    import samem.batch as batch
    import samem.batch.run as batch_run

    data = tmp_path / "d"
    data.mkdir()
    _video(data / "ok.h5", seed=1, n_frames=SHORT)
    _video(data / "bad.h5", seed=2, fail="user", n_frames=SHORT)
    cfg = tmp_path / "batch.yaml"
    cfg.write_text("cluster:\n  processes: false\nsummary:\n  plot_formats: [png]\n")
    monkeypatch.setattr(batch_run, "analyze_file", fake_analyze)
    real = batch.run_batch

    def run_with_fake(*args, **kwargs):
        kwargs["analyze"] = fake_analyze
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "run_batch", run_with_fake)
    code = main(
        [
            "batch",
            str(data),
            "--out",
            str(tmp_path / "o"),
            "--auto-prompt",
            "--workers",
            "2",
            "--config",
            str(cfg),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "bad failed" in captured.err and "1 of 2 videos failed" in captured.err
    assert "ok" in captured.out and "nm^2/s" in captured.out


def test_cli_user_errors_exit_2(tmp_path, capsys):
    code = main(["batch", str(tmp_path / "missing.dm4"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.dm4: no such file or folder" in err and "Traceback" not in err
    _video(tmp_path / "a.h5", seed=1)
    code = main(["batch", str(tmp_path / "a.h5"), "--out", str(tmp_path / "o"), "--workers", "0"])
    assert code == 2 and "--workers must be at least 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- inputs


def test_inputs_folders_patterns_and_names(tmp_path):
    import cv2

    d = tmp_path / "d"
    d.mkdir()
    for name in ("b10.h5", "b2.h5", "notes.txt", ".hidden.h5", "b2.boxes.json"):
        (d / name).write_bytes(b"")
    frames = tmp_path / "frames_run"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), np.zeros((4, 4), np.uint8))
    videos = expand_inputs([d, frames, str(d / "b*.h5")])
    assert [p.name for p in videos] == ["b2.h5", "b10.h5", "frames_run"]  # natural order, no duplicates
    jobs = plan_jobs([frames, d], tmp_path / "out", auto_prompt=False)
    assert [j.name for j in jobs] == ["b2", "b10", "frames_run"]
    by = {j.name: j for j in jobs}
    assert by["b2"].boxes == d / "b2.boxes.json" and by["b10"].boxes is None
    assert by["b10"].out_dir == (tmp_path / "out" / "b10").resolve()
    (d / "b10.h5.boxes.json").write_text("{}")
    assert {j.name: j for j in plan_jobs([d], tmp_path / "out")}["b10"].boxes == d / "b10.h5.boxes.json"


def test_input_errors(tmp_path):
    with pytest.raises(SamemError, match="no such file or folder"):
        plan_jobs([tmp_path / "nope.h5"], tmp_path / "o")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(SamemError, match="unsupported file type '.txt'"):
        plan_jobs([tmp_path / "x.txt"], tmp_path / "o")
    with pytest.raises(SamemError, match="matches no video"):
        plan_jobs([str(tmp_path / "*.dm4")], tmp_path / "o")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "run.h5").write_bytes(b"")
    with pytest.raises(SamemError, match="same name would share an output folder"):
        plan_jobs([tmp_path / "a", tmp_path / "b"], tmp_path / "o")
    with pytest.raises(SamemError, match="inside the output folder"):
        plan_jobs([tmp_path / "a"], tmp_path)


def test_short_tracks_are_not_fitted(tmp_path):
    video = _video(tmp_path / "v.h5", seed=3)
    out = tmp_path / "o"
    out.mkdir()
    fake_analyze(video, out)
    res = read_results(out)
    short = res.tracks[res.tracks["particle"] == 1].head(3)
    res.tracks = pd.concat([res.tracks[res.tracks["particle"] != 1], short], ignore_index=True)
    fits = particle_table(statistics(res, {"min_track_frames": 5}))
    assert len(fits) == N_PARTICLES
    assert list(fits.loc[fits["particle"] == 1, "fit_ok"]) == [False]
    assert fits.loc[fits["particle"] != 1, "fit_ok"].all()


def test_batch_statistics_honour_edge_and_sigma_options(tmp_path):
    """The summaries across videos read ``edge`` and ``sigma`` from /tracks, so
    ``exclude_edge`` and ``max_sigma_nm`` act as in the video's own statistics, and every
    particle states its localisation error in the video's length unit."""
    video = _video(tmp_path / "v.h5", seed=4)
    out = tmp_path / "o"
    out.mkdir()
    fake_analyze(video, out)
    with h5py.File(out / "results.h5", "a") as f:
        tracks = read_table(f["tracks"])
        px = float(f.attrs["pixel_size_nm"])
        tracks["sigma"] = np.where(tracks["particle"] == 1, 5.0, 0.5)  # px
        tracks["edge"] = (tracks["particle"] == 2) & (tracks["frame"] % 2 == 0)
        del f["tracks"]
        write_table(f, "tracks", tracks)
    res = read_results(out)
    assert {"edge", "sigma"} <= set(res.tracks.columns)
    fits = particle_table(statistics(res)).set_index("particle")
    assert fits.loc[1, "sigma"] == pytest.approx(5.0 * px) and fits.loc[3, "sigma"] == pytest.approx(0.5 * px)
    cut = particle_table(statistics(res, {"max_sigma_nm": 2.0 * px})).set_index("particle")
    assert 1 not in cut.index and len(cut) == N_PARTICLES - 1
    n_all = fits.loc[2, "n_present"]
    edgeless = particle_table(statistics(res, {"exclude_edge": True})).set_index("particle")
    assert edgeless.loc[2, "n_present"] == n_all - tracks.loc[tracks["particle"] == 2, "edge"].sum()


def test_existing_cluster_by_address(tmp_path, client, config):
    """--scheduler: the tasks go to the cluster behind that address (here the fixture's)."""
    data = tmp_path / "d"
    data.mkdir()
    _video(data / "a.h5", seed=1, n_frames=SHORT)
    scheduler = client.cluster.scheduler
    before = scheduler.transition_counter
    result = run_batch(
        [data],
        tmp_path / "o",
        auto_prompt=True,
        config=config,
        analyze=fake_analyze,
        scheduler=scheduler.address,
    )
    assert [r["status"] for r in result.rows] == ["done"]
    assert scheduler.transition_counter > before  # the task ran on that cluster


def test_unreachable_scheduler_is_a_user_error(tmp_path, config):
    _video(tmp_path / "a.h5", seed=1)
    config = config.replace(cluster=config.cluster.replace(timeout_s=2))
    with pytest.raises(SamemError, match="cannot reach the dask scheduler at tcp://127.0.0.1:9"):
        run_batch(
            [tmp_path / "a.h5"],
            tmp_path / "o",
            auto_prompt=True,
            config=config,
            analyze=fake_analyze,
            scheduler="tcp://127.0.0.1:9",
        )


RELEASE = threading.Event()


def slow_analyze(video, out_dir, boxes=None, auto_prompt=False, **options):
    """fake_analyze, except that "slow*" videos wait (at most 10 s) for RELEASE first."""
    if Path(video).name.startswith("slow"):
        (Path(out_dir) / "started").write_text("")
        RELEASE.wait(10)
    fake_analyze(video, out_dir, boxes, auto_prompt, **options)


def test_interrupted_batch_leaves_no_scratch_and_resumes(tmp_path, client, config, monkeypatch):
    import dask.distributed

    data = tmp_path / "d"
    data.mkdir()
    _video(data / "fast.h5", seed=1, n_frames=SHORT)
    _video(data / "slow.h5", seed=2, n_frames=SHORT)
    out = tmp_path / "o"
    real_as_completed = dask.distributed.as_completed

    def interrupted(futures, *args, **kwargs):  # Ctrl-C once the first video is done
        for future in real_as_completed(futures, *args, **kwargs):
            yield future
            assert list(out.glob(".slow.partial-*/started"))  # the slow video is being analysed
            raise KeyboardInterrupt

    RELEASE.clear()
    monkeypatch.setattr(dask.distributed, "as_completed", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch([data], out, auto_prompt=True, config=config, analyze=slow_analyze, client=client)
        assert (out / "fast" / MARKER).is_file() and not (out / "slow").exists()
        assert not list(out.glob(".*partial*"))  # the interrupted video's scratch folder is removed
    finally:
        RELEASE.set()
    monkeypatch.undo()
    CALLS.clear()
    result = run_batch([data], out, auto_prompt=True, config=config, analyze=slow_analyze, client=client)
    assert "fast.h5" not in CALLS  # (the cancelled first attempt of slow.h5 may still log a call)
    assert [r["status"] for r in result.rows] == ["skipped (finished)", "done"]
    assert (out / "slow" / MARKER).is_file()
