"""The known-shape oracle of bench/bench_shape_oracle.py (issue 21's evidence on faint particles)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import load_bench_script


@pytest.fixture(scope="module")
def oracle():
    return load_bench_script("bench_shape_oracle")


@pytest.fixture(scope="module")
def scene():
    from samem.synthetic import SynthParams
    from samem.synthetic.render import Renderer

    crlb = load_bench_script("bench_crlb")
    r = Renderer(SynthParams.from_preset("medium", frames=2, size=256, n_particles=1, seed=5))
    n = 128
    x, y = r.scene.xy_px[0, 0]
    r0 = int(np.clip(round(y) - n // 2, 0, 256 - n))
    c0 = int(np.clip(round(x) - n // 2, 0, 256 - n))
    exp = crlb.Expected(r, 0, n)
    a, b = crlb.noise_spectrum(r, n)
    reach = int(np.ceil(np.sqrt(r.scene.shapes[0].area_px / np.pi)))
    return exp, r0, c0, a + float(np.median(exp.patch(0, r0, c0)[1])) * b, reach


@pytest.mark.parametrize("shift", [(0.0, 0.0), (2.0, -1.0), (-3.4, 2.6)])
def test_noise_free_frame_gives_the_true_offset(oracle, scene, shift):
    """On the expected (noise-free) frame with the particle moved, the oracle finds the move."""
    exp, r0, c0, spectrum, reach = scene
    moved, _ = exp.patch(0, r0, c0, *shift)
    dx, dy = oracle.locate(exp, 0, r0, c0, moved, spectrum, reach)
    assert np.hypot(dx - shift[0], dy - shift[1]) < 0.35


def test_search_stays_within_the_reach(oracle, scene):
    """Pure noise (no particle): whatever wins lies within the allowed reach."""
    exp, r0, c0, spectrum, reach = scene
    without, _ = exp.patch(0, r0, c0, oracle.AWAY, oracle.AWAY)
    noise = np.random.default_rng(3).normal(0, 5.0, without.shape)
    dx, dy = oracle.locate(exp, 0, r0, c0, without + noise, spectrum, reach)
    assert np.hypot(dx, dy) <= reach + 1.0


def test_summary_groups_by_snr_and_shares_add_up(oracle):
    import pandas as pd

    table = pd.DataFrame(
        {
            "preset": ["thin"] * 4,
            "snr": [0.2, 0.35, 0.8, 0.9],
            "oracle_px": [4.0, 3.0, 0.5, 0.7],
            "tracked_px": [6.0, 2.0, 1.0, 1.0],
        }
    )
    table["worse"] = table["tracked_px"] > table["oracle_px"]
    groups = oracle.summary(table)
    assert list(groups["particles"]) == [1, 1, 2]
    assert groups["share_of_tracked_error"].sum() == pytest.approx(1.0)
    assert groups["share_of_tracked_error"].iloc[0] == pytest.approx(0.6)
    assert list(groups["tracked_worse"]) == [1, 0, 2]
