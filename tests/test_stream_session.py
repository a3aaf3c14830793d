"""Session: prompts from file, control and detector; gaps; units; new particles; reset."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import OracleTracker, small_video, truth_boxes

from samem.errors import SamemError
from samem.stream.session import Session
from samem.stream.settings import load_settings

SETTINGS = load_settings()


@pytest.fixture(scope="module")
def video():
    return small_video(frames=30, n_particles=3, seed=1)


def _session(video, **kw):
    px, dt = kw.pop("units", (video.pixel_size_nm, video.frame_interval_s))
    return Session(OracleTracker(video), video.frames.shape[1:], px, dt, kw.pop("settings", SETTINGS), **kw)


def test_boxes_file_applies_on_its_frame_or_first_after(video):
    boxes = truth_boxes(video, t=3)
    s = _session(video, boxes=(3, boxes))
    for seq in (0, 2):  # frame 3 itself never arrives (dropped)
        assert s.process(seq, video.frames[seq]).objects == []
    r = s.process(4, video.frames[4])
    assert r.prompted == sorted(boxes) and [o["id"] for o in r.objects] == sorted(boxes)
    assert r.labels.max() > 0 and set(np.unique(r.labels)) <= {0, *boxes}


def test_gaps_keep_true_frame_numbers_in_tracks_and_stats(video):
    s = _session(video, boxes=(0, truth_boxes(video)), keep_table=True)
    seqs = [0, 1, 2, 5, 6, 9, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26]
    for seq in seqs:
        s.process(seq, video.frames[seq])
    table = s.table()
    assert sorted(set(table.frame)) == seqs
    summary = s.summary()
    assert summary["calibrated"] and summary["frames"] == [0, 26]
    assert summary["units"]["pixel_size_nm"] == video.pixel_size_nm
    with pytest.raises(SamemError, match="increase"):
        s.process(26, video.frames[26])


def test_uncalibrated_series_reports_pixels_and_frames(video):
    s = _session(video, boxes=(0, truth_boxes(video)), units=(None, None))
    for seq in range(12):
        s.process(seq, video.frames[seq])
    summary = s.summary()
    assert summary["calibrated"] is False
    assert summary["units"]["pixel_size_nm"] == 1.0 and summary["units"]["frame_interval_s"] == 1.0


def test_prompt_remove_reset_validation(video):
    s = _session(video)
    h, w = video.frames.shape[1:]
    with pytest.raises(SamemError, match="outside"):
        s.prompt({1: (w - 5, 0, w + 1, 10)})
    with pytest.raises(SamemError, match="unknown object"):
        s.remove([1])
    boxes = truth_boxes(video)
    s.prompt(boxes)
    assert [o["id"] for o in s.process(0, video.frames[0]).objects] == sorted(boxes)
    first = sorted(boxes)[0]
    s.remove([first])
    assert first not in [o["id"] for o in s.process(1, video.frames[1]).objects]
    with pytest.raises(SamemError, match=r"removed or reset.*next free: 4"):
        s.prompt({first: boxes[first]})  # a removed track's id is not reused
    s.reset()
    assert s.object_ids == [] and s.process(2, video.frames[2]).objects == []
    with pytest.raises(SamemError, match=r"\[2, 3\] belonged"):
        s.prompt({2: boxes[first], 3: boxes[first], 7: boxes[first]})
    assert s._pending == {}  # a refused prompt changes nothing
    s.prompt({7: boxes[first]})
    assert [o["id"] for o in s.process(3, video.frames[3]).objects] == [7]


def test_auto_prompt_then_new_particles_enter(video):
    settings = load_settings(None, {"autoprompt.new_objects_every": 2})
    first_only = dict(list(truth_boxes(video).items())[:1])
    s = _session(video, settings=settings, boxes=(0, first_only))
    r0 = s.process(0, video.frames[0])
    assert len(r0.objects) == 1
    r1 = s.process(1, video.frames[1])  # frames_processed == 1: not a detection frame
    assert len(r1.objects) == 1
    r3 = s.process(2, video.frames[2])  # the detector runs on this frame; new ids are prompted on it
    truth = video.tracks[(video.tracks.frame == 2) & video.tracks.inside]
    assert len(r3.objects) == len(truth) and r3.prompted == sorted(set(o["id"] for o in r3.objects) - {1})
    # each truth particle fully inside is tracked by exactly one object
    nearest = [
        min(r3.objects, key=lambda o: np.hypot(o["x"] - t.x, o["y"] - t.y))["id"] for t in truth.itertuples()
    ]
    assert len(set(nearest)) == len(truth)


def test_newcomers_skip_tracked_particles_that_are_momentarily_absent(video, monkeypatch):
    settings = load_settings(None, {"autoprompt.new_objects_every": 2, "autoprompt.frames": 2})
    s = _session(video, settings=settings, boxes=(0, truth_boxes(video)))
    s.process(0, video.frames[0])
    real_step = s.tracker.step

    def absent_step(frame, prompts=None):  # every object unconfirmed on this frame
        out = real_step(frame, prompts)
        return {
            k: type(r)(np.zeros_like(r.mask), 0.4, False, (np.nan, np.nan), None, r.iou)
            for k, r in out.items()
        }

    monkeypatch.setattr(s.tracker, "step", absent_step)
    s.process(1, video.frames[1])  # every particle reported absent on the frame before ...
    r = s.process(2, video.frames[2])  # ... a detection frame: all are tracked, none is new
    assert r.prompted == [] and len(s.object_ids) == len(truth_boxes(video))


def test_auto_prompt_averages_first_frames(video):
    settings = load_settings(None, {"autoprompt.frames": 3})
    s = _session(video, settings=settings, auto_prompt=True)
    assert s.process(0, video.frames[0]).objects == [] and s.process(1, video.frames[1]).objects == []
    r = s.process(2, video.frames[2])
    assert r.prompted and len(r.objects) == len(r.prompted)


def _faint_video(seed=2):
    from types import SimpleNamespace

    from test_stream_autoprompt import faint_scene

    frames, lab = faint_scene(seed, frames=12)
    return SimpleNamespace(
        frames=frames, labels=np.repeat(lab[None], len(frames), 0), pixel_size_nm=1.0, frame_interval_s=0.05
    )


@pytest.mark.parametrize("confirm", [0.0, 4.5])
def test_auto_prompt_confirms_faint_candidates_on_the_next_frames(confirm):
    """Live: the strong particle is prompted on frame 4 (mean of frames 0-4); with
    ``confirm_sigma`` the faint one, too faint for ``threshold_sigma`` there, is prompted on
    frame 9 once the mean of frames 5-9 confirms it, and nothing else; without, never."""
    video = _faint_video()
    settings = load_settings(None, {"autoprompt.confirm_sigma": confirm})
    assert settings.autoprompt.confirm_sigma == confirm
    s = _session(video, settings=settings, auto_prompt=True)
    results = [s.process(seq, video.frames[seq]) for seq in range(12)]
    prompted = {r.seq: r.prompted for r in results if r.prompted}
    if confirm:
        assert prompted == {4: [1], 9: [2]}
        (faint,) = [o for o in results[-1].objects if o["id"] == 2]
        assert abs(faint["x"] - 135) < 3 and abs(faint["y"] - 120) < 3  # on the faint particle
    else:
        assert prompted == {4: [1]} and s.object_ids == [1]


def test_recorded_videos_are_prompted_on_frame_0_with_confirmed_faint_particles():
    """Offline (``samem analyze``): strong and confirmed faint particles are both prompted on
    frame 0, from frames 0-4 given in reverse; a video shorter than two windows is not
    confirmed."""
    from samem.stream.offline import _first_frame_detections

    video = _faint_video()
    on = load_settings(None, {"autoprompt.confirm_sigma": 4.5})
    boxes = _first_frame_detections(list(video.frames), on)
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes.values())
    assert len(centres) == 2 and np.allclose(centres, [(50, 60), (135, 120)], atol=4)
    assert len(_first_frame_detections(list(video.frames[:9]), on)) == 1
    off = load_settings(None, {"autoprompt.confirm_sigma": 0})
    assert len(_first_frame_detections(list(video.frames), off)) == 1
    assert _first_frame_detections(list(video.frames), SETTINGS) == boxes  # on by default


def test_failing_statistics_never_cost_the_frame(video, monkeypatch, caplog):
    """Issue 23 (1): a statistics error is reported in the stats, the frame's results are kept."""
    import samem.stats.summary as summary_mod

    def broken(*a, **k):
        raise ValueError("array must not contain infs or NaNs")

    settings = load_settings(None, {"stats.every_frames": 2})
    s = _session(video, settings=settings, boxes=(0, truth_boxes(video)))
    s.process(0, video.frames[0])
    monkeypatch.setattr(summary_mod, "statistics_from_sums", broken)
    r = s.process(1, video.frames[1])
    assert len(r.objects) == 3 and r.labels.max() > 0  # tracking results intact
    assert "infs or NaNs" in r.stats["error"] and r.stats["n_particles"] == 3
    assert any(rec.levelname == "WARNING" and "statistics" in rec.message for rec in caplog.records)


