"""Test support shared by the test modules (the one place for it; no test module imports another).

Import as ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path`` (``rootdir``
conftest, no ``__init__.py`` in ``tests/``). Fixtures live in ``tests/conftest.py``; the
writers of small electron-microscopy files in :mod:`helpers.emfiles`.

Contents
--------
Synthetic videos and an oracle tracker
    :func:`small_video`, :func:`truth_boxes`, :class:`OracleTracker` (StreamingTracker's
    interface answering from the ground truth, for the data path: session, service, recorder,
    statistics), :class:`SlowTracker` (a tracker whose frames cost time).
The live service
    :class:`Running` (a Service in a thread plus client sockets), :func:`serve_settings`,
    :func:`cli_command`, :func:`wait_ready`, :data:`CLI`, :data:`ANY`.
Tracking with a known segmenter
    :func:`disc_frame`, :func:`sphere_frame`, :class:`Oracle` (SAM 2's mask logits replaced by
    "dark pixels of the model input").
Recordings
    :func:`recorder_frame_data` (deterministic labels, raw frame and track rows of frame t).
bench/ scripts
    :func:`load_bench_script`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from samem.synthetic import SynthParams, generate

REPO = Path(__file__).resolve().parents[2]
ANY = "tcp://127.0.0.1:*"
CLI = [sys.executable, "-m", "samem.cli.main"]


# ---------------------------------------------------------------------- synthetic videos
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
    """StreamingTracker interface answering from ground-truth labels.

    The untrained tiny model cannot track, so tests of the data path use this stand-in. Each
    prompt box is bound to the truth particle with most pixels inside it; frames are recognised
    by content (exactly, or the closest frame for lossy formats), so dropped frames do not
    desynchronise it.
    """

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
        from samem.track import ObjectResult  # here: helpers stays free of torch for subprocesses

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


SLOW_SHAPE = (64, 64)


@dataclass(frozen=True)
class _Absent:
    mask: np.ndarray
    score: float = 0.0
    present: bool = False
    centroid: tuple = (np.nan, np.nan)
    bbox: tuple | None = None
    iou: float = 0.0


class SlowTracker:
    """StreamingTracker stand-in on :data:`SLOW_SHAPE` frames whose every frame costs
    ``per_object_s`` per object (objects always absent)."""

    def __init__(self, per_object_s: float):
        self.per_object_s = per_object_s
        self._ids: set[int] = set()
        self._mask = np.zeros(SLOW_SHAPE, bool)

    @property
    def object_ids(self):
        return sorted(self._ids)

    def reset(self):
        self._ids.clear()

    def remove(self, oid):
        self._ids.discard(oid)

    def start(self, frame, boxes):
        self.reset()
        return self.step(frame, boxes)

    def step(self, frame, prompts=None):
        self._ids.update(prompts or {})
        time.sleep(self.per_object_s * len(self._ids))
        return {i: _Absent(self._mask) for i in self._ids}


# ---------------------------------------------------------------------- the live service
class Running:
    """A Service in a background thread plus client sockets; everything closed on exit."""

    def __init__(self, settings, tracker_factory, boxes=None, context=None):
        import zmq

        from samem.stream.service import Service

        self.ctx = context or zmq.Context()
        self.service = Service(settings, tracker_factory, model_name="oracle", boxes=boxes, context=self.ctx)
        self.endpoints = self.service.start()
        self.thread = threading.Thread(target=self.service.serve_forever, daemon=True)
        self.thread.start()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.endpoints["publish"])
        self.req = None
        time.sleep(0.3)  # let the subscription reach the publisher

    def command(self, obj, timeout_ms=15000):
        import zmq

        if self.req is None:
            self.req = self.ctx.socket(zmq.REQ)
            self.req.setsockopt(zmq.LINGER, 0)
            self.req.setsockopt(zmq.RCVTIMEO, timeout_ms)
            self.req.connect(self.endpoints["control"])
        self.req.send(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        return json.loads(self.req.recv())

    def collect(self, until, timeout_s=60.0):
        """PUB messages until ``until(topic, payload)`` is true."""
        from samem.stream.protocol import decode_pub

        got = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sub.poll(200):
                topic, payload = decode_pub(self.sub.recv_multipart())
                got.append((topic, payload))
                if until(topic, payload):
                    return got
        raise AssertionError(f"condition not met within {timeout_s} s; got {len(got)} messages")

    def sender(self, **kw):
        from samem.stream.client import FrameSender

        return FrameSender(self.endpoints["ingest"], context=self.ctx, **kw)

    def close(self):
        self.service.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        for s in (self.sub, self.req):
            if s is not None:
                s.close(0)
        self.ctx.term()


def serve_settings(tmp_path=None, **over):
    """Service settings on loopback ports chosen by the OS; a recording in ``tmp_path`` if given."""
    from samem.stream.settings import load_settings

    base = {"sockets.ingest": ANY, "sockets.publish": ANY, "sockets.control": ANY}
    if tmp_path is not None:
        base["recording.file"] = str(tmp_path / "rec.h5")
    base.update(over)
    return load_settings(None, base)


def wait_ready(proc, timeout_s=180):
    """The JSON line ``samem serve`` prints once its sockets are bound."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1.0)
        if r:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                return json.loads(line)
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()[-2000:]}")


