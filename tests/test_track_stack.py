"""Object-aligned frame stacking (``stack_frames``): FrameStack and the tracker's second look."""

from __future__ import annotations

import numpy as np
import pytest

from samem.errors import SamemError
from samem.track import StreamingTracker
from samem.track.stack import FrameStack


@pytest.fixture(scope="module")
def frames(drifting_discs):
    """The two drifting discs under much stronger noise (so that stacking changes the masks)."""
    noise = np.random.default_rng(0).normal(0, 40, drifting_discs.shape)
    return np.clip(drifting_discs + noise, 0, 255).astype(np.uint8)


BOXES = {1: (13, 23, 28, 38), "b": (63, 43, 78, 58)}


def run(tracker, frames, n):
    return [tracker.start(frames[0], BOXES)] + [tracker.step(f) for f in frames[1:n]]


def disc(shape, cx, cy, r=6.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)


def test_stack_aligns_a_moving_particle_and_averages_the_noise():
    rng = np.random.default_rng(1)
    stack = FrameStack(8)
    clean_now = None
    for t in range(8):  # a disc moving 3 px right and 1 px down per frame, windows fixed at (0, 0)
        cx, cy = 20 + 3 * t, 24 + t
        clean = disc((64, 64), cx, cy)
        noisy = clean + rng.normal(0, 1.0, clean.shape).astype(np.float32)
        if t < 7:
            stack.push(noisy, (0, 0), (cx, cy))
        else:
            clean_now, now = clean, (noisy, (0, 0), (cx, cy))
    out = stack.stacked(*now)
    assert len(stack) == 7 and stack.nbytes() == 7 * 64 * 64 * 4
    inner = (slice(10, 54), slice(24, 54))  # covered by all eight windows after the shifts
    resid = (out - clean_now)[inner]
    single = (now[0] - clean_now)[inner]
    assert resid.std() < 0.45 * single.std()  # about 1/sqrt(8) = 0.35 of one frame's noise
    # the disc is where it is now, not smeared along its path
    assert out[31, 41] > 0.7 and out[24, 20] < 0.3


def test_stack_shifts_by_the_windows_origins_and_centroids():
    img = disc((40, 40), 20, 20)
    stack = FrameStack(2)
    stack.push(img, (100, 200), (120.0, 220.0))  # the same particle, window 5 px further left
    now = disc((40, 40), 25, 20)
    out = stack.stacked(now, (95, 200), (120.0, 220.0))
    np.testing.assert_allclose(out[:, 5:], now[:, 5:], atol=1e-6)  # the past frame lands on it exactly
    assert FrameStack(1).stacked(now, (0, 0), (0, 0)) is not now  # a copy even with no history
    stack.clear()
    assert len(stack) == 0 and stack.nbytes() == 0
    with pytest.raises(ValueError):
        FrameStack(0)


def test_second_look_changes_masks_only(tiny, frames):
    """Without stack_memory the tracking (presence, scores, windows, memory) is that of the
    single frame; only the reported masks (and what is measured on them) change."""
    plain = StreamingTracker(tiny, mode="roi", centroid="mask")
    stacked = StreamingTracker(tiny, mode="roi", centroid="mask", stack_frames=4)
    a, b = run(plain, frames, n=12), run(stacked, frames, n=12)
    changed = 0
    for t in range(12):
        for k in BOXES:
            assert a[t][k].present == b[t][k].present and a[t][k].score == b[t][k].score
            changed += int(not np.array_equal(a[t][k].mask, b[t][k].mask))
    assert changed > 0
    for k in BOXES:
        pa, pb = plain._objects[k], stacked._objects[k]
        assert pa.centre == pb.centre
        assert sorted(pa.memory.non_cond) == sorted(pb.memory.non_cond)
        for i, e in pa.memory.non_cond.items():
            assert float(e.object_score_logits) == float(pb.memory.non_cond[i].object_score_logits)
    # stack_memory writes the stacked window's memory instead: tracking may then differ
    with_memory = StreamingTracker(tiny, mode="roi", centroid="mask", stack_frames=4, stack_memory=True)
    c = run(with_memory, frames, n=12)
    assert any(c[t][k].score != a[t][k].score for t in range(2, 12) for k in BOXES)


def test_stack_state_is_bounded_and_cleared(tiny, frames):
    tracker = StreamingTracker(tiny, mode="roi", stack_frames=3)
    run(tracker, frames, n=20)
    sizes = [tracker.step(f) and tracker.state_nbytes() for f in frames[20:26]]
    assert len(set(sizes)) == 1
    for obj in tracker._objects.values():
        if not obj.absent:
            assert len(obj.stack) == 2 and obj.stack.nbytes() == 2 * 4 * obj.side**2
    tracker.step(frames[26], {1: BOXES[1]})  # a correcting prompt starts the history again
    assert len(tracker._objects[1].stack) == 1


def test_stack_options_are_checked(tiny):
    with pytest.raises(SamemError, match="stack_frames"):
        StreamingTracker(tiny, mode="roi", stack_frames=0)
    with pytest.raises(SamemError, match="needs mode roi"):
        StreamingTracker(tiny, mode="full", stack_frames=3)
    with pytest.raises(SamemError, match="needs mode roi"):
        StreamingTracker(tiny, mode="roi", stack_frames=3, mirror=True)


# ---------------------------------------------------------------------- wider search while absent
def test_search_moves_only_the_waiting_window(tiny, frames):
    """search_zoom: while an object is absent a wider look runs from its memory; what it finds
    moves the waiting window, nothing else (reported absent, same memory, other objects alone)."""
    import torch

    head = tiny.sam_mask_decoder.pred_obj_score_head
    forward = head.forward
    state = {"first": -5.0, "search": 5.0}

    def fake(x):  # the first pass has both objects (object 1 absent, "b" present); a search, one
        out = forward(x)
        if out.shape[0] == 2:
            return torch.tensor([[state["first"]], [5.0]], dtype=out.dtype).expand_as(out).clone()
        return torch.full_like(out, state["search"])

    head.forward = fake
    try:
        kw = dict(mode="roi", reappear_iou=0.0, centroid="mask", verify=False)
        plain, wide = StreamingTracker(tiny, **kw), StreamingTracker(tiny, search_zoom=2.0, **kw)
        state["first"] = 5.0
        for tr in (plain, wide):
            tr.start(frames[0], BOXES)
        state["first"] = -5.0
        moved = False
        for t in range(1, 4):
            a, b = plain.step(frames[t]), wide.step(frames[t])
            assert not a[1].present and not b[1].present and not b[1].mask.any()
            assert a["b"].present and np.array_equal(a["b"].mask, b["b"].mask)
            assert plain._objects["b"].centre == wide._objects["b"].centre
            moved |= plain._objects[1].centre != wide._objects[1].centre
            pm, wm = plain._objects[1].memory, wide._objects[1].memory
            assert (
                sorted(pm.non_cond) == sorted(wm.non_cond) and float(wm.non_cond[t].object_score_logits) < 0
            )
        assert moved  # the plain tracker's window waits where the object was last seen
        # a search that finds nothing leaves the window where it waits
        state["search"] = -5.0
        before = wide._objects[1].centre
        wide.step(frames[4])
        assert wide._objects[1].centre == before
    finally:
        head.forward = forward
    with pytest.raises(SamemError, match="search_zoom"):
        StreamingTracker(tiny, mode="roi", search_zoom=0.5)
    with pytest.raises(SamemError, match="needs mode roi"):
        StreamingTracker(tiny, mode="full", search_zoom=2.0)
