"""The trained default model shipped in the package: present, small, loads silently, tracks."""

import warnings

import numpy as np
import pandas as pd

import samem
from samem.eval.evaluate import score, truth_boxes
from samem.model.checkpoint import DEFAULT_WEIGHTS, read_checkpoint
from samem.synthetic import SynthParams, generate, write_h5


def test_default_weights_are_shipped_small_and_self_describing():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size <= 25 * 2**20
    ckpt = read_checkpoint(DEFAULT_WEIGHTS)
    assert ckpt["config"]["tracker"]["mode"] == "roi"
    assert ckpt["meta"]["step"] > 0 and "optimizer" not in ckpt


def test_default_model_loads_without_warning_and_tracks(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = samem.load_model(device="cpu")
    params = SynthParams.from_preset("thin", frames=12, size=256, n_particles=2, seed=4242, pixel_size_nm=1.0)
    video = generate(params)
    path = write_h5(video, tmp_path / "v.h5", progress=False)
    boxes = truth_boxes(path)
    tracker = samem.StreamingTracker(model)
    labels, rows = [], []
    for t, frame in enumerate(video.frames):
        res = tracker.start(frame, boxes) if t == 0 else tracker.step(frame)
        lab = np.zeros(frame.shape, np.uint16)
        for oid, r in res.items():
            lab[r.mask] = oid
            rows.append((t, oid, *r.centroid, r.present))
        labels.append(lab)
    tracks = pd.DataFrame(rows, columns=["frame", "particle", "x", "y", "present"])
    s = score(path, labels, tracks)
    # a random initialisation scores ~0 here; the trained default must find and follow the particles
    assert s["iou_mean"] > 0.5 and s["coverage"] > 0.8 and s["id_switches"] == 0


def test_a_fast_faint_particle_is_kept_or_reported_absent_never_present_elsewhere():
    """Issue 21's case: a small particle (16-20 nm) at D ~ 475 nm^2/s (about 14 px rms per axis
    per frame at 0.5 nm/px, 20 frames/s) and a per-pixel SNR of about 0.2. Without the position
    check (``verify=False``) the default model loses it and reports it present 13 of 24 times
    more than one radius away; with it, every position reported present is right."""
    model = samem.load_model(device="cpu")
    params = SynthParams.from_preset(
        "thin",
        frames=40,
        size=320,
        n_particles=1,
        seed=3,
        D_nm2_s=(450, 500),
        models={"brownian": 1.0},
        dose_e_A2=0.2,
        size_nm=(16, 20),
    )
    video = generate(params)
    truth = video.tracks.set_index(["frame", "particle"])
    ((oid, box),) = _first_boxes(video).items()
    tracker = samem.StreamingTracker(model)
    wrong = present = 0
    for t, frame in enumerate(video.frames):
        r = (tracker.start(frame, {oid: box}) if t == 0 else tracker.step(frame))[oid]
        if t == 0 or not r.present:
            continue
        row = truth.loc[(t, oid)]
        present += 1
        wrong += np.hypot(r.centroid[0] - row.x, r.centroid[1] - row.y) > np.sqrt(row.area_px / np.pi)
    assert wrong == 0
    assert present >= 20  # and it is kept for most of the clip, not simply given up


def _first_boxes(video):
    from samem.synthetic.clips import first_frame_boxes

    boxes, ids = first_frame_boxes(video.labels[0])
    return {int(i): (float(b[0]), float(b[1]), float(b[2]) + 1, float(b[3]) + 1) for i, b in zip(ids, boxes)}


def test_a_particle_leaving_the_field_is_reported_where_it_is_not_where_its_visible_part_is():
    """A disc of radius 12 px drifting 2 px per frame out through the right border: while it is
    cut, the visible part's centroid lags its centre by up to ~8 px; ``edge_centre`` (the default)
    reconstructs the centre from the particle's typical area (samem.track.edge)."""
    model = samem.load_model(device="cpu")
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:160, 0:160]
    xs = [120 + 2.0 * t for t in range(27)]  # fully outside from x = 171.5
    frames = [
        np.clip(
            255 * (0.7 - 0.35 * ((xx - x) ** 2 + (yy - 80) ** 2 <= 144) + rng.normal(0, 0.05, xx.shape)),
            0,
            255,
        ).astype(np.uint8)
        for x in xs
    ]
    errors = {}
    for on in (False, True):
        tracker = samem.StreamingTracker(model, edge_centre=on)
        cut = []
        for t, frame in enumerate(frames):
            r = (tracker.start(frame, {1: (108, 68, 133, 93)}) if t == 0 else tracker.step(frame))[1]
            if 147.5 < xs[t] < 166 and r.present:  # cut by the border, at least a quarter visible
                cut.append(np.hypot(r.centroid[0] - xs[t], r.centroid[1] - 80))
        assert len(cut) >= 8
        errors[on] = np.mean(cut)
    assert errors[False] > 2.0 and errors[True] < 1.0
