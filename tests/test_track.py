"""StreamingTracker with the real (random-weight) tiny SAM 2: API, bookkeeping, bounded state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import samem
from samem.errors import SamemError
from samem.eval.metrics import iou
from samem.model import build_model
from samem.track import ObjectResult, StreamingTracker, TrackerOptions
from samem.track.presence import PresenceRule


@pytest.fixture(scope="module")
def frames(drifting_discs):
    return drifting_discs


BOXES = {1: (13, 23, 28, 38), "b": (63, 43, 78, 58)}


def run(tracker, frames, boxes=BOXES, n=None):
    results = [tracker.start(frames[0], boxes)]
    results += [tracker.step(f) for f in frames[1:n]]
    return results


# ---------------------------------------------------------------------- results and options
def test_public_names_and_result_fields(tiny, frames):
    assert samem.StreamingTracker is StreamingTracker
    tracker = samem.StreamingTracker(tiny, mode="roi")
    res = tracker.start(frames[0], BOXES)
    assert set(res) == set(BOXES)
    for r in res.values():
        assert isinstance(r, ObjectResult)
        assert r.mask.dtype == bool and r.mask.shape == frames.shape[1:]
        assert 0 <= r.score <= 1 and 0 <= r.iou <= 1 and isinstance(r.present, bool)
        if r.present:
            x0, y0, x1, y1 = r.bbox
            assert r.mask[y0:y1, x0:x1].sum() == r.mask.sum() > 0
            assert x0 <= r.centroid[0] < x1 and y0 <= r.centroid[1] < y1
        # a localisation error estimate exactly for the present objects the position check follows
        assert (r.sigma > 0) == (r.present and tracker.options.verify)
    assert tracker.frame_index == 0 and tracker.object_ids == list(BOXES)


def test_options_come_from_the_model_config_and_arguments(tiny):
    assert StreamingTracker(tiny).mode == "full"  # samem_tiny.yaml: tracker.mode
    assert StreamingTracker(build_model("samem_compact", "cpu")).options.crop_size_px == 128
    assert StreamingTracker(build_model("sam2.1_hiera_t", "meta")).options == TrackerOptions()
    tracker = StreamingTracker(tiny, mode="roi", context=2.5, num_threads=1)
    assert tracker.mode == "roi" and tracker.options.context == 2.5 and torch.get_num_threads() == 1
    with pytest.raises(SamemError, match="unknown tracker options \\['zoom'\\]"):
        StreamingTracker(tiny, zoom=2)
    with pytest.raises(SamemError, match="tracker mode 'crop' is not one of roi, full"):
        StreamingTracker(tiny, mode="crop")


# ---------------------------------------------------------------------- inputs
def test_dtype_and_channel_layout_do_not_change_results(tiny, frames):
    variants = {
        "uint16": (frames.astype(np.uint16) * 257),
        "float32": frames.astype(np.float32) / 255,
        "rgb": np.repeat(frames[..., None], 3, axis=3),
    }
    ref = run(StreamingTracker(tiny, mode="roi"), frames, n=6)
    for name, video in variants.items():
        out = run(StreamingTracker(tiny, mode="roi"), video, n=6)
        for t in range(6):
            for oid in BOXES:
                assert iou(out[t][oid].mask, ref[t][oid].mask) >= 0.999, (name, t, oid)
                assert out[t][oid].score == pytest.approx(ref[t][oid].score, abs=1e-4)


@pytest.mark.parametrize(
    "boxes, message",
    [
        ({}, "start needs at least one box prompt"),
        ({1: (200, 200, 220, 220)}, "empty or outside the 96 x 72 frame"),
        ({1: (30, 30, 30, 40)}, "empty or outside"),
        ({1: (40, 30, 20, 50)}, "empty or outside"),
        ({1: (1, 2, 3)}, "must be 4 finite numbers"),
        ({1: (1, 2, np.nan, 9)}, "must be 4 finite numbers"),
    ],
)
def test_bad_prompts_are_user_errors(tiny, frames, boxes, message):
    with pytest.raises(SamemError, match=message):
        StreamingTracker(tiny).start(frames[0], boxes)


def test_box_partly_outside_is_clipped(tiny, frames):
    np.testing.assert_array_equal(StreamingTracker._check_box(1, (-10, -5, 12, 9), (72, 96)), [0, 0, 12, 9])
    assert set(StreamingTracker(tiny, mode="roi").start(frames[0], {1: (-10, -5, 12, 9)})) == {1}


def test_stream_misuse_is_reported(tiny, frames):
    tracker = StreamingTracker(tiny)
    with pytest.raises(SamemError, match="call start"):
        tracker.step(frames[0])
    tracker.start(frames[0], BOXES)
    with pytest.raises(SamemError, match=r"frame size \(72, 80\) differs from this stream's \(72, 96\)"):
        tracker.step(frames[1][:, :80])
    with pytest.raises(SamemError, match="object 7 is not tracked"):
        tracker.remove(7)
    assert tracker.frame_index == 0  # failed calls did not advance the stream


# ---------------------------------------------------------------------- objects over time
@pytest.mark.parametrize("mode", ["roi", "full"])
def test_objects_are_independent_of_each_other(tiny, frames, mode):
    """Batched together or tracked alone, each object gets the same masks (own memory)."""
    together = run(StreamingTracker(tiny, mode=mode), frames, n=12)
    for oid, box in BOXES.items():
        alone = run(StreamingTracker(tiny, mode=mode), frames, {oid: box}, n=12)
        for t in range(12):
            assert iou(alone[t][oid].mask, together[t][oid].mask) >= 0.999, (oid, t)
            assert alone[t][oid].score == pytest.approx(together[t][oid].score, abs=1e-4)


def test_add_remove_and_reprompt_mid_stream(tiny, frames):
    tracker = StreamingTracker(tiny, mode="roi", max_cond_frames=2)
    tracker.start(frames[0], {1: BOXES[1]})
    for f in frames[1:4]:
        assert set(tracker.step(f)) == {1}
    res = tracker.step(frames[4], {"b": BOXES["b"]})  # add
    assert set(res) == {1, "b"}
    assert list(tracker._objects["b"].memory.cond) == [4]
    # an object added later behaves as if its stream had started on that frame
    late = run(StreamingTracker(tiny, mode="roi"), frames[4:], {"b": BOXES["b"]}, n=6)
    for t in range(5, 10):
        res = tracker.step(frames[t])
        assert iou(res["b"].mask, late[t - 4]["b"].mask) >= 0.999
    tracker.remove(1)
    assert set(tracker.step(frames[10])) == {"b"}
    prompted = [4]
    for box in ((60, 40, 76, 56), (61, 40, 77, 56), (62, 39, 78, 55)):  # corrections
        tracker.step(frames[tracker.frame_index + 1])
        tracker.step(frames[tracker.frame_index + 1], {"b": box})
        prompted.append(tracker.frame_index)
        memory = tracker._objects["b"].memory
        assert max(memory.cond) == prompted[-1] and not memory.non_cond  # recent memory cleared
    assert sorted(memory.cond) == prompted[-2:]  # max_cond_frames=2: the most recent prompts are kept


def test_absent_frames_are_remembered_as_absent(tiny, frames):
    """SAM 2 says 'absent': reported absent, memory still written (with SAM 2's no-object
    embedding and pointer), and the object comes back when the score does."""
    head = tiny.sam_mask_decoder.pred_obj_score_head
    forward, offset = head.forward, {"value": 0.0}
    head.forward = lambda x: forward(x) + offset["value"]
    try:  # the random tiny model's predicted IoUs are arbitrary: no IoU condition to come back
        tracker = StreamingTracker(
            tiny, mode="roi", reappear_iou=0.0, verify=False
        )  # SAM 2's own rules under test (no position check)
        tracker.start(frames[0], BOXES)
        offset["value"] = 5.0
        tracker.step(frames[1])
        centre = dict((k, o.centre) for k, o in tracker._objects.items())
        offset["value"] = -1000.0
        for t in range(2, 5):
            for r in tracker.step(frames[t]).values():
                assert not r.present and r.bbox is None and math.isnan(r.centroid[0]) and not r.mask.any()
        for oid, obj in tracker._objects.items():
            assert obj.centre == centre[oid]
            absent = [obj.memory.non_cond[t] for t in (2, 3, 4)]
            assert all(float(e.object_score_logits) < 0 and e.maskmem_features is not None for e in absent)
            assert torch.allclose(absent[0].obj_ptr[0], tiny.no_obj_ptr[0])  # SAM 2's no-object pointer
        offset["value"] = 5.0
        assert all(r.present for r in tracker.step(frames[5]).values())
    finally:
        head.forward = forward


@pytest.mark.parametrize("reappear", [0.9, 0.5])
def test_hysteresis_needs_a_higher_score_to_come_back(tiny, frames, reappear):
    """reappear_score: once absent, an object must reach that probability to be present again
    (and is remembered as absent until it does); a present object stays present above 0.5."""
    head = tiny.sam_mask_decoder.pred_obj_score_head
    forward, value = head.forward, {"logit": 5.0}
    head.forward = lambda x: torch.full_like(forward(x), value["logit"])
    try:
        tracker = StreamingTracker(tiny, mode="roi", reappear_score=reappear, reappear_iou=0.0)
        assert all(r.present for r in tracker.start(frames[0], BOXES).values())
        value["logit"] = -5.0
        assert not any(r.present for r in tracker.step(frames[1]).values())
        value["logit"] = 1.0  # probability 0.73: below 0.9, above 0.5
        back = tracker.step(frames[2])
        want = 1 / (1 + math.exp(-(1.0 - math.log(reappear / (1 - reappear)))))
        for oid, r in back.items():
            assert r.present == (reappear == 0.5) and r.score == pytest.approx(want, abs=1e-4)
            stored = tracker._objects[oid].memory.non_cond[2].object_score_logits
            assert (float(stored) > 0) == (reappear == 0.5)  # memory follows the decision
        value["logit"] = 3.0  # probability 0.95
        assert all(r.present for r in tracker.step(frames[3]).values())
        value["logit"] = 1.0  # present objects stay present above 0.5
        assert all(r.present for r in tracker.step(frames[4]).values())
    finally:
        head.forward = forward
    with pytest.raises(SamemError, match="reappear_score"):
        StreamingTracker(tiny, reappear_score=0.3)


@pytest.mark.parametrize("mode", ["roi", "full"])
@pytest.mark.parametrize("smooth", [1, 4])
def test_state_is_bounded(tiny, frames, mode, smooth):
    tracker = StreamingTracker(tiny, mode=mode, smooth_frames=smooth, verify=False)  # SAM 2's memory layout
    run(tracker, frames, n=25)
    sizes = []
    for f in frames[25:]:
        present = all(r.present for r in tracker.step(f).values())
        sizes.append(tracker.state_nbytes())
    assert present and len(set(sizes)) == 1  # not a byte more per frame
    assert all(o.smoother.nbytes() == (smooth - 1) * 4 * o.side**2 for o in tracker._objects.values())
    for obj in tracker._objects.values():
        memory = obj.memory
        spatial = [t for t, e in memory.non_cond.items() if e.maskmem_features is not None]
        assert sorted(spatial) == list(range(34, 40))  # the last num_maskmem - 1 = 6 frames
        assert sorted(memory.non_cond) == list(range(25, 40))  # pointers of the last 16 - 1 frames
        assert list(memory.cond) == [0]


@pytest.mark.parametrize("mode", ["roi", "full"])
def test_frames_smaller_than_the_model_input(tiny, mode):
    """A 20 x 30 frame: ROI windows (64 px) overhang it on all sides, full mode upsamples it."""
    frames = np.random.default_rng(3).integers(0, 4000, (3, 20, 30)).astype(np.uint16)
    tracker = StreamingTracker(tiny, mode=mode)
    for res in run(tracker, frames, {1: (5, 5, 15, 14)}):
        assert res[1].mask.shape == (20, 30)
    assert tracker.frame_index == 2


def test_presence_rule_finding_again():
    """PresenceRule, finding again: score (after the hysteresis shift), predicted IoU and
    consecutive frames."""
    rule = PresenceRule(reappear_score=0.9, reappear_iou=0.6, reappear_frames=2)
    shift = math.log(0.9 / 0.1)
    scores = torch.tensor([[5.0], [5.0], [5.0], [1.0], [5.0]])
    ious = torch.tensor([[0.7, 0.2], [0.5, 0.55], [0.65, 0.1], [0.9, 0.9], [0.1, 0.1]])
    absent = torch.tensor([True, True, True, True, False])
    pending = torch.tensor([1, 1, 0, 5, 0])
    gate = rule.gate(absent, pending, torch.zeros(5, dtype=torch.int64))
    out = gate(scores, ious)[:, 0]
    assert out[0] == pytest.approx(5.0 - shift)  # passed, confirmed on its 2nd frame: present
    assert out[1] < 0 and out[2] < 0  # IoU too low / passed but not yet confirmed: absent
    assert out[2] == pytest.approx(-1e-3)  # held just below 0.5
    assert out[3] == pytest.approx(1.0 - shift)  # score below 0.9: absent whatever the pending count
    assert out[4] == 5.0  # present objects are left alone
    assert gate.passed.tolist() == [True, False, True, False, False]
    # objects not last seen near the edge (strict False) need the score only
    lax = rule.gate(
        absent, pending, torch.zeros(5, dtype=torch.int64), torch.tensor([True, False, False, True, True])
    )
    out = lax(scores, ious)[:, 0]
    assert out[1] == pytest.approx(5.0 - shift) and out[2] == pytest.approx(5.0 - shift)
    assert out[0] == pytest.approx(5.0 - shift) and out[3] < 0
    assert not PresenceRule().active and PresenceRule(reappear_frames=2).active
    assert PresenceRule(lost_iou=0.3).active


@pytest.mark.parametrize(("min_iou", "needed"), [(0.6, 1), (0.0, 3)])
def test_reappear_iou_and_frames(tiny, frames, min_iou, needed):
    """reappear_iou / reappear_frames: an absent object with a high score comes back only with a
    good predicted IoU and after enough consecutive frames; memory follows the decision."""
    decoder = tiny.sam_mask_decoder
    head, iou_head = decoder.pred_obj_score_head, decoder.iou_prediction_head
    forward, iou_forward = head.forward, iou_head.forward
    value = {"logit": 5.0, "iou": 0.9}
    head.forward = lambda x: torch.full_like(forward(x), value["logit"])
    iou_head.forward = lambda x: torch.full_like(iou_forward(x), value["iou"])
    video = frames
    try:
        tracker = StreamingTracker(
            tiny, mode="roi", reappear_iou=min_iou, reappear_frames=needed, reappear_edge=1000.0, verify=False
        )
        assert all(r.present for r in tracker.start(video[0], BOXES).values())
        value["logit"] = -5.0
        assert not any(r.present for r in tracker.step(video[1]).values())
        value["logit"], value["iou"] = 5.0, (0.5 if min_iou else 0.9)
        t = 2
        for _ in range(needed - 1 if needed > 1 else 2):  # refused: IoU too low, or not yet confirmed
            res = tracker.step(video[t])
            assert not any(r.present for r in res.values())
            assert all(r.score == pytest.approx(0.5, abs=1e-3) for r in res.values())
            stored = tracker._objects[1].memory.non_cond[t].object_score_logits
            assert float(stored) < 0  # remembered as absent
            t += 1
        value["iou"] = 0.9
        assert all(r.present for r in tracker.step(video[t]).values())
        value["logit"] = 1.0  # present objects stay present above 0.5 whatever the checks
        value["iou"] = 0.1
        assert all(r.present for r in tracker.step(video[t + 1]).values())
    finally:
        head.forward, iou_head.forward = forward, iou_forward
    for bad in ({"reappear_iou": 1.0}, {"reappear_iou": -0.1}, {"reappear_frames": 0}):
        with pytest.raises(SamemError, match=next(iter(bad))):
            StreamingTracker(tiny, **bad)


def test_presence_rule_losing():
    """PresenceRule, losing: a present object is held absent once its predicted IoU has been
    below lost_iou on lost_frames consecutive frames; absent objects are not touched by it."""
    rule = PresenceRule(lost_iou=0.4, lost_frames=3)
    scores = torch.tensor([[4.0], [4.0], [4.0], [-2.0]])
    ious = torch.tensor([[0.3], [0.3], [0.5], [0.1]])
    absent = torch.tensor([False, False, False, True])
    gate = rule.gate(absent, torch.zeros(4, dtype=torch.int64), torch.tensor([2, 1, 7, 9]))
    out = gate(scores, ious)[:, 0]
    assert out[0] == pytest.approx(-1e-3)  # third weak frame: lost
    assert out[1] == 4.0 and out[2] == 4.0  # second weak frame / good IoU: kept
    assert out[3] == -2.0
    assert gate.weak.tolist() == [True, True, False, False]


def test_lost_iou_in_the_tracker(tiny, frames):
    """lost_iou / lost_frames: a present object with a poor predicted IoU is reported (and
    remembered) absent after lost_frames frames, and its counter restarts on a good frame."""
    decoder = tiny.sam_mask_decoder
    head, iou_head = decoder.pred_obj_score_head, decoder.iou_prediction_head
    forward, iou_forward, value = head.forward, iou_head.forward, {"iou": 0.9}
    head.forward = lambda x: torch.full_like(forward(x), 5.0)
    iou_head.forward = lambda x: torch.full_like(iou_forward(x), value["iou"])
    try:
        tracker = StreamingTracker(
            tiny, mode="roi", lost_iou=0.5, lost_frames=2, reappear_score=0.5, reappear_iou=0.0, verify=False
        )
        assert all(r.present for r in tracker.start(frames[0], BOXES).values())
        steps = [(1, 0.2, True), (2, 0.9, True), (3, 0.2, True), (4, 0.2, False), (5, 0.2, True)]
        for t, iou_now, want in steps:
            value["iou"] = iou_now
            res = tracker.step(frames[t])
            assert all(r.present == want for r in res.values()), t
            for oid in tracker.object_ids:
                stored = float(tracker._objects[oid].memory.non_cond[t].object_score_logits)
                assert (stored > 0) == want  # memory follows the decision
    finally:
        head.forward, iou_head.forward = forward, iou_forward
    with pytest.raises(SamemError, match="lost_iou"):
        StreamingTracker(tiny, lost_iou=1.5)


def test_reappear_iou_applies_near_the_edge_only(tiny, frames):
    """reappear_edge: an absent object last seen near the border (it has probably left the
    field) needs reappear_iou to come back; one that vanished in the middle needs the score only."""
    decoder = tiny.sam_mask_decoder
    head, iou_head = decoder.pred_obj_score_head, decoder.iou_prediction_head
    forward, iou_forward, value = head.forward, iou_head.forward, {"logit": 5.0}
    head.forward = lambda x: torch.full_like(forward(x), value["logit"])
    iou_head.forward = lambda x: torch.full_like(iou_forward(x), 0.3)  # below reappear_iou
    try:
        tracker = StreamingTracker(tiny, mode="roi", reappear_iou=0.6, reappear_edge=1.0, verify=False)
        tracker.start(frames[0], BOXES)
        value["logit"] = -5.0
        tracker.step(frames[1])
        objs = tracker._objects
        objs[1].centre = (0.5 * objs[1].size, 30.0)  # half a box size from the left border
        objs["b"].centre = (48.0, 36.0)  # the middle of the 96 x 72 frame
        near = [tracker._presence.near_edge(objs[k].centre, objs[k].size, frames.shape[1:]) for k in (1, "b")]
        assert near == [True, False]
        value["logit"] = 5.0
        res = tracker.step(frames[2])
        assert not res[1].present and res["b"].present
    finally:
        head.forward, iou_head.forward = forward, iou_forward
    with pytest.raises(SamemError, match="reappear_edge"):
        StreamingTracker(tiny, reappear_edge=-1.0)


# ---------------------------------------------------------------------- mirrored views
def test_mirror_is_equivariant_in_full_mode(tiny, frames):
    """mirror: tracking the left-right mirrored video gives the mirrored results (the two views
    swap roles), so flipping the input, its box prompts and the mirrored logits back is right."""
    w = frames.shape[2]
    flipped = np.ascontiguousarray(frames[:, :, ::-1])
    boxes = {k: (w - b[2], b[1], w - b[0], b[3]) for k, b in BOXES.items()}
    direct = run(StreamingTracker(tiny, mode="full", mirror=True), frames, n=10)
    mirrored = run(StreamingTracker(tiny, mode="full", mirror=True), flipped, boxes, n=10)
    plain = run(StreamingTracker(tiny, mode="full"), frames, n=10)
    differs = 0.0
    for t in range(10):
        for k in BOXES:
            a, b = direct[t][k], mirrored[t][k]
            assert a.present == b.present and a.score == pytest.approx(b.score, abs=1e-5)
            assert iou(a.mask, b.mask[:, ::-1]) >= 0.999, (k, t)
            if a.present:
                assert a.centroid[0] == pytest.approx(w - 1 - b.centroid[0], abs=1e-3)
                assert a.centroid[1] == pytest.approx(b.centroid[1], abs=1e-3)
            differs = max(differs, abs(a.score - plain[t][k].score))
    assert differs > 1e-3  # the ensemble is not the direct view alone


def test_mirror_keeps_a_second_bounded_memory(tiny, frames):
    tracker = StreamingTracker(tiny, mode="roi", mirror=True, verify=False)  # no frames kept for the check
    run(tracker, frames, n=25)
    single = StreamingTracker(tiny, mode="roi", verify=False)
    run(single, frames, n=25)
    for obj in tracker._objects.values():
        assert obj.twin is not None and obj.twin.layout() == obj.memory.layout()
    sizes = [tracker.step(f) and tracker.state_nbytes() for f in frames[25:30]]
    assert len(set(sizes)) == 1  # bounded
    memories = sum(o.memory.nbytes() for o in tracker._objects.values())
    history = sum(o.smoother.nbytes() + o.matched.nbytes() for o in tracker._objects.values())
    assert sizes[0] == 2 * memories + history
    tracker.step(frames[30], {1: BOXES[1]})  # a correcting prompt clears both views' recent memory
    twin = tracker._objects[1].twin
    assert not twin.non_cond and max(twin.cond) == tracker.frame_index
    assert all(o.twin is None for o in single._objects.values())
    with pytest.raises(SamemError, match="mirror must be true or false"):
        StreamingTracker(tiny, mirror="yes")


def test_paired_gate_decides_once_on_the_averages():
    from samem.track.presence import paired_gate
    from samem.track.tracker import mirror_boxes

    rule = PresenceRule(reappear_score=0.9, reappear_iou=0.0, lost_iou=0.5, lost_frames=1)
    absent = torch.tensor([True, False])
    gate = rule.gate(absent, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    scores = torch.tensor([[4.0], [2.0], [2.0], [2.0]])  # object 0: views 4 and 2, object 1: 2 and 2
    ious = torch.tensor([[0.9, 0.1], [0.3, 0.2], [0.5, 0.9], [0.9, 0.8]])  # object 1: best 0.3 / 0.9
    out = paired_gate(gate, 2)(scores, ious)
    assert torch.equal(out[:2], out[2:])
    # object 0 was absent: mean logit 3 lowered by logit(0.9) = 2.197 > 0, so found again
    assert float(out[0]) == pytest.approx(3.0 - math.log(9), abs=1e-5)
    # object 1: mean best IoU 0.6 >= lost_iou 0.5, so not weak (its direct view alone would be)
    assert float(out[1]) == 2.0 and not bool(gate.weak[1])
    assert torch.equal(paired_gate(None, 2)(scores, ious)[:2], torch.tensor([[3.0], [2.0]]))
    box = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    assert mirror_boxes(box, 128).tolist() == [[98.0, 20.0, 118.0, 40.0]]
