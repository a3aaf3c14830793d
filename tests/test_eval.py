"""samem eval: metrics against truth, classical baseline, CLI."""

import json

import h5py
import numpy as np
import pytest

from samem.cli.main import main
from samem.eval.classical import track_classical
from samem.eval.evaluate import KEYS, score, truth_boxes
from samem.synthetic import SynthParams, read_truth, write_h5


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "truth.h5"
    params = SynthParams.from_preset("thin", frames=24, size=192, n_particles=2, seed=11)
    write_h5(params, path, progress=False)
    return path


def _truth_as_prediction(path):
    with h5py.File(path, "r") as f:
        labels = list(f["truth/labels"][()])
    tracks = read_truth(path).tracks.assign(present=True)
    return labels, tracks


def test_perfect_prediction_scores_perfectly(truth_file):
    labels, tracks = _truth_as_prediction(truth_file)
    s = score(truth_file, labels, tracks)
    assert s["iou_mean"] == pytest.approx(1.0) and s["jf_mean"] == pytest.approx(100.0)
    assert s["centroid_err_px"] == pytest.approx(0.0, abs=1e-9)
    assert s["id_switches"] == 0 and s["coverage"] == pytest.approx(1.0)
    assert s["d_rel_err"] == pytest.approx(0.0, abs=1e-9)
    assert set(KEYS) <= set(s)


def test_d_error_on_the_same_frames_separates_gaps_from_wrong_positions(truth_file):
    labels, tracks = _truth_as_prediction(truth_file)
    # exact positions with a gap of 6 frames: the gap changes D's estimate, the positions do not
    gappy = tracks[~tracks["frame"].between(8, 13)]
    s = score(truth_file, labels, gappy)
    assert s["d_rel_err_same_frames"] == pytest.approx(0.0, abs=1e-9)
    assert s["d_rel_err"] > 1e-3
    # wrong positions on those frames cost D on the same frames too
    rng = np.random.default_rng(0)
    noisy = gappy.assign(x=gappy["x"] + rng.normal(0, 3.0, len(gappy)))
    assert score(truth_file, labels, noisy)["d_rel_err_same_frames"] > 0.05
    # the tracker's sigma is scored against the true errors: 3 px noise per coordinate
    both = noisy.assign(y=noisy["y"] + rng.normal(0, 3.0, len(noisy)))
    honest = score(truth_file, labels, both.assign(sigma=3.0))
    assert honest["sigma_ratio"] == pytest.approx(1.0, abs=0.25) and honest["sigma_within_95"] > 0.85
    assert score(truth_file, labels, both.assign(sigma=0.5))["sigma_within_95"] < 0.3
    assert np.isnan(score(truth_file, labels, both)["sigma_ratio"])  # a table without the column


def test_degraded_prediction_scores_worse(truth_file):
    labels, tracks = _truth_as_prediction(truth_file)
    shifted = [np.roll(lab, 4, axis=1) for lab in labels]
    moved = tracks.assign(x=tracks["x"] + 4)
    s = score(truth_file, shifted, moved)
    assert 0.3 < s["iou_mean"] < 0.95
    assert s["centroid_err_px"] == pytest.approx(4.0, abs=0.01)
    # swapping identities half-way is counted
    ids = sorted(truth_boxes(truth_file))
    swap = tracks.copy()
    late = swap["frame"] >= 12
    swap.loc[late, "particle"] = swap.loc[late, "particle"].map({ids[0]: ids[1], ids[1]: ids[0]})
    assert score(truth_file, labels, swap)["id_switches"] >= 2


def test_iou_per_particle_names_the_particle_whose_mask_fails(truth_file):
    labels, tracks = _truth_as_prediction(truth_file)
    ids = sorted(truth_boxes(truth_file))
    lost = [np.where(lab == ids[1], 0, lab) for lab in labels]  # the second particle's mask is never drawn
    s = score(truth_file, lost, tracks)
    assert s["iou_per_particle"][str(ids[0])] == pytest.approx(1.0)
    assert s["iou_per_particle"][str(ids[1])] == pytest.approx(0.0)
    assert s["iou_mean"] == pytest.approx(np.mean(list(s["iou_per_particle"].values())), abs=0.05)


def test_classical_baseline_finds_the_prompted_particles(truth_file):
    with h5py.File(truth_file, "r") as f:
        frames = f["frames"][()]
    boxes = truth_boxes(truth_file)
    tracks, labels = track_classical(frames, boxes)
    assert set(tracks["particle"]) <= set(boxes) and len(labels) == len(frames)
    s = score(truth_file, labels, tracks)
    assert s["coverage"] > 0.5 and s["iou_mean"] > 0.2


def test_eval_cli_scores_results_file_and_writes_json(truth_file, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "eval",
                str(truth_file),
                "--model",
                "samem_tiny",
                "--json",
                str(out),
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"samem", "classical"}
    for method in metrics.values():
        assert set(KEYS) <= set(method)
    # an existing results.h5 is scored without re-running, and matches
    assert (
        main(
            [
                "eval",
                str(truth_file),
                "--results",
                str(tmp_path / "a" / "results.h5"),
                "--baseline",
                "none",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "r.json").read_text())
    assert set(again) == {"samem"}
    assert again["samem"]["iou_mean"] == pytest.approx(metrics["samem"]["iou_mean"])
    assert "mean IoU" in capsys.readouterr().out


def test_eval_cli_bad_inputs(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.h5")]) == 2
    not_truth = tmp_path / "x.h5"
    with h5py.File(not_truth, "w") as f:
        f["frames"] = np.zeros((2, 8, 8), np.uint8)
    assert main(["eval", str(not_truth)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "truth" in err


def test_eval_passes_tracker_options(truth_file, tmp_path, monkeypatch, capsys):
    import samem

    made = []
    real = samem.StreamingTracker

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(samem, "StreamingTracker", recording)
    args = ["eval", str(truth_file), "--model", "samem_tiny", "--baseline", "none", "--out", str(tmp_path)]
    assert main(args + ["--tracker", "smooth_frames=3", "--tracker", "reappear_score=0.6"]) == 0
    assert made[-1].options.smooth_frames == 3 and made[-1].options.reappear_score == 0.6
    assert main(args + ["--tracker", "smooth=3"]) == 2
    assert "unknown tracker options ['smooth']" in capsys.readouterr().err
