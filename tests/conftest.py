"""Fixtures shared by the test suite (helper functions and classes: tests/helpers)."""

import subprocess

import numpy as np
import pytest
import torch
from helpers import ANY, CLI, wait_ready

from samem.model import build_model


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread: two cores shared with other jobs make OpenMP threads stall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """The tiny SAM 2 config with seeded random weights (fast, for mechanics and equivalence)."""
    return build_model("samem_tiny", "cpu", seed=0)


@pytest.fixture(scope="module")
def drifting_discs():
    """Two dark discs drifting on noise, 40 frames of 72 x 96 uint8 (boxes: tests/test_track.py)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:72, :96]
    out = []
    for t in range(40):
        f = rng.normal(160, 12, (72, 96))
        for cx, cy in ((20 + 0.5 * t, 30), (70, 50 - 0.4 * t)):
            f[(xx - cx) ** 2 + (yy - cy) ** 2 <= 36] = 60
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture
def serve(tmp_path):
    """A real ``samem serve`` process (tiny model, auto-prompt, recording to tmp_path/rec.h5):
    ``(process, endpoints)``."""
    config = tmp_path / "serve.yaml"
    # autoprompt.frames 1: the detector's boxes prompt frame 0 (the shipped default averages 5 frames)
    config.write_text("recording:\n  flush_every: 2\nstats:\n  every_frames: 5\nautoprompt:\n  frames: 1\n")
    proc = subprocess.Popen(
        CLI
        + ["serve", "--ingest", ANY, "--publish", ANY, "--control", ANY, "--model", "samem_tiny"]
        + [
            "--auto-prompt",
            "--policy",
            "block",
            "--record",
            str(tmp_path / "rec.h5"),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, wait_ready(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
