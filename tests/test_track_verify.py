"""The position check of samem.track.verify: motion model, detector and decisions."""

import math

import numpy as np
import pytest

from samem.errors import SamemError
from samem.track import TrackerOptions
from samem.track.verify import SIGMA_POWER, SIGMA_SCALE, Motion, Verifier, contrast_map, noise_gain


def _frame(rng, centres, radius=8.0, contrast=-12.0, noise=12.0, size=160):
    """A noisy frame (background 120) with dark discs at ``centres`` (x, y; px)."""
    yy, xx = np.mgrid[:size, :size]
    f = rng.normal(120.0, noise, (size, size))
    for cx, cy in centres:
        f[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] += contrast
    return f.astype(np.float32)


def _verifier(**kw):
    args = dict(radius=8.0, prior_step=0.25, gate_sigmas=4.0, z_min=2.5, fraction=0.4, peak_z=4.0)
    args.update(peak_fraction=0.5, frames=2)
    args.update(kw)
    return Verifier(**args)


def test_motion_spread_converges_to_the_particles_own_steps():
    rng = np.random.default_rng(1)
    m = Motion(prior_px=20.0)
    pos = np.zeros(2)
    for t in range(400):
        m.update(tuple(pos), t)
        pos += rng.normal(0, 3.0, 2)  # 3 px per axis per frame
    assert m.spread() == pytest.approx(3.0, rel=0.1)
    assert m.velocity() == (0.0, 0.0)  # Brownian: no velocity
    centre, spread = m.predict(m.last_frame + 4)  # four frames on: spread grows as sqrt(4)
    assert centre == m.last and spread == pytest.approx(2 * m.spread())


def test_motion_finds_a_drift_and_counts_gaps_per_frame():
    rng = np.random.default_rng(2)
    m = Motion(prior_px=5.0)
    for t in range(0, 300, 3):  # seen every third frame: 3 frames of 2 px/frame drift per step
        m.update((2.0 * t + rng.normal(0, 1.0), rng.normal(0, 1.0)), t)
    vx, vy = m.velocity()
    assert vx == pytest.approx(2.0, abs=0.1) and abs(vy) < 0.1
    assert m.predict(m.last_frame + 1)[0][0] == pytest.approx(m.last[0] + vx)


def test_contrast_map_peaks_on_a_faint_particle_and_averaging_helps():
    rng = np.random.default_rng(3)
    frames = [_frame(rng, [(80, 80)], contrast=-6.0) for _ in range(3)]  # per-pixel SNR 0.5
    one = contrast_map(frames[-1], (80, 80), 60, 8.0, 1.0)
    avg = contrast_map(frames, (80, 80), 60, 8.0, 1.0)
    (x, y), z = avg.peak((80, 80), 50, [])
    assert math.hypot(x - 80, y - 80) < 4 and z > 4
    assert avg.at(80, 80, 4) > one.at(80, 80, 4)
    assert avg.at(30, 30, 4) < 3  # background
    bright = contrast_map(frames[-1], (80, 80), 60, 8.0, -1.0)  # the wrong sign sees no particle
    assert bright.at(80, 80, 4) < 1


