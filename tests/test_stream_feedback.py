"""Feedback: SNR estimate against a known SNR, recentring shifts, lost/found, falling behind."""

from __future__ import annotations

import numpy as np
import pytest

from samem.config import load_yaml
from samem.stream.feedback import FeedbackAdvisor, estimate_snr

CFG = load_yaml("serve")["feedback"]


@pytest.mark.parametrize("snr", [0.3, 0.6, 1.2])
def test_snr_estimate_matches_truth(snr):
    rng = np.random.default_rng(int(snr * 10))
    h = w = 128
    yy, xx = np.mgrid[0:h, 0:w]
    labels = ((xx - 64) ** 2 + (yy - 64) ** 2 <= 20**2).astype(np.uint16)
    frame = rng.normal(100.0, 10.0, (h, w)) - snr * 10.0 * labels
    area = int(labels.sum())
    # standard error ~ sqrt(1/area + snr^2 / (2 n_background)); allow 4 of them
    tol = 4 * np.sqrt(1 / area + snr**2 / (2 * (h * w - area)))
    assert estimate_snr(frame, labels, ring_px=3) == pytest.approx(snr, abs=tol)


def test_snr_undefined_without_particles():
    assert estimate_snr(np.ones((8, 8)), np.zeros((8, 8), np.uint16)) is None
    assert estimate_snr(np.ones((8, 8)), np.ones((8, 8), np.uint16)) is None


def test_recentre_shift_in_nm_with_cooldown():
    adv = FeedbackAdvisor({**CFG, "edge_margin_px": 10, "recentre_cooldown_frames": 5}, (100, 200), 0.5)
    out = adv.on_frame(
        0, {1: {"x": 100.0, "y": 50.0, "present": True}, 2: {"x": 195.0, "y": 5.0, "present": True}}
    )
    (ev,) = out["events"]
    assert ev["kind"] == "recentre" and ev["particle"] == 2
    assert ev["dx_px"] == pytest.approx(195 - 99.5) and ev["dy_px"] == pytest.approx(5 - 49.5)
    assert ev["dx_nm"] == pytest.approx(0.5 * (195 - 99.5)) and ev["dy_nm"] == pytest.approx(0.5 * (5 - 49.5))
    for seq in range(1, 5):
        assert adv.on_frame(seq, {2: {"x": 195.0, "y": 5.0, "present": True}})["events"] == []
    assert adv.on_frame(5, {2: {"x": 195.0, "y": 5.0, "present": True}})["events"][0]["kind"] == "recentre"


def test_lost_and_found_once_per_transition():
    adv = FeedbackAdvisor({**CFG, "lost_after_frames": 1}, (128, 128), None)
    seen = []
    for seq, present in enumerate([True, True, False, False, True]):
        out = adv.on_frame(seq, {7: {"x": 64.0, "y": 64.0, "present": present}})
        seen += [e["kind"] for e in out["events"]]
    assert seen == ["object_lost", "object_found"]


def test_short_gaps_raise_no_event_a_real_loss_raises_one():
    adv = FeedbackAdvisor({**CFG, "lost_after_frames": 3}, (128, 128), None)
    seen = []
    pattern = [True, False, True, False, False, True, True, False, False, False, False, True]
    for seq, present in enumerate(pattern):
        obj = (
            {"x": 10.0 + seq, "y": 64.0, "present": present}
            if present
            else {"x": None, "y": None, "present": False}
        )
        seen += [(seq, e) for e in adv.on_frame(seq, {7: obj})["events"] if e["kind"] != "recentre"]
    (t_lost, lost), (t_found, found) = seen  # gaps of 1 and 2 frames are not losses
    assert lost["kind"] == "object_lost" and t_lost == 9 and lost["since"] == 7 and lost["x"] == 16.0
    assert found["kind"] == "object_found" and t_found == 11


def test_falling_behind_suggests_lower_rate():
    adv = FeedbackAdvisor(
        {**CFG, "lag_warn_frames": 3, "behind_cooldown_s": 1.0, "rate_margin": 0.8}, (8, 8), 1.0
    )
    assert adv.on_load(0.0, lag_frames=1, dropped_total=0, processing_fps=20.0) is None
    ev = adv.on_load(0.1, lag_frames=5, dropped_total=0, processing_fps=20.0)
    assert ev["suggested_fps"] == pytest.approx(16.0) and ev["lag_frames"] == 5
    assert adv.on_load(0.5, lag_frames=5, dropped_total=3, processing_fps=20.0) is None  # cooldown
    ev = adv.on_load(1.2, lag_frames=0, dropped_total=3, processing_fps=10.0)
    assert ev["new_dropped_frames"] == 3 and ev["suggested_fps"] == pytest.approx(8.0)
    assert (
        adv.on_load(3.0, lag_frames=0, dropped_total=3, processing_fps=10.0) is None
    )  # drops already reported
