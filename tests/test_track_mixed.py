"""One SAM 2 batch for objects whose memories differ (samem.track.mixed; issue 25)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import samem.track.tracker as tracker_mod
from samem.eval.metrics import iou
from samem.model import build_model
from samem.track import StreamingTracker
from samem.track.core import encode_images, track_step
from samem.track.memory import UNBOUNDED_FRAMES, ObjectMemory, stack_output_dict
from samem.track.mixed import conditioned_features, supported
from samem.track.preprocess import to_model_input

DEVICE = torch.device(os.environ.get("SAMEM_TEST_DEVICE", "cpu"))
BOXES = {1: (13, 23, 28, 38), "b": (63, 43, 78, 58), 3: (40, 10, 56, 26)}


def _memories(model, n_frames: int, skip: dict[int, set[int]], seed: int = 0):
    """Three objects prompted on frame 0 and propagated to ``n_frames - 1``; object ``i`` does
    not remember the frames ``skip[i]`` (as the position check keeps a frame out)."""
    rng = np.random.default_rng(seed)
    mems = [ObjectMemory(model.num_maskmem, model.max_obj_ptrs_in_encoder, 4) for _ in range(3)]
    boxes = torch.tensor([[4.0, 4.0, 20.0, 20.0], [10.0, 6.0, 30.0, 26.0], [2.0, 12.0, 14.0, 28.0]])
    with torch.inference_mode():
        for t in range(n_frames):
            images = [rng.random((model.image_size,) * 2, dtype=np.float32) for _ in range(3)]
            feats = encode_images(model, to_model_input(images, "cpu"))
            if t == 0:
                entries = track_step(model, feats, mems, t, boxes, None).entries
            else:  # one object at a time: sam2's own path, any layouts
                steps = [track_step(model, feats.take([i]), [mems[i]], t, None, None) for i in range(3)]
                entries = [s.entries[0] for s in steps]
            for i, entry in enumerate(entries):
                if t not in skip.get(i, set()):
                    mems[i].add(t, entry, is_cond=t == 0)
                mems[i].prune(t + 1)
    return mems


def _features(model, n, seed=1):
    rng = np.random.default_rng(seed)
    images = [rng.random((model.image_size,) * 2, dtype=np.float32) for _ in range(n)]
    with torch.inference_mode():
        return encode_images(model, to_model_input(images, "cpu"))


@pytest.mark.parametrize("skip", [{0: {3}}, {0: {3, 5}, 2: {1, 2, 4}}, {1: {1, 2, 3, 4, 5, 6}}])
def test_padded_memory_attention_equals_each_objects_own(skip):
    """Objects remembering different frames (fewer spatial memories, fewer pointers) in one
    padded, masked batch get what sam2's step gives each of them alone."""
    model = build_model("samem_tiny", "cpu", seed=0).eval()
    assert supported(model)
    mems = _memories(model, 8, skip)
    assert len({m.layout() for m in mems}) > 1
    feats = _features(model, 3)
    attention = model.memory_attention
    with torch.inference_mode():
        together = conditioned_features(model, feats, mems, 8)
    assert model.memory_attention is attention  # the model is read, never modified
    with torch.inference_mode():
        for i in range(3):
            one = feats.take([i])
            alone = model._prepare_memory_conditioned_features(
                8,
                False,
                one.vision_feats[-1:],
                one.vision_pos[-1:],
                one.feat_sizes[-1:],
                stack_output_dict([mems[i]]),
                UNBOUNDED_FRAMES,
            )
            assert torch.allclose(together[i : i + 1], alone, atol=2e-5, rtol=1e-5), i
        step = track_step(model, feats, mems, 8, memory_dtype=None)
        for i in range(3):
            own = track_step(model, feats.take([i]), [mems[i]], 8, memory_dtype=None)
            assert torch.allclose(step.low_res_logits[i], own.low_res_logits[0], atol=1e-4)
            assert torch.allclose(step.object_score_logits[i], own.object_score_logits[0], atol=1e-4)


def test_a_model_without_sams_memory_attention_keeps_one_batch_per_layout():
    model = build_model("samem_tiny", "cpu", seed=0).eval()
    mems = _memories(model, 4, {0: {2}})
    model.memory_attention = torch.nn.Identity()  # not sam2's MemoryAttention
    assert not supported(model)
    with pytest.raises(ValueError, match="one memory layout"):
        track_step(model, _features(model, 3), mems, 4)
    assert not StreamingTracker(model)._mixed


def test_the_tracker_runs_one_step_for_objects_whose_memories_differ(tiny, drifting_discs, monkeypatch):
    """A re-prompted object forgets its recent memory, so its layout differs from the others'
    for the next frames: one SAM 2 step per frame instead of one per layout, and the same masks
    and scores as with ``batch_memories=False``."""
    _one_step_matches_per_layout(tiny, drifting_discs, monkeypatch)


@pytest.mark.skipif(DEVICE.type == "cpu", reason="set SAMEM_TEST_DEVICE=cuda (bench/gpu_check.sh)")
def test_one_step_on_the_device_matches_per_layout(drifting_discs, monkeypatch):  # pragma: no cover - GPU
    """The padded, masked memory attention on a GPU (other attention kernels than the CPU's)."""
    model = build_model("samem_tiny", DEVICE, seed=0)
    _one_step_matches_per_layout(model, drifting_discs, monkeypatch, cuda_bf16=False)


def _one_step_matches_per_layout(model, drifting_discs, monkeypatch, **options):
    calls: list[int] = []
    inner = tracker_mod.track_step

    def counted(model, feats, memories, *a, **k):
        calls.append(len(memories))
        return inner(model, feats, memories, *a, **k)

    monkeypatch.setattr(tracker_mod, "track_step", counted)
    results, counts = {}, {}
    for batch in (False, True):
        calls.clear()
        tr = StreamingTracker(model, mode="roi", crop_size_px=32, batch_memories=batch, **options)
        out = [tr.start(drifting_discs[0], BOXES)] + [tr.step(f) for f in drifting_discs[1:4]]
        out.append(tr.step(drifting_discs[4], {"b": BOXES["b"]}))  # re-prompt: "b" forgets frames 1-3
        n = len(calls)
        out += [tr.step(f) for f in drifting_discs[5:10]]
        counts[batch] = calls[n:]
        results[batch] = out
    assert counts[True] == [3] * 5  # frames 5-9: one batch of all three
    assert len(counts[False]) > 5  # "b" ran on its own
    for ra, rb in zip(results[False], results[True]):
        for oid in BOXES:
            assert ra[oid].present == rb[oid].present
            assert rb[oid].score == pytest.approx(ra[oid].score, abs=1e-4)
            if ra[oid].present:
                assert iou(ra[oid].mask, rb[oid].mask) >= 0.99, oid