def test_noise_at_the_border_of_the_field_is_not_stronger_than_inside():
    """The reflected border makes the band-pass of noise ~1.3 x stronger at the frame edge;
    noise_gain divides that out, so pure noise gives the same z spread at the edge as inside."""
    rng = np.random.default_rng(9)
    edge, inside, top = [], [], []
    for _ in range(20):
        zmap = contrast_map(rng.normal(100, 10, (600, 600)).astype(np.float32), (300, 590), 120, 14.0, 1.0)
        h = zmap.z.shape[0]
        edge.append(zmap.z[-2:].std())
        inside.append(zmap.z[h // 2 - 1 : h // 2 + 1].std())
        top.append(zmap.z[-3:].max() - zmap.z[h // 2 - 2 : h // 2 + 1].max())
    assert np.mean(edge) == pytest.approx(np.mean(inside), rel=0.1)
    assert abs(np.mean(top)) < 0.4  # the largest noise peaks are no higher at the edge
    gain = noise_gain((60, 60), 1.4, 7.0)
    assert gain[30, 30] == pytest.approx(1.0) and gain[0, 30] > 1.2 and gain[0, 0] > gain[0, 30]


def test_verifier_confirms_the_particle_and_refuses_noise_and_neighbours():
    rng = np.random.default_rng(4)
    v = _verifier()
    frames = [_frame(rng, [(80, 80), (120, 40)])]
    v.start(frames, (80.0, 80.0), 0)
    assert v.sign == 1.0 and v.typical > 4
    frames.append(_frame(rng, [(82, 79), (120, 40)]))
    assert v.check(frames, 1, (82.0, 79.0), [(120.0, 40.0, 8.0)]).supported
    frames.append(_frame(rng, [(83, 80), (120, 40)]))
    off = v.check(frames, 2, (50.0, 110.0), [(120.0, 40.0, 8.0)])  # SAM 2 on empty noise
    assert not off.supported and off.centre == v.motion.last
    frames.append(_frame(rng, [(84, 80), (120, 40)]))
    assert not v.check(frames, 3, (120.0, 40.0), [(120.0, 40.0, 8.0)]).supported  # on the other particle


def test_verifier_prompts_again_after_consistent_peaks_inside_the_gate():
    rng = np.random.default_rng(5)
    v = _verifier()
    frames = [_frame(rng, [(80, 80)])]
    v.start(frames, (80.0, 80.0), 0)
    first = v.check(frames + [_frame(rng, [(90, 84)])], 1, None, [])  # SAM 2 lost it: a peak, wait
    assert not first.supported and first.found is None
    second = v.check([_frame(rng, [(92, 85)])], 2, None, [])
    assert second.found is not None and math.hypot(second.found[0] - 92, second.found[1] - 85) < 4
    # a particle far outside the gate (prior spread 4 px x 4 + radius) is never taken
    w = _verifier()
    w.start([_frame(rng, [(40, 40)])], (40.0, 40.0), 0)
    for t in (1, 2, 3):
        assert w.check([_frame(rng, [(130, 130)])], t, None, []).found is None


def test_verifier_gate_grows_while_the_particle_is_unseen():
    v = _verifier()
    v.start([np.full((64, 64), 100.0, np.float32)], (32.0, 32.0), 0)
    _, near = v.motion.predict(1)
    _, later = v.motion.predict(10)
    assert later == pytest.approx(near * math.sqrt(10))


def test_the_gate_stops_growing_after_verify_max_gap_frames():
    capped = _verifier(max_gap=16)
    capped.start([np.full((64, 64), 100.0, np.float32)], (32.0, 32.0), 0)
    _, near = capped.motion.predict(1)
    assert capped.motion.predict(9)[1] == pytest.approx(3 * near)
    assert capped.motion.predict(16)[1] == capped.motion.predict(120)[1] == pytest.approx(4 * near)
    # and a particle far away, inside only an unbounded gate (4 x 4 px x sqrt(2000) + 8), is not taken
    rng = np.random.default_rng(8)
    for v, reach in ((capped, None), (_verifier(), "found")):
        v.start([_frame(rng, [(30, 30)], size=400)], (30.0, 30.0), 0)
        got = [v.check([_frame(rng, [(330, 330)], size=400)], t, None, []).found for t in (2000, 2001)]
        assert (got[-1] is not None) == (reach == "found")


def test_back_after_a_long_gap_a_position_must_hold_for_rejoin_frames():
    rng = np.random.default_rng(10)
    v = _verifier(max_gap=4, rejoin=3)
    v.start([_frame(rng, [(60, 60)])], (60.0, 60.0), 0)
    for t in range(1, 6):  # SAM 2 reports nothing for 5 frames: a long gap
        v.check([_frame(rng, [(60, 60)])], t, None, [])
    got = [v.check([_frame(rng, [(62, 61)])], t, (62.0, 61.0), []) for t in (6, 7, 8)]
    assert [g.supported for g in got] == [False, False, True]
    assert got[0].centre == (62.0, 61.0)  # the window follows the candidate meanwhile
    # a one-frame find that does not hold restarts the count; a short gap needs no wait
    w = _verifier(max_gap=4, rejoin=3)
    w.start([_frame(rng, [(60, 60)])], (60.0, 60.0), 0)
    assert not w.check([_frame(rng, [(60, 60)])], 6, (60.0, 60.0), []).supported
    assert not w.check([_frame(rng, [(60, 60)])], 7, None, []).supported
    assert [w.check([_frame(rng, [(60, 60)])], t, (60.0, 60.0), []).supported for t in (8, 9, 10)] == [
        False,
        False,
        True,
    ]
    assert w.check([_frame(rng, [(60, 60)])], 11, (60.0, 60.0), []).supported


def test_a_user_correction_restarts_the_motion_origin_without_counting_a_step():
    rng = np.random.default_rng(6)
    v = _verifier()
    v.start([_frame(rng, [(40, 40)])], (40.0, 40.0), 0)
    for t in (1, 2, 3):
        assert v.check([_frame(rng, [(40 + t, 40)])], t, (40.0 + t, 40.0), []).supported
    steps, spread = v.motion.count, v.motion.spread()
    v.start([_frame(rng, [(120, 120)])], (120.0, 120.0), 4)  # the user moves it 110 px
    assert v.motion.last == (120.0, 120.0) and v.motion.count == steps
    assert v.motion.spread() == pytest.approx(spread)


def test_the_first_frame_back_after_a_gap_needs_the_stricter_single_frame_floor():
    rng = np.random.default_rng(7)
    history = [_frame(rng, [(80, 80)]) for _ in range(4)]
    now = _frame(rng, [(81, 80)], contrast=-6.0)  # fainter on the current frame
    z_now = contrast_map(now, (81.0, 80.0), 32, 8.0, 1.0).at(81.0, 80.0, 4.0)
    assert z_now > 1.0

    def judged(gap):
        v = _verifier(floor=(z_now - 1.0, 0.0), back=(z_now + 1.0, 0.0), z_min=0.0, fraction=0.0)
        v.start(history[:1], (80.0, 80.0), 0)
        for t in range(1, 5 - gap):  # confirmed up to frame 4 - gap, then nothing until frame 4
            assert v.check(history[: t + 1], t, (80.0, 80.0), []).supported
        return v.check(history[2:] + [now], 4, (81.0, 80.0), []).supported

    assert judged(gap=1)  # the frame after a confirmed one: the everyday floor
    assert not judged(gap=2)  # the first frame back after a gap: the return floor


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"verify_floor_z": -1}, "verify_floor_z -1 must be from 0 to 50"),
        ({"verify_floor_fraction": 2}, "verify_floor_fraction 2 must be from 0 to 1"),
        ({"verify_return_z": 60}, "verify_return_z 60 must be from 0 to 50"),
        ({"verify_return_fraction": -0.1}, "verify_return_fraction -0.1 must be from 0 to 1"),
        ({"verify_max_gap": 0}, "verify_max_gap 0 must be from 1 to 1000000 frames"),
        ({"verify_rejoin_frames": 0}, "verify_rejoin_frames 0 must be from 1 to 64"),
    ],
)
def test_single_frame_floors_are_validated(bad, message):
    with pytest.raises(SamemError, match=message):
        TrackerOptions(**bad)


def test_sigma_follows_size_over_signal_to_noise():
    """The localisation error estimate: unknown before the particle was seen, then
    SCALE (radius / z) ** POWER: larger for a fainter particle of the same size."""
    v = _verifier()
    assert math.isnan(v.sigma())
    rng = np.random.default_rng(5)
    v.start([_frame(rng, [(80, 80)], contrast=-30.0)], (80.0, 80.0), 0)
    z = v.typical
    assert v.sigma() == pytest.approx(SIGMA_SCALE * (8.0 / z) ** SIGMA_POWER)
    faint = _verifier()
    faint.start([_frame(rng, [(80, 80)], contrast=-8.0)], (80.0, 80.0), 0)
    assert 0 < faint.typical < z and faint.sigma() > v.sigma()
    faint.typical = -1.0  # a contrast that turned: no estimate rather than a negative one
    assert math.isnan(faint.sigma())
