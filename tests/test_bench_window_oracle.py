"""bench/bench_window_oracle.py: lag and error per particle, the SNR summary, an oracle run."""

import numpy as np
import pandas as pd
import pytest
from helpers import load_bench_script

from samem.synthetic import SynthParams, write_h5

wo = load_bench_script("bench_window_oracle")


def _truth(frames=400, seed=3):
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(0, 6.0, (frames, 2)), axis=0) + 500
    return pd.DataFrame({"frame": np.arange(frames), "particle": 1, "x": xy[:, 0], "y": xy[:, 1]})


@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_scores_recover_a_known_lag_and_error(beta):
    truth = _truth()
    step = truth[["x", "y"]].diff().fillna(0.0).to_numpy()
    noise = np.random.default_rng(1).normal(0, 1.0, step.shape)
    pos = truth.assign(
        x=truth["x"] - beta * step[:, 0] + noise[:, 0], y=truth["y"] - beta * step[:, 1] + noise[:, 1]
    )
    s = wo.scores(pos.iloc[1:], truth, wrong_px=1e9)[1]
    assert s["frames"] == len(truth) - 1
    assert s["beta"] == pytest.approx(beta, abs=0.03)
    expected = np.sqrt(np.mean(np.sum((beta * step[1:] - noise[1:]) ** 2, axis=1)))
    assert s["rms_px"] == pytest.approx(expected, rel=1e-6)


def test_summary_bins_particles_by_snr():
    def one(model, reported):
        return {"frames": 10, "rms_px": model, "beta": 0.1}, {"frames": 10, "rms_px": reported, "beta": 0.0}

    a, b = one(1.0, 2.0), one(3.0, 1.0)
    results = [
        {
            "snr": {1: 0.2, 2: 0.7},
            "modes": {"tracker": {"model": {1: a[0], 2: b[0]}, "reported": {1: a[1], 2: b[1]}}},
        }
    ]
    rows = {r["snr"]: r for r in wo.summary(results)}
    assert set(rows) == {"0-0.3", "0.6-0.8"}
    assert rows["0-0.3"]["model_closer"] == 1.0 and rows["0.6-0.8"]["model_closer"] == 0.0
    assert rows["0.6-0.8"]["reported_rms_px"] == 1.0 and rows["0-0.3"]["model_beta"] == pytest.approx(0.1)


def test_oracle_windows_sit_on_the_truth(tmp_path, monkeypatch):
    """With the oracle every window SAM 2 looks at is centred on the particle's true centre."""
    video = tmp_path / "v.h5"
    write_h5(
        SynthParams.from_preset("thin", frames=4, size=256, n_particles=2, seed=5), video, progress=False
    )
    import samem
    from samem.synthetic import read_truth

    centres = []
    encode = samem.StreamingTracker._encode

    def spy(self, gray, levels, ids):
        centres.extend((self._frame_idx, o, *self._objects[o].centre) for o in ids)
        return encode(self, gray, levels, ids)

    monkeypatch.setattr(samem.StreamingTracker, "_encode", spy)
    wo.track(samem.load_model("default"), video, 4, 0.0, {})
    truth = read_truth(video).tracks.set_index(["frame", "particle"])
    for t, oid, cx, cy in centres:
        x, y = truth.loc[(t, oid), ["x", "y"]]
        assert (cx, cy) == pytest.approx((x + 0.5, y + 0.5))
    assert len(centres) == 8
