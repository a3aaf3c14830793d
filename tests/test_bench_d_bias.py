"""bench/bench_d_bias.py: the lag estimate recovers a known lag."""

import numpy as np
import pytest
from helpers import load_bench_script

bd = load_bench_script("bench_d_bias")


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_lag_beta_recovers_a_known_lag(beta):
    """A position that trails the particle by ``beta`` of each step, plus independent noise."""
    rng = np.random.default_rng(4)
    steps = rng.normal(0, 8.0, 5000)
    errors = -beta * steps + rng.normal(0, 1.5, steps.size)
    assert bd._lag_beta(errors, steps) == pytest.approx(beta, abs=0.01)
    assert np.isnan(bd._lag_beta(errors, np.zeros_like(steps)))
