"""Auto-prompt detector against rendered particles with known positions and SNR."""

from __future__ import annotations

import numpy as np
import pytest

from samem.errors import SamemError
from samem.stream.autoprompt import Detection, detect, new_detections

SIGMA = 10.0  # background noise, grey levels


def scene(seed, snr, radius=5, n=6, size=128, frames=1, polarity=-1):
    """Discs of per-pixel SNR ``snr`` on a background gradient with Gaussian noise; truth centres."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    clean = 100 + 20 * xx / size + 10 * yy / size
    pos = []
    while len(pos) < n:
        p = rng.uniform(15, size - 15, 2)
        if all(np.hypot(*(p - q)) > 5 * radius for q in pos):
            pos.append(p)
    for x, y in pos:
        clean[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] += polarity * snr * SIGMA
    noisy = clean + rng.normal(0, SIGMA, (frames, size, size))
    return (noisy[0] if frames == 1 else noisy), np.array(pos)


def _match(dets, pos, radius=5):
    hits, false = set(), 0
    for d in dets:
        dist = np.hypot(pos[:, 0] - d.centroid[0], pos[:, 1] - d.centroid[1])
        if dist.min() < radius:
            hits.add(int(dist.argmin()))
        else:
            false += 1
    return hits, false


@pytest.mark.parametrize("seed", range(5))
def test_finds_every_particle_with_boxes_around_them(seed):
    img, pos = scene(seed, snr=1.5)
    dets = detect(img)
    hits, false = _match(dets, pos)
    assert hits == set(range(len(pos))) and false == 0
    for x, y in pos:
        inside = [d for d in dets if d.box[0] <= x <= d.box[2] and d.box[1] <= y <= d.box[3]]
        assert len(inside) == 1
        x0, y0, x1, y1 = inside[0].box
        # the box covers the disc (diameter 10 px) and is not much larger
        assert x0 <= x - 3 and x1 >= x + 3 and y0 <= y - 3 and y1 >= y + 3
        assert x1 - x0 <= 24 and y1 - y0 <= 24
    # strongest first
    assert [d.strength for d in dets] == sorted((d.strength for d in dets), reverse=True)


def test_pure_noise_gives_almost_nothing():
    # threshold 4 sigma after smoothing: ~3e-5 per pixel, a few hundred independent patches per frame
    false = sum(len(detect(scene(s, snr=0.0)[0])) for s in range(20))
    assert false <= 2


def test_averaging_frames_rescues_low_snr():
    img, pos = scene(3, snr=0.5, frames=9)  # averaging 9 frames divides the noise by 3
    hits, false = _match(detect(img, {"frames": 9}), pos)
    assert hits == set(range(len(pos))) and false == 0


def test_bright_polarity_and_limits():
    img, pos = scene(1, snr=2.0, polarity=+1)
    assert _match(detect(img, {"polarity": "bright"}), pos)[0] == set(range(len(pos)))
    assert _match(detect(img), pos)[0] == set()  # looking for dark particles finds none
    assert len(detect(img, {"polarity": "bright", "max_objects": 2})) == 2
    assert detect(img, {"polarity": "bright", "min_area_px": 5000}) == []
    with pytest.raises(SamemError, match="unknown autoprompt"):
        detect(img, {"diameter": 3})
    with pytest.raises(SamemError, match="polarity"):
        detect(img, {"polarity": "grey"})


def test_new_detections_skip_tracked_objects():
    dets = [
        Detection((0, 0, 10, 10), (5.0, 5.0), 50, 9.0),
        Detection((30, 30, 40, 40), (35.0, 35.0), 50, 8.0),
        Detection((60, 60, 70, 70), (65.0, 65.0), 50, 7.0),
    ]
    new = new_detections(dets, {1: (7.0, 4.0), 2: (np.nan, np.nan)}, [(58, 58, 72, 72)], min_distance_px=6)
    assert [d.centroid for d in new] == [(35.0, 35.0)]
