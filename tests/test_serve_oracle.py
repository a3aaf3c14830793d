"""The truth-reading stand-in for the SAM 2 tracker (tests/helpers: ``OracleTracker``) checked itself."""

from __future__ import annotations

import numpy as np
from helpers import OracleTracker, small_video, truth_boxes


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
