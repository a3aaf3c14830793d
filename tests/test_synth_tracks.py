"""`samem synth --tracks`: videos whose particles move exactly as given trajectories.

Every check reads the generator's own truth output back and compares it with the given
positions after scaling (required: < 0.05 px).
"""

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from samem.cli.main import main
from samem.errors import SamemError
from samem.io.table import write_table
from samem.synthetic import SynthParams, generate, read_truth, write_h5
from samem.synthetic.tracks import read_tracks

TOL_PX = 0.05
#: the generator's pixel size (nm/px) and frame interval (s) in these tests (preset values)
PX, DT = 0.5, 0.05


def walks(n_tracks, n_frames, lo, hi, step, seed=0, first_frame=0):
    """Random-walk tracks (trackpy columns, px) whose positions stay within [lo, hi]."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(1, n_tracks + 1):
        xy = np.cumsum(rng.normal(0, step, (n_frames, 2)), axis=0)
        xy = lo + (xy - xy.min(axis=0)) / max(np.ptp(xy), 1e-9) * (hi - lo)  # squeeze into [lo, hi]
        frames = np.arange(first_frame, first_frame + n_frames)
        rows.append(pd.DataFrame({"frame": frames, "particle": pid, "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(rows, ignore_index=True)


def params(path, **over):
    base = dict(
        frames=6,
        size=128,
        n_particles=2,
        size_nm=(5.0, 8.0),
        stage_drift_nm_s=(0.0, 0.0),
        seed=3,
        tracks_file=str(path),
    )
    base.update(over)
    return SynthParams.from_preset("thin", **base).validate()


def truth_xy(truth, particle):
    t = truth.tracks[truth.tracks["particle"] == particle].sort_values("frame")
    return t[["x", "y"]].to_numpy()


def source_xy(df, pid):
    return df[df["particle"] == pid].sort_values("frame")[["x", "y"]].to_numpy()


@pytest.mark.parametrize(
    "src_px, src_dt",
    [(PX, DT), (1.0, DT / 2), (0.25, DT * 2)],
    ids=["same units", "scale 2, every 2nd source frame", "scale 0.5, halfway between frames"],
)
def test_csv_positions_reproduced_after_scaling(tmp_path, src_px, src_dt):
    n = 6
    need = int(np.ceil((n - 1) * DT / src_dt)) + 1  # source frames the video spans
    scale = src_px / PX
    df = walks(3, need, 20 / scale, 100 / scale, 1.0, seed=1, first_frame=7)
    df["mass"] = 1.0  # extra trackpy columns are ignored
    csv = tmp_path / "tracks.csv"
    df.sample(frac=1.0, random_state=0).to_csv(csv, index=False)  # row order does not matter
    p = params(
        csv,
        frames=n,
        tracks_place="keep",
        tracks_pixel_size_nm=src_px,
        tracks_frame_interval_s=src_dt,
        allow_overlap=True,
    )
    truth = read_truth(write_h5(p, tmp_path / "v.h5", workers=1))
    assert list(truth.particles["source_track"]) == [1, 2]
    assert list(truth.particles["motion"]) == ["track", "track"]
    assert truth.particles["D_nm2_s"].isna().all()
    for pid in (1, 2):
        src = df[df["particle"] == pid]
        want_frames = 7 + np.arange(n) * DT / src_dt
        expect = np.stack([np.interp(want_frames, src["frame"], src[c]) for c in ("x", "y")], 1) * scale
        got = truth_xy(truth, pid)
        assert got.shape == (n, 2)
        assert np.abs(got - expect).max() < TOL_PX
        if src_dt * 2 < DT or src_dt == DT:  # rendered frames on source frames: the positions themselves
            on_grid = source_xy(df, pid)[:: int(round(DT / src_dt))][:n] * scale
            assert np.abs(got - on_grid).max() < 1e-9
    assert truth.params["motion"]["tracks_place"] == "keep"


def test_monet_mat_via_cli_random_placement_and_defaults(tmp_path, capsys):
    # MoNet layout: tr = [x, y, k], every trajectory 12 consecutive frames
    df = walks(4, 12, 300, 340, 2.0, seed=2)
    tr = df[["x", "y", "particle"]].to_numpy(float)
    mat = tmp_path / "AuNRs.mat"
    savemat(mat, {"tr": tr})
    out = tmp_path / "out"
    out.mkdir()
    argv = ["synth", str(out / "v.h5"), "--tracks", str(mat), "--size", "128", "--particles", "3"]
    argv += ["--size-nm", "5", "8", "--no-progress", "--workers", "1", "--tracks-pixel-size-nm", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "source ids [1, 2, 3]" in text and "1 nm/px" in text
    truth = read_truth(out / "v.h5")
    assert truth.params["frames"] == 12  # default: as long as the tracks
    assert np.allclose(truth.stage_px, 0)  # no stage drift unless asked for
    assert truth.params["motion"]["tracks_frame_interval_s"] == DT  # no unit in a .mat: the video's
    for particle, pid in zip(truth.particles["particle"], truth.particles["source_track"]):
        got, src = truth_xy(truth, particle), source_xy(df, pid)
        # random placement: a translation; displacements are the source's times 1 / 0.5
        assert np.abs((got - got[0]) - (src - src[0]) * 2.0).max() < TOL_PX
        assert not np.allclose(got[0], src[0] * 2.0)
    assert truth.tracks["inside"].all()
    # centre: the bounding box of each track in the middle of the frame
    assert main(argv[:2] + argv[2:] + ["--tracks-place", "centre", "--particles", "1"]) == 0
    got = truth_xy(read_truth(out / "v.h5"), 1)
    assert np.allclose(0.5 * (got.min(axis=0) + got.max(axis=0)), 63.5)


def test_h5_sources_samem_results_and_synthetic_truth(tmp_path):
    # a samem results file: /tracks with `present`, units as root attributes
    df = walks(2, 8, 20, 45, 1.0, seed=4)
    df["present"] = True
    df.loc[3, ["x", "y"]] = np.nan  # an object not found in a frame has no position
    df.loc[3, "present"] = False
    res = tmp_path / "results.h5"
    with h5py.File(res, "w") as f:
        write_table(f, "tracks", df)
        f.attrs["pixel_size_nm"], f.attrs["frame_interval_s"] = 1.0, DT
    src = read_tracks(res)
    assert (src.pixel_size_nm, src.frame_interval_s, len(src.tracks)) == (1.0, DT, 15)
    df.to_csv(tmp_path / "tracks.csv", index=False)  # samem analyze's tracks.csv: the same rows
    from_csv = read_tracks(tmp_path / "tracks.csv")
    assert from_csv.tracks.equals(src.tracks) and from_csv.pixel_size_nm is None
    truth = read_truth(
        write_h5(params(res, frames=8, tracks_place="keep", allow_overlap=True), tmp_path / "v.h5", workers=1)
    )
    assert truth.params["motion"]["tracks_pixel_size_nm"] is None  # the file's units were used
    for pid in (1, 2):
        s = df[(df["particle"] == pid) & df["present"]]
        expect = np.stack([np.interp(np.arange(8), s["frame"], s[c]) for c in ("x", "y")], 1) * 2.0
        assert np.abs(truth_xy(truth, pid) - expect).max() < TOL_PX  # the gap is interpolated
    # a synthetic video's own truth as the source: the same motion again, elsewhere
    first = generate(params(res, frames=8, tracks_place="random", allow_overlap=True), workers=1)
    write_h5(first, tmp_path / "first.h5")
    again = generate(params(tmp_path / "first.h5", frames=8, size=160), workers=1)
    for particle in (1, 2):
        a = first.tracks[first.tracks["particle"] == particle][["x", "y"]].to_numpy()
        b = again.tracks[again.tracks["particle"] == particle][["x", "y"]].to_numpy()
        assert np.abs((b - b[0]) - (a - a[0])).max() < TOL_PX


def test_track_ids_choose_and_order_the_tracks(tmp_path, capsys):
    df = walks(4, 10, 20, 100, 1.0, seed=5)
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "v.h5"
    argv = ["synth", str(out), "--tracks", str(csv), "--track-ids", "3", "1", "--tracks-place", "keep"]
    argv += ["--size", "128", "--size-nm", "5", "8", "--allow-overlap", "--no-progress", "--workers", "1"]
    assert main(argv) == 0
    truth = read_truth(out)
    assert list(truth.particles["source_track"]) == [3, 1] and truth.params["frames"] == 10
    for particle, pid in ((1, 3), (2, 1)):
        assert np.abs(truth_xy(truth, particle) - source_xy(df, pid)).max() < TOL_PX
    with pytest.raises(SamemError, match="n_particles"):
        params(csv, track_ids=(1, 2, 3))
    with pytest.raises(SamemError, match="repeat"):
        params(csv, track_ids=(1, 1))
    with pytest.raises(SamemError, match="tracks_place"):
        params(csv, tracks_place="middle")


def _write(tmp_path, kind):
    """Track files with one problem each."""
    good = walks(2, 8, 20, 100, 1.0, seed=6)
    path = tmp_path / ("tracks.mat" if kind.startswith("mat") else "tracks.csv")
    if kind == "missing column":
        good.drop(columns="particle").to_csv(path, index=False)
    elif kind == "nan":
        good.loc[5, "x"] = np.nan
        good.to_csv(path, index=False)
    elif kind == "text":
        good["y"] = good["y"].astype(object)
        good.loc[2, "y"] = "lost"
        good.to_csv(path, index=False)
    elif kind == "twice":
        pd.concat([good, good.iloc[[4]]]).to_csv(path, index=False)
    elif kind == "mat no tr":
        savemat(path, {"positions": good[["x", "y", "particle"]].to_numpy(float)})
    elif kind == "mat shape":
        savemat(path, {"tr": good[["x", "y"]].to_numpy(float)})
    elif kind == "suffix":
        path = tmp_path / "tracks.txt"
        good.to_csv(path, index=False)
    elif kind == "absent":
        path = tmp_path / "nowhere.csv"
    else:
        if kind == "outside":  # track 2 runs past the right edge of a 128 px frame
            good.loc[good["particle"] == 2, "x"] += 60
        good.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "kind, extra, message",
    [
        ("absent", [], "no such file"),
        ("suffix", [], "unsupported track file"),
        ("missing column", [], "missing column(s) ['particle']"),
        ("nan", [], "column x has 1 missing"),
        ("text", [], "column y has 1 missing, non-numeric"),
        ("twice", [], "more than once"),
        ("mat no tr", [], "no variable 'tr'"),
        ("mat shape", [], "N x 3"),
        ("outside", ["--track-ids", "1", "2", "--tracks-place", "keep"], "track 2 leaves the frame"),
        ("outside", ["--particles", "2", "--tracks-place", "keep"], "too many particles"),
        ("good", ["--track-ids", "1", "--tracks-pixel-size-nm", "2"], "track 1 leaves the frame"),
        (
            "good",
            ["--track-ids", "1", "2", "--particles", "3"],
            "track_ids names 2 tracks but n_particles is 3",
        ),
        ("good", ["--particles", "3"], "too many particles: 3 requested but"),
        ("good", ["--track-ids", "7"], "no track(s) with id [7]"),
        ("good", ["--track-ids", "1", "--frames", "9"], "track 1 covers 8 frames"),
        ("good", ["--particles", "1", "--frames", "9"], "cover 9 frames"),
        (
            "good",
            ["--tracks-frame-interval-s", "0.025", "--particles", "1", "--frames", "5"],
            "cover 5 frames",
        ),
        ("good", ["--tracks-pixel-size-nm", "-1"], "tracks_pixel_size_nm must be > 0"),
    ],
)
def test_bad_track_inputs_exit_2_with_one_line(tmp_path, capsys, kind, extra, message):
    path = _write(tmp_path, kind)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["synth", str(out / "v.h5"), "--tracks", str(path), "--size", "128", "--size-nm", "5", "8"]
    assert main(argv + ["--no-progress", "--workers", "1", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("samem: error:") and message in err[0], err
    assert "Traceback" not in err[0]
    assert list(out.iterdir()) == []


def test_tracks_in_a_recipe_and_through_generate(tmp_path):
    df = walks(1, 5, 30, 90, 1.0, seed=7)
    csv = tmp_path / "one.csv"
    df.to_csv(csv, index=False)
    recipe = tmp_path / "real.yaml"
    recipe.write_text(
        f"base: thin\nframes: 5\nsize: 128\nparticles: {{n_particles: 1, size_nm: [5, 8]}}\n"
        f"motion: {{tracks_file: {csv}, tracks_place: keep, stage_drift_nm_s: [0, 0]}}\n"
    )
    p = SynthParams.from_recipe(recipe).validate()
    video = generate(p, workers=1)
    xy = video.tracks[["x", "y"]].to_numpy()
    assert np.abs(xy - df[["x", "y"]].to_numpy()).max() < TOL_PX
    # the rendered label's centroid sits on the given position
    for t in range(5):
        rows, cols = np.nonzero(video.labels[t] == 1)
        assert np.hypot(cols.mean() - xy[t, 0], rows.mean() - xy[t, 1]) < 0.5
    assert SynthParams.from_dict(p.to_dict()) == p