def test_object_limits_per_prompt_and_in_total(video, tmp_path):
    """Issue 23 (2): hundreds of boxes were accepted; per-frame time grew to seconds."""
    settings = load_settings(None, {"prompts.max_per_prompt": 4, "prompts.max_objects": 6})
    s = _session(video, settings=settings)
    box = (1.0, 1.0, 9.0, 9.0)
    with pytest.raises(SamemError, match=r"holds 5 boxes; at most 4 .*prompts.max_per_prompt"):
        s.prompt({i: box for i in range(1, 6)})
    s.prompt({i: box for i in range(1, 5)})
    s.process(0, video.frames[0])
    s.prompt({1: box, 2: box, 5: box})  # corrections of tracked ids do not count twice
    with pytest.raises(SamemError, match=r"would make 7 objects; at most 6 .*prompts.max_objects"):
        s.prompt({6: box, 7: box})
    assert s._pending == {1: box, 2: box, 5: box}  # the refused prompt changed nothing
    with pytest.raises(SamemError, match="the boxes file holds 5 boxes"):
        _session(video, settings=settings, boxes=(0, {i: box for i in range(1, 6)}))
    defaults = _session(video)
    with pytest.raises(SamemError, match="max_per_prompt"):
        defaults.prompt({i: box for i in range(1, 201)})
    with pytest.raises(SamemError, match="prompts.max_objects must be"):
        load_settings(None, {"prompts.max_objects": 0})


