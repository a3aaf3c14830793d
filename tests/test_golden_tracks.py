"""No behaviour change: ``samem analyze``'s path (TIFF reader, settings, shipped default model,
session, tracker, table writer) gives the stored tracks on a fixed synthetic clip.

The reference ``tests/data/golden_tracks.csv`` was written before issue 26's refactoring. A change
that is *meant* to change the tracks (a new default model or tracker setting) regenerates it with
``SAMEM_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_golden_tracks.py`` and says so in its commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from samem.stream.offline import analyze_video
from samem.stream.service import model_tracker_factory
from samem.stream.settings import load_settings
from samem.synthetic import SynthParams, generate
from samem.synthetic.clips import first_frame_boxes

GOLDEN = Path(__file__).parent / "data" / "golden_tracks.csv"


def test_tracks_match_the_stored_reference(tmp_path):
    params = SynthParams.from_preset("thin", frames=10, size=192, n_particles=2, seed=2626, pixel_size_nm=1.0)
    video = generate(params)
    boxes, ids = first_frame_boxes(video.labels[0])
    assert len(ids) == 2
    src = tmp_path / "clip.tif"
    tifffile.imwrite(src, video.frames)
    settings = load_settings()
    factory, name = model_tracker_factory(settings["model"])
    analyze_video(
        src,
        tmp_path / "out",
        factory(),
        settings,
        boxes=(0, {int(i): tuple(float(v) for v in b) for i, b in zip(ids, boxes)}),
        pixel_size_nm=1.0,
        frame_interval_s=0.05,
        plots=False,
        model_name=name,
    )
    got = pd.read_csv(tmp_path / "out" / "tracks.csv")
    if os.environ.get("SAMEM_REGEN_GOLDEN"):
        got.to_csv(GOLDEN, index=False, float_format="%.9g")
    want = pd.read_csv(GOLDEN)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    assert len(got) >= 15  # both particles followed over most of the clip
    for col in got.columns:
        if pd.api.types.is_float_dtype(want[col]) or pd.api.types.is_float_dtype(got[col]):
            np.testing.assert_allclose(got[col], want[col], rtol=0, atol=1e-6, equal_nan=True, err_msg=col)
        else:
            assert got[col].tolist() == want[col].tolist(), col
