"""A truth-reading stand-in for the SAM 2 tracker, so service tests can check accuracy.

The untrained default model cannot track, so tests of the data path (session, service,
recorder, statistics) use :class:`OracleTracker`: it has StreamingTracker's interface and
answers from the synthetic video's ground-truth labels. Each prompt box is bound to the
truth particle with most pixels inside it; frames are recognised by content (exactly, or
the closest frame for lossy formats), so dropped frames do not desynchronise it. The test
at the bottom checks the oracle itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from samem.synthetic import SynthParams, generate


@dataclass(frozen=True)
class ObjectResult:
    """Same fields as samem.track.ObjectResult (kept local: importing torch costs seconds)."""

    mask: np.ndarray
    score: float
    present: bool
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int] | None
    iou: float


def small_video(frames=40, size=128, n_particles=3, seed=1, preset="thin", **kw):
    """A small synthetic video (2 nm/px, Brownian particles) with exact truth."""
    params = SynthParams.from_preset(
        preset,
        frames=frames,
        size=size,
        n_particles=n_particles,
        seed=seed,
        pixel_size_nm=2.0,
        models={"brownian": 1.0},
        **kw,
    )
    return generate(params)


def truth_boxes(video, t=0, pad=2):
    """``{particle: (x0, y0, x1, y1)}`` around each truth mask on frame ``t`` (px)."""
    boxes = {}
    lab = video.labels[t]
    for pid in np.unique(lab[lab > 0]):
        ys, xs = np.nonzero(lab == pid)
        boxes[int(pid)] = (xs.min() - pad, ys.min() - pad, xs.max() + 1 + pad, ys.max() + 1 + pad)
    h, w = lab.shape
    return {k: (max(0, b[0]), max(0, b[1]), min(w, b[2]), min(h, b[3])) for k, b in boxes.items()}


def _key(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


class OracleTracker:
    """StreamingTracker interface answering from ground-truth labels."""

    def __init__(self, video, step_s: float = 0.0):
        self.video = video
        self.step_s = step_s
        self._index = {_key(f): t for t, f in enumerate(video.frames)}
        self.reset()

    def reset(self):
        self._map: dict = {}
        self.steps = 0

    @property
    def object_ids(self):
        return list(self._map)

    def start(self, frame, boxes):
        self.reset()
        return self.step(frame, boxes)

    def remove(self, obj_id):
        del self._map[obj_id]

    def step(self, frame, prompts=None):
        if self.step_s:
            time.sleep(self.step_s)
        t = self._index.get(_key(frame))
        if t is None:  # lossy formats: the closest truth frame
            truth = self.video.frames.astype(np.float32)
            diff = np.abs(truth - np.asarray(frame, np.float32)).mean(axis=(1, 2))
            t = int(np.argmin(diff))
        lab = self.video.labels[t]
        for oid, (x0, y0, x1, y1) in (prompts or {}).items():
            window = lab[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            ids, counts = np.unique(window[window > 0], return_counts=True)
            self._map[oid] = int(ids[np.argmax(counts)]) if len(ids) else -1
        self.steps += 1
        out = {}
        for oid, pid in self._map.items():
            mask = lab == pid
            if not mask.any():
                out[oid] = ObjectResult(mask, 0.1, False, (np.nan, np.nan), None, 0.0)
                continue
            ys, xs = np.nonzero(mask)
            bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            out[oid] = ObjectResult(mask, 0.99, True, (float(xs.mean()), float(ys.mean())), bbox, 0.9)
        return out


def test_oracle_reproduces_truth_labels():
    video = small_video(frames=5)
    oracle = OracleTracker(video)
    boxes = truth_boxes(video)
    res = oracle.start(video.frames[0], {10 + k: b for k, b in boxes.items()})
    assert sorted(res) == [10 + k for k in boxes]
    for t in (1, 4, 2):
        res = oracle.step(video.frames[t])
        for oid, r in res.items():
            np.testing.assert_array_equal(r.mask, video.labels[t] == oid - 10)
            row = video.tracks[(video.tracks.frame == t) & (video.tracks.particle == oid - 10)].iloc[0]
            if row["inside"]:
                assert abs(r.centroid[0] - row["x"]) < 1.0 and abs(r.centroid[1] - row["y"]) < 1.0
