"""Pooling of bench/bench_accuracy.py records (the 24-video tables of BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest
from helpers import load_bench_script


@pytest.fixture(scope="module")
def acc():
    return load_bench_script("bench_accuracy")


def _video(seed, err, cov=1.0, d=0.05):
    return {
        "seed": seed,
        "iou_mean": 0.8,
        "jf_mean": 80.0,
        "centroid_err_px": err,
        "centroid_err_nm": err / 2,
        "d_rel_err": d,
        "coverage": cov,
        "wrong_while_present": 0.0,
        "centroid_err_worst_px": err,
        "present_when_gone": float("nan"),
        "mota": 1.0,
        "idf1": 1.0,
        "fps": 10.0,
        "id_switches": 0,
        "centroid_err_per_particle": {"1": err},
        "d_rel_err_per_particle": {"1": d},
    }


def _record(tmp_path, name, videos, **extra):
    rec = {
        "model": "default",
        "frames": 150,
        "size": 1024,
        "seeds": "held-out",
        "tracker_options": {},
        "skip": extra.pop("skip", 0),
        "machine": "test",
        "results": {"thin": {"samem": {"videos": videos}}},
        **extra,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(rec))
    return path


def test_pooled_record_is_the_mean_over_all_videos(acc, tmp_path):
    a = _record(tmp_path, "a", [_video(1001, 1.0), _video(1011, 2.0)])
    b = _record(tmp_path, "b", [_video(1021, 6.0, cov=0.5)], skip=2)
    out = acc.pool_records([a, b])
    thin = out["results"]["thin"]["samem"]
    assert out["videos_per_preset"] == 3
    assert thin["centroid_err_px"] == pytest.approx(3.0)
    assert thin["coverage"] == pytest.approx(2.5 / 3)
    assert thin["worst"]["centroid_err_px"] == {"value": 6.0, "seed": 1021}
    assert out["skip"] == [0, 2]


def test_pooling_refuses_repeats_and_different_runs(acc, tmp_path):
    a = _record(tmp_path, "a", [_video(1001, 1.0)])
    again = _record(tmp_path, "again", [_video(1001, 1.5)])
    with pytest.raises(SystemExit, match="appears in two records"):
        acc.pool_records([a, again])
    other = _record(tmp_path, "other", [_video(1011, 1.0)], tracker_options={"verify": False})
    with pytest.raises(SystemExit, match="tracker_options"):
        acc.pool_records([a, other])


def test_iou_by_kind_groups_particles_by_shape_and_snr(acc):
    kinds = {"1": {"shape": "sphere", "snr": 0.9}, "2": {"shape": "ellipse", "snr": 0.3}}
    videos = [
        {**_video(1, 1.0), "iou_per_particle": {"1": 0.9, "2": 0.4}, "particle_kinds": kinds},
        {**_video(2, 1.0), "iou_per_particle": {"1": 0.8, "2": 0.6}, "particle_kinds": kinds},
    ]
    by = acc.pool(videos)["iou_by_kind"]
    assert by["shape"]["sphere"] == pytest.approx({"particles": 2, "iou": 0.85, "worst": 0.8})
    assert by["shape"]["ellipse"] == pytest.approx({"particles": 2, "iou": 0.5, "worst": 0.4})
    assert by["snr"]["0-0.4"]["iou"] == pytest.approx(0.5)
    assert by["snr"]["0.8-1"]["iou"] == pytest.approx(0.85)
    assert "iou_by_kind" not in acc.pool([_video(3, 1.0)])  # older records: no breakdown