def test_auto_prompt_respects_the_object_limit(video):
    settings = load_settings(None, {"prompts.max_objects": 2, "autoprompt.frames": 1})  # prompts on frame 0
    s = _session(video, settings=settings, auto_prompt=True)
    r = s.process(0, video.frames[0])
    assert len(r.prompted) == 2 and len(r.objects) == 2


class _WithSigma(OracleTracker):
    """The oracle, with object 1's positions marked imprecise (sigma 4 px) and the others 0.2 px."""

    def step(self, frame, prompts=None):
        from dataclasses import replace

        out = super().step(frame, prompts)
        return {o: replace(r, sigma=4.0 if o == 1 else 0.2) if r.present else r for o, r in out.items()}


@pytest.mark.parametrize("calibrated", [True, False])
def test_live_statistics_leave_out_positions_less_precise_than_max_sigma_nm(video, calibrated):
    """``max_sigma_nm`` reaches live statistics in pixels (the pixel size converts it; uncalibrated,
    it is read in px); the rows and the PUB objects keep every position with its sigma."""
    px, dt = (video.pixel_size_nm, video.frame_interval_s) if calibrated else (None, None)
    bound = 2.0 * (px or 1.0)  # 2 px: object 1 (4 px) out, the others (0.2 px) in
    settings = load_settings(overrides={"stats.config": {"max_sigma_nm": bound}})
    s = Session(_WithSigma(video), video.frames.shape[1:], px, dt, settings, boxes=(0, truth_boxes(video)))
    for seq in range(12):
        r = s.process(seq, video.frames[seq])
    assert {o["id"]: o["sigma"] for o in r.objects if o["present"]}[1] == 4.0
    assert r.rows.set_index("particle")["sigma"][1] == 4.0  # the /tracks rows keep it
    assert 1 not in s.live.particles and set(s.live.particles) == set(truth_boxes(video)) - {1}
    # the live particles table states each particle's localisation error (0.2 px here) in nm
    errors = s.live.statistics().particles["sigma_nm"].to_numpy()
    np.testing.assert_allclose(errors, 0.2 * (px or 1.0), rtol=1e-9)


def test_offline_a_strong_particle_seen_again_confirms_no_faint_candidate():
    """Offline as live: a faint blob on frames 0-4 near where the strong particle is on frames
    5-9 (it moved 40 px) is not confirmed by it; the live session would not take that particle
    for a new one either. A faint particle that stays is still confirmed."""
    from test_stream_autoprompt import SIGMA

    from samem.stream.offline import _first_frame_detections

    def scene(seed, blob_stays):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:192, 0:192]
        frames = []
        for t in range(12):
            clean = np.full((192, 192), 100.0)
            sx = 60.0 if t < 5 else 100.0  # the strong particle, 30 px across, per-pixel SNR 1
            clean[(xx - sx) ** 2 + (yy - 80) ** 2 <= 15**2] -= SIGMA
            if t < 5 or blob_stays:  # SNR 0.12, 39 px from the strong one's place on frames 5-9
                clean[(xx - 110) ** 2 + (yy - 115) ** 2 <= 15**2] -= 0.12 * SIGMA
            frames.append((clean + rng.normal(0, SIGMA, (192, 192))).astype(np.float32))
        return frames

    def centres(boxes):
        return sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes.values())

    for seed in (11, 25):  # seeds where the blob is a faint candidate on frames 0-4
        gone = centres(_first_frame_detections(scene(seed, blob_stays=False), SETTINGS))
        assert len(gone) == 1 and abs(gone[0][0] - 60) < 6  # the strong particle alone
    kept = centres(_first_frame_detections(scene(11, blob_stays=True), SETTINGS))
    assert len(kept) == 2 and np.allclose(kept[1], (110, 115), atol=6)
