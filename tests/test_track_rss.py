"""Bounded memory over a long stream: 5,000 frames, resident memory may grow at most 50 MB.

sam2's video predictor keeps every frame's outputs (and the whole video); a leak of one
64 x 64 float map per frame would add 80 MB here. The tracker's own tensor state must not
grow by a single byte once its memory windows are full.
"""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
import torch

from samem.model import build_model
from samem.track import StreamingTracker

N_FRAMES = 5000
WARMUP = 100  # memory windows (6 spatial frames, 15 pointers) full, allocator warmed up


@pytest.mark.slow
def test_rss_growth_over_5000_frames_is_bounded():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model("samem_tiny", "cpu", seed=0)
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 255, (8, 64, 64)).astype(np.uint8)
        tracker = StreamingTracker(model, mode="full")
        tracker.start(frames[0], {1: (20, 24, 36, 40)})
        process = psutil.Process()
        tic = time.perf_counter()
        for t in range(1, N_FRAMES):
            tracker.step(frames[t % len(frames)])
            if t == WARMUP:
                rss0, state0 = process.memory_info().rss, tracker.state_nbytes()
        growth_mb = (process.memory_info().rss - rss0) / 1e6
        print(f"{N_FRAMES} frames in {time.perf_counter() - tic:.0f} s, RSS growth {growth_mb:.1f} MB")
    finally:
        torch.set_num_threads(before)
    assert tracker.frame_index == N_FRAMES - 1
    assert tracker.state_nbytes() == state0
    assert growth_mb <= 50
