"""HDF5 / DAVIS output contracts, read_truth, atomic writes and the `samem synth` command."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samem.cli.main import main
from samem.errors import SamemError
from samem.synthetic import SynthParams, generate, read_truth, write_folder, write_h5
from samem.synthetic import render as render_mod


def tiny(**over):
    base = dict(frames=3, size=96, n_particles=2, size_nm=(8.0, 14.0), seed=1)
    base.update(over)
    return SynthParams.from_preset("thin", **base)


def test_h5_layout_is_the_contract(tmp_path):
    p = tiny()
    out = write_h5(p, tmp_path / "v.h5", workers=1)
    video = generate(p, workers=1)
    with h5py.File(out, "r") as f:
        frames = f["frames"]
        assert frames.shape == (3, 96, 96) and frames.dtype == np.uint8 and frames.chunks == (1, 96, 96)
        assert frames.attrs["pixel_size_nm"] == 0.5 and frames.attrs["frame_interval_s"] == 0.05
        assert np.array_equal(frames[()], video.frames)
        labels = f["truth/labels"]
        assert labels.dtype == np.uint16 and labels.chunks == (1, 96, 96)  # tiles of at most 128 px
        assert np.array_equal(labels[()], video.labels)
        tracks = pd.DataFrame(f["truth/tracks"][()])  # readable with h5py + pandas alone
        assert list(tracks.columns[:4]) == ["frame", "particle", "x", "y"]
        assert np.allclose(tracks[["x", "y"]], video.tracks[["x", "y"]])
        g = f["truth"]
        assert g.attrs["thickness_nm"] == 5 and g.attrs["seed"] == 1
        assert list(g.attrs["particle_ids"]) == [1, 2]
        assert np.allclose(g.attrs["D_nm2_s"], video.particles.D_nm2_s)
        assert np.allclose(g.attrs["alpha"], video.particles.alpha)
        assert json.loads(g.attrs["params_json"])["imaging"]["thickness_nm"] == 5
        assert g["snr"].shape == (3,)
    assert not list(tmp_path.glob(".*partial*"))


def test_read_truth_round_trip_and_video_input(tmp_path):
    video = generate(tiny(), workers=1)
    out = write_h5(video, tmp_path / "v.h5")
    truth = read_truth(out)
    assert truth.tracks[["frame", "particle", "x", "y"]].equals(video.tracks[["frame", "particle", "x", "y"]])
    assert truth.D_nm2_s.to_dict() == video.particles.set_index("particle").D_nm2_s.to_dict()
    assert truth.alpha.index.tolist() == [1, 2]
    assert (truth.pixel_size_nm, truth.frame_interval_s, truth.thickness_nm, truth.seed) == (
        0.5,
        0.05,
        5.0,
        1,
    )
    assert np.allclose(truth.snr, video.snr, equal_nan=True)
    assert SynthParams.from_dict(truth.params) == video.params
    with pytest.raises(SamemError, match="no such file"):
        read_truth(tmp_path / "missing.h5")


def test_folder_is_davis_style(tmp_path):
    video = generate(tiny(), workers=1)
    jpg_dir = write_folder(video, tmp_path / "ds", name="vid")
    assert jpg_dir == tmp_path / "ds" / "JPEGImages" / "vid"
    assert sorted(p.name for p in jpg_dir.iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]
    for t in range(3):
        png = Image.open(tmp_path / "ds" / "Annotations" / "vid" / f"{t:05d}.png")
        assert png.mode == "P"
        assert np.array_equal(np.array(png), video.labels[t])
        jpg = np.array(Image.open(jpg_dir / f"{t:05d}.jpg"))
        assert jpg.shape == (96, 96) and np.abs(jpg.astype(int) - video.frames[t]).mean() < 8
    truth = read_truth(tmp_path / "ds")
    assert len(truth.tracks) == 6
    assert not list((tmp_path / "ds").glob(".*partial*"))


def test_failure_leaves_no_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = render_mod.Renderer.frame

    def flaky(self, t):
        calls["n"] += 1
        if t == 2:
            raise RuntimeError("disk full, say")
        return original(self, t)

    monkeypatch.setattr(render_mod.Renderer, "frame", flaky)
    with pytest.raises(RuntimeError):
        write_h5(tiny(), tmp_path / "v.h5", workers=1)
    with pytest.raises(RuntimeError):
        write_folder(tiny(), tmp_path / "ds", workers=1)
    assert calls["n"] >= 4
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--thickness-nm", "-5"], "thickness_nm must be >= 0"),
        (["--frames", "0"], "frames must be >= 1"),
        (["--size", "64", "--size-nm", "10", "60"], "particles larger than the frame"),
        (["--preset", "ultra"], "unknown preset"),
        (["--recipe", "nope"], "not found"),
    ],
)
def test_cli_bad_parameters_exit_2_with_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "v.h5"
    assert main(["synth", str(out), "--frames", "2", "--size", "96", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("samem: error:") and message in err[0]
    assert "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_unwritable_path(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "no" / "such" / "v.h5"), "--frames", "1", "--size", "96"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "dir.h5").mkdir()
    assert main(["synth", str(tmp_path / "dir.h5"), "--frames", "1", "--size", "96"]) == 2


def test_cli_writes_and_summarises(tmp_path, capsys):
    out = tmp_path / "v.h5"
    argv = [
        "synth",
        str(out),
        "--preset",
        "thick",
        "--frames",
        "3",
        "--size",
        "128",
        "--particles",
        "2",
        "--seed",
        "4",
        "--size-nm",
        "10",
        "20",
        "--dose-e-A2",
        "0.8",
        "--shapes",
        "rod=1",
        "--no-progress",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "SNR mean" in text and "rod" in text
    truth = read_truth(out)
    assert truth.thickness_nm == 150 and truth.params["imaging"]["dose_e_A2"] == 0.8
    assert set(truth.particles["shape"]) == {"rod"} and len(truth.particles) == 2
    assert (
        main(
            [
                "synth",
                str(tmp_path / "ds"),
                "--format",
                "folder",
                "--frames",
                "2",
                "--size",
                "96",
                "--size-nm",
                "8",
                "12",
            ]
        )
        == 0
    )
    assert (tmp_path / "ds" / "Annotations" / "ds" / "00001.png").is_file()


def test_video_without_particles_is_still_a_valid_file(tmp_path):
    p = tiny(n_particles=0)
    truth = read_truth(write_h5(generate(p, workers=1), tmp_path / "empty.h5"))
    assert len(truth.tracks) == 0 and len(truth.particles) == 0 and np.isnan(truth.snr).all()
    with h5py.File(tmp_path / "empty.h5", "r") as f:
        assert f["frames"].shape == (3, 96, 96) and not f["truth/labels"][()].any()