def cli_command(ctx, endpoint, obj):
    """Send one control command (a dict) to a running service; its JSON reply."""
    import zmq

    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 30000)
    req.connect(endpoint)
    try:
        req.send_json(obj)
        return req.recv_json()
    finally:
        req.close(0)


# ---------------------------------------------------------------------- tracking with a known segmenter
def disc_frame(shape, centre, radius, seed, visible=True, anchor=True):
    """Noisy uint16 background with one dark disc; returns (frame, truth mask).

    ``anchor`` adds a dark 12 x 12 px square in the bottom-left corner (another particle, far
    from the tracked one) so the frame's percentile normalisation does not depend on how much
    of the disc is visible.
    """
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    truth = visible & ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2)
    frame = np.random.default_rng(seed).normal(3000, 100, shape)
    frame[truth] = 1000
    if anchor:
        frame[h - 12 :, :12] = 1000
    return frame.astype(np.uint16), truth


def sphere_frame(shape, centre, radius, noise, seed, dark=True, ramp=0.0):
    """Background 100 (plus a ramp along x) with a projected sphere (thickness ~ sqrt(r^2 - d^2))."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    d2 = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2
    thickness = np.sqrt(np.clip(radius**2 - d2, 0, None)) / radius
    image = 100.0 + ramp * xx + (-40.0 if dark else 40.0) * thickness
    image += np.random.default_rng(seed).normal(0, noise, shape)
    return image.astype(np.float32), d2 <= radius**2


class Oracle:
    """Replace SAM 2's mask logits with 'dark pixels of the model input' (one object per tracker).

    The real SAM 2 step runs (memory included); only its mask logits and object scores are
    replaced, so a tracker must find a dark disc exactly where the frame has it.
    """

    def __init__(self, monkeypatch):
        import torch
        import torch.nn.functional as F

        import samem.track.tracker as tracker_mod
        from samem.track.preprocess import IMAGENET_MEAN, IMAGENET_STD

        self.inputs = None
        encode, step = tracker_mod.encode_images, tracker_mod.track_step

        def encode_and_keep(model, images):
            self.inputs = images
            return encode(model, images)

        def step_with_oracle(model, features, memories, frame_idx, boxes=None, memory_dtype=None, bias=None):
            out = step(model, features, memories, frame_idx, boxes, memory_dtype, bias)
            gray = self.inputs[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # back to [0, 1]
            dark = F.avg_pool2d((gray < 0.25).float(), 4)  # fraction of dark pixels, at SAM's 1/4 scale
            logits = (dark - 0.5) * 20.0
            out.low_res_logits = logits.expand(len(memories), -1, -1, -1)
            present = (logits > 0).flatten(1).any(dim=1)
            out.object_score_logits = torch.where(present, 10.0, -10.0).expand(len(memories))
            return out

        monkeypatch.setattr(tracker_mod, "encode_images", encode_and_keep)
        monkeypatch.setattr(tracker_mod, "track_step", step_with_oracle)


# ---------------------------------------------------------------------- recordings
RECORDER_SHAPE = (16, 20)


def recorder_frame_data(t: int):
    """Deterministic content for frame t on :data:`RECORDER_SHAPE`: labels, raw frame, two track rows."""
    h, w = RECORDER_SHAPE
    labels = np.zeros((h, w), np.uint16)
    labels[t % h, :5] = 1
    labels[:3, t % w] = 2
    raw = np.full((h, w), t, np.uint16)
    tracks = pd.DataFrame(
        {
            "frame": [t, t],
            "particle": [1, 2],
            "x": [2.0, float(t % w)],
            "y": [float(t % h), 1.0],
            "area": [5.0, 3.0],
            "orientation": [0.0, np.pi / 2],
            "eccentricity": [0.9, 0.8],
            "score": [0.5, 0.25],
            "present": [True, t % 2 == 0],
            "edge": [False, t % 3 == 0],
            "sigma": [0.5 + t, np.nan],
        }
    )
    return labels, raw, tracks


# ---------------------------------------------------------------------- bench/ scripts
def load_bench_script(name: str):
    """Import ``bench/<name>.py`` as module ``name`` (registered in ``sys.modules``: dataclasses
    look their module up while being built)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
