"""bench/bench_precision.py: calibration summaries and the fit of the sigma constants on known errors."""

import math

import numpy as np
import pandas as pd
import pytest
from helpers import load_bench_script

bp = load_bench_script("bench_precision")


def _table(rng, sigmas, n=4000):
    """Positions whose 2-D Gaussian error has exactly the stated per-coordinate spread."""
    rows = []
    for pid, s in enumerate(sigmas):
        e = rng.normal(0, s, (n, 2))
        rows.append(
            pd.DataFrame(
                {
                    "preset": "thin",
                    "seed": 1,
                    "particle": pid,
                    "frame": np.arange(n),
                    "sigma": s,
                    "err": np.hypot(e[:, 0], e[:, 1]),
                    "wrong": False,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_an_honest_sigma_is_recognised_and_a_halved_one_is_not():
    table = _table(np.random.default_rng(0), [0.7, 1.3, 2.4, 4.0])
    summary = bp.summarise(table, {})
    assert summary["within_95"] == pytest.approx(0.95, abs=0.01)
    assert summary["robust_over_sigma_median"] == pytest.approx(1.0, abs=0.05)
    for band in summary["calibration"]:
        assert band["robust_err_px"] == pytest.approx(band["sigma_median_px"], rel=0.06)
        assert band["rms_err_px"] == pytest.approx(band["sigma_median_px"], rel=0.06)
    overconfident = bp.summarise(table.assign(sigma=table["sigma"] / 2), {})
    assert overconfident["within_95"] < 0.6


def test_cuts_keep_the_precise_positions_and_count_particles():
    table = _table(np.random.default_rng(1), [0.5, 3.0], n=500)
    particles = bp.per_particle(table)
    d_err = {("thin", 1, 0): 0.02, ("thin", 1, 1): 0.3}
    rows = {c["max_sigma_px"]: c for c in bp.cuts(table, particles, d_err)}
    assert rows[1.0]["kept"] == pytest.approx(0.5) and rows[1.0]["particles"] == "1/2"
    assert rows[1.0]["d_rel_err"] == pytest.approx(0.02)
    assert rows[None]["d_rel_err"] == pytest.approx(0.16) and rows[1.0]["err_px"] < rows[None]["err_px"]


def test_fit_recovers_known_constants():
    rng = np.random.default_rng(2)
    raw = rng.uniform(0.8, 6.0, 60)
    made = 0.5 * raw**1.4
    particles = pd.DataFrame({"raw": raw, "robust": made * np.exp(rng.normal(0, 0.03, raw.size))})
    scale, power = bp.fit_constants(particles)
    assert scale == pytest.approx(0.5, rel=0.05) and power == pytest.approx(1.4, abs=0.05)
    assert bp.raw_ratio(np.array([0.5 * 2.0**1.4]), 0.5, 1.4)[0] == pytest.approx(2.0)
    assert not math.isnan(bp.MEDIAN_R) and bp.R95 == pytest.approx(2.4477, abs=1e-3)
