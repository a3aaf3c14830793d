"""``window_peak`` (default on): a tracked object's window moves towards this frame's detector
peak before SAM 2 looks, by at most one step spread, when the peak could prompt the object
(shipped model)."""

import math
from dataclasses import replace

import numpy as np
import pytest

import samem
import samem.track.tracker as tracker_mod
import samem.track.verify as verify_mod

ENCODE = tracker_mod.StreamingTracker._encode
CONTRAST_MAP = verify_mod.contrast_map


def _frame(rng, x, y, radius=12.0, size=256):
    """A dark disc at (x, y) px on a noisy background (per-pixel SNR 1)."""
    yy, xx = np.mgrid[:size, :size]
    f = rng.normal(120.0, 10.0, (size, size))
    f[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] -= 10.0
    return np.clip(f, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return samem.load_model(device="cpu")


def _windows(model, monkeypatch, on: bool):
    """Window centres SAM 2 looked at on each frame; the disc steps 2 px per frame, then 14 px."""
    seen = []

    def spy(self, gray, levels, ids):
        obj = self._objects[1]
        seen.append((*obj.centre, obj.verifier.motion.spread()))
        return ENCODE(self, gray, levels, ids)

    monkeypatch.setattr(tracker_mod.StreamingTracker, "_encode", spy)
    rng = np.random.default_rng(7)
    xs = [100.0 + 2 * t for t in range(8)] + [114.0 + 14]
    tracker = samem.StreamingTracker(model, window_peak=on)
    for t, x in enumerate(xs):
        frame = _frame(rng, x, 128.0)
        out = tracker.start(frame, {1: (x - 13, 115, x + 13, 141)}) if t == 0 else tracker.step(frame)
    return seen, xs, out[1]


def test_the_window_moves_towards_the_peak_by_at_most_one_step_spread(model, monkeypatch):
    off, xs, _ = _windows(model, monkeypatch, on=False)
    on, _, last = _windows(model, monkeypatch, on=True)
    spread = on[-1][2]  # the step spread when the window was placed
    prev = xs[-2] + 0.5  # where the window waits without the option (continuous px)
    assert off[-1][0] == pytest.approx(prev, abs=1.5)
    moved = on[-1][0] - off[-1][0]
    assert 0.5 * spread < moved <= spread + 0.5  # towards the disc (14 px away), capped
    assert abs(on[-1][1] - off[-1][1]) < 2.0
    assert last.present and math.hypot(last.centroid[0] - xs[-1], last.centroid[1] - 128) < 3


def _last_centre(model, monkeypatch, above: float):
    """Where the window waits on the jump frame when this frame's peak has ``above`` more *z*
    than a peak that may prompt the object again (the detector's map scaled to that)."""
    rng = np.random.default_rng(7)
    xs = [100.0 + 2 * t for t in range(8)] + [114.0 + 14]
    tracker = samem.StreamingTracker(model)
    assert tracker.options.window_peak  # the default
    for t, x in enumerate(xs[:-1]):
        frame = _frame(rng, x, 128.0)
        tracker.start(frame, {1: (x - 13, 115, x + 13, 141)}) if t == 0 else tracker.step(frame)
    ver = tracker._objects[1].verifier
    target = ver.peak_threshold() + above

    def scaled(*args):
        zmap = CONTRAST_MAP(*args)
        return replace(zmap, z=zmap.z * np.float32(target / zmap.z.max()))

    monkeypatch.setattr(verify_mod, "contrast_map", scaled)  # every map from here; the window is placed first
    seen = []

    def spy(self, gray, levels, ids):
        seen.append(self._objects[1].centre)
        return ENCODE(self, gray, levels, ids)

    monkeypatch.setattr(tracker_mod.StreamingTracker, "_encode", spy)
    waiting = tracker._objects[1].centre
    tracker.step(_frame(rng, xs[-1], 128.0))
    return waiting, seen[-1], ver.motion.spread()


def test_only_a_peak_that_could_prompt_the_object_moves_its_window(model, monkeypatch):
    waiting, centre, _ = _last_centre(model, monkeypatch, above=-0.2)
    assert centre == pytest.approx(waiting)  # a weaker peak: the window stays where it waits
    waiting, centre, spread = _last_centre(model, monkeypatch, above=0.2)
    assert 0.5 * spread < centre[0] - waiting[0] <= spread + 1e-6
