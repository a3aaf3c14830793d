"""Batched tracker internals (issue 25): exact row gathering, opt-in bf16 encoder, device path.

``SAMEM_TEST_DEVICE=cuda`` runs the device tests on a GPU (``bench/gpu_check.sh``); on CPU they
compare the CPU path with itself or are skipped.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from samem.eval.metrics import iou
from samem.model import build_model
from samem.track import StreamingTracker
from samem.track.core import Features, encode_images
from samem.track.preprocess import to_model_input

DEVICE = torch.device(os.environ.get("SAMEM_TEST_DEVICE", "cpu"))
BOXES = {1: (13, 23, 28, 38), "b": (63, 43, 78, 58), 3: (40, 10, 56, 26)}


def _features(model, n: int, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    images = [rng.random((model.image_size, model.image_size), dtype=np.float32) for _ in range(n)]
    with torch.inference_mode():
        return encode_images(model, to_model_input(images, next(model.parameters()).device))


@pytest.mark.parametrize("index", [[3, 0, 4], [1], [0, 1, 2, 3, 4], [4, 4, 2]])
def test_take_equals_index_select_and_keeps_its_layout_where_read(tiny, index):
    feats = _features(tiny, 5)
    got = feats.take(index)
    idx = torch.tensor(index)
    for level, (x, y) in enumerate(
        zip(feats.vision_feats + feats.vision_pos, got.vision_feats + got.vision_pos)
    ):
        want = x.index_select(1, idx)
        assert torch.equal(y, want), level
    # the lowest-resolution level feeds memory attention: the same contiguous layout as before
    for y in (got.vision_feats[-1], got.vision_pos[-1]):
        assert y.is_contiguous()
    assert got.feat_sizes == feats.feat_sizes and got.batch_size == len(index)


def test_take_of_a_non_batch_major_tensor_falls_back(tiny):
    feats = _features(tiny, 3)
    odd = Features([x.contiguous() for x in feats.vision_feats], feats.vision_pos, feats.feat_sizes)
    got = odd.take([2, 0])
    for x, y in zip(odd.vision_feats, got.vision_feats):
        assert torch.equal(y, x.index_select(1, torch.tensor([2, 0])))


def test_features_to_dtype(tiny):
    feats = _features(tiny, 2).to(torch.bfloat16)
    assert all(x.dtype == torch.bfloat16 for x in feats.vision_feats + feats.vision_pos)


def test_cpu_bf16_is_opt_in_and_close(tiny, drifting_discs):
    roi = dict(mode="roi", crop_size_px=32, smooth_frames=1, verify=False)
    ref = StreamingTracker(tiny, **roi)
    assert not ref.options.cpu_bf16  # fp32 stays the reference
    fast = StreamingTracker(tiny, cpu_bf16=True, **roi)
    a = [ref.start(drifting_discs[0], BOXES)] + [ref.step(f) for f in drifting_discs[1:6]]
    b = [fast.start(drifting_discs[0], BOXES)] + [fast.step(f) for f in drifting_discs[1:6]]
    for ra, rb in zip(a, b):
        for oid in BOXES:
            assert rb[oid].mask.dtype == bool and rb[oid].mask.shape == ra[oid].mask.shape
            assert isinstance(rb[oid].score, float) and 0 <= rb[oid].score <= 1
    feats = fast._encode_inputs([np.zeros((tiny.image_size,) * 2, np.float32)])
    assert feats.vision_feats[-1].dtype == torch.float32  # cast back: the rest of the step is fp32


@pytest.mark.skipif(DEVICE.type == "cpu", reason="set SAMEM_TEST_DEVICE=cuda to compare a device with CPU")
def test_device_tracks_like_cpu(drifting_discs):  # pragma: no cover - needs a GPU
    results = {}
    for dev in ("cpu", DEVICE):
        model = build_model("samem_tiny", dev, seed=0)
        tracker = StreamingTracker(model, mode="roi", crop_size_px=32, cuda_bf16=False)
        assert tracker.device.type == torch.device(dev).type
        out = [tracker.start(drifting_discs[0], BOXES)] + [tracker.step(f) for f in drifting_discs[1:15]]
        results[str(dev)] = out
    cpu, dev = results["cpu"], results[str(DEVICE)]
    for rc, rd in zip(cpu, dev):
        for oid in BOXES:
            assert rc[oid].present == rd[oid].present
            if rc[oid].present:
                assert iou(rc[oid].mask, rd[oid].mask) > 0.9
                assert np.hypot(*np.subtract(rc[oid].centroid, rd[oid].centroid)) < 0.5


@pytest.mark.skipif(DEVICE.type == "cpu", reason="set SAMEM_TEST_DEVICE=cuda")
def test_device_default_options_run(drifting_discs):  # pragma: no cover - needs a GPU
    tracker = StreamingTracker(build_model("samem_compact", DEVICE, seed=0), mode="roi")
    res = [tracker.start(drifting_discs[0], BOXES)] + [tracker.step(f) for f in drifting_discs[1:10]]
    assert all(set(r) == set(BOXES) for r in res)
    assert tracker.state_nbytes() > 0


def test_shared_position_encoding_gives_the_same_features(tiny):
    from samem.track.core import share_position_encoding

    model = build_model("samem_tiny", "cpu", seed=0)
    before = _features(model, 3)
    share_position_encoding(model)
    share_position_encoding(model)  # idempotent
    after = _features(model, 3)
    for x, y in zip(before.vision_feats + before.vision_pos, after.vision_feats + after.vision_pos):
        assert torch.equal(x, y)
    assert after.vision_pos[0].stride(1) == 0  # one copy for the batch
    got = after.take([2, 0])
    assert torch.equal(got.vision_pos[-1], before.take([2, 0]).vision_pos[-1])
    assert sorted(model.state_dict()) == sorted(build_model("samem_tiny", "cpu", seed=0).state_dict())
