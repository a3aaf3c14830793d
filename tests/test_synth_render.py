"""Rendering: labels versus truth, determinism, contrast, boundaries, overlaps, detector noise."""

import numpy as np
import pytest

from samem.synthetic import SynthParams, generate, iter_frames
from samem.synthetic.imaging import Imaging
from samem.synthetic.render import Renderer
from samem.synthetic.shapes import Shape, blob_harmonics

SHAPES = ["sphere", "ellipse", "rod", "prism", "blob"]


def small(**over):
    base = dict(frames=4, size=160, n_particles=3, size_nm=(12.0, 30.0), seed=5)
    base.update(over)
    return SynthParams.from_preset("medium", **base)


@pytest.mark.parametrize("kind", SHAPES)
def test_label_centroid_matches_truth_for_every_shape(kind):
    video = generate(small(shapes={kind: 1.0}, frames=6, n_particles=3, size_nm=(8.0, 40.0)), workers=1)
    tr = video.tracks
    assert set(tr.columns) >= {"frame", "particle", "x", "y", "inside", "area_px"}
    inside = tr[tr.inside]
    assert len(inside) > 0
    for r in inside.itertuples():
        rows, cols = np.nonzero(video.labels[r.frame] == r.particle)
        assert rows.size == r.area_px > 0
        assert abs(cols.mean() - r.x) < 0.5 and abs(rows.mean() - r.y) < 0.5, (kind, r)


def test_blob_area_centroid_is_the_origin():
    rng = np.random.default_rng(0)
    for _ in range(5):
        shape = Shape("blob", 60.0, harmonics=blob_harmonics(0.25, rng))
        patch = shape.render(100.3, 80.7, rng.uniform(0, 6.3), 200, 200)
        rows, cols = np.nonzero(patch.mask)
        assert abs(cols.mean() + patch.cols.start - 100.3) < 0.2
        assert abs(rows.mean() + patch.rows.start - 80.7) < 0.2
        assert abs(rows.size / shape.area_px - 1) < 0.03


def test_same_seed_same_bytes_and_workers_do_not_matter():
    p = small()
    a, b = generate(p, workers=1), generate(p, workers=2)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.tracks.equals(b.tracks)
    c = generate(p.replace(seed=6), workers=1)
    assert a.frames.tobytes() != c.frames.tobytes()
    assert not np.allclose(a.tracks[["x", "y"]].to_numpy(), c.tracks[["x", "y"]].to_numpy())


def test_iter_frames_streams_the_same_video():
    p = small(frames=3)
    video = generate(p, workers=1)
    for t, (frame, labels, rows) in enumerate(iter_frames(p, workers=2)):
        assert frame.tobytes() == video.frames[t].tobytes()
        assert np.array_equal(labels, video.labels[t])
        assert list(rows.particle) == [1, 2, 3] and (rows.frame == t).all()


def test_labels_are_stable_ids_and_frames_have_dtype():
    p = small(frames=5, dtype="uint16")
    video = generate(p, workers=1)
    assert video.frames.dtype == np.uint16 and video.frames.shape == (5, 160, 160)
    assert video.labels.dtype == np.uint16
    assert set(np.unique(video.labels)) - {0} <= {1, 2, 3}
    shapes = Renderer(p).scene.shapes
    for r in video.tracks[video.tracks.inside].itertuples():
        # a fully visible particle keeps its id and its projected area, up to pixelisation
        # of the outline (at most half the perimeter of the circumscribed circle)
        shape = shapes[r.particle - 1]
        assert (video.labels[r.frame] == r.particle).sum() == r.area_px
        assert abs(r.area_px - shape.area_px) < np.pi * shape.radius_px


def test_dark_particles_are_darker_and_bright_ones_brighter():
    for contrast, sign in (("dark", -1), ("bright", 1)):
        v = generate(small(contrast=contrast, frames=2, dose_e_A2=5.0), workers=1)
        inside = v.labels > 0
        diff = v.frames[inside].mean() - v.frames[~inside].mean()
        assert np.sign(diff) == sign, contrast
        assert np.nanmean(v.snr) > 0


def test_reflect_boundary_keeps_particles_inside_and_open_lets_them_leave():
    fast = dict(
        frames=60,
        size=96,
        n_particles=2,
        size_nm=(6.0, 8.0),
        D_nm2_s=(3000.0, 3000.0),
        models={"brownian": 1},
        allow_overlap=True,
        stage_drift_nm_s=(0.0, 0.0),
    )
    v = generate(small(boundary="reflect", **fast), workers=1)
    assert v.tracks.inside.all()
    v = generate(small(boundary="open", **fast), workers=1)
    assert not v.tracks.inside.all()
    assert (~v.tracks.visible).any() or (v.tracks.area_px < v.tracks.area_px.max()).any()


def test_entering_particles_start_outside():
    v = generate(small(enter_fraction=1.0, frames=2, n_particles=2), workers=1)
    first = v.tracks[v.tracks.frame == 0]
    assert not first.inside.any()
    assert v.particles.entering.all()


def test_particles_never_overlap_unless_allowed():
    p = small(
        frames=40, n_particles=5, size=128, size_nm=(10.0, 16.0), D_nm2_s=(500.0, 800.0), min_gap_nm=1.0
    )
    v = generate(p, workers=1)
    r = Renderer(p)
    radius = [s.radius_px for s in r.scene.shapes]
    gap = 1.0 / p.pixel_size_nm
    xy = r.scene.xy_px
    for i in range(5):
        for j in range(i + 1, 5):
            d = np.hypot(*(xy[:, i] - xy[:, j]).T)
            near = (np.abs(xy[:, i] - 64).max(1) < 64 + radius[i]) & (
                np.abs(xy[:, j] - 64).max(1) < 64 + radius[j]
            )
            assert np.all(d[near] >= radius[i] + radius[j] + gap - 1e-9)
    assert np.allclose(v.tracks.x.to_numpy().reshape(40, 5), xy[..., 0])


@pytest.mark.parametrize("mode", ["poisson", "gaussian"])
def test_shot_noise_has_poisson_mean_and_variance(mode):
    p = small(
        shot_noise=mode,
        mtf_sigma_px=0.0,
        read_noise_e=0.0,
        correlated_noise_e=0.0,
        size=128,
        dtype="uint16",
        gain_adu_per_e=16.0,
        offset_adu=0.0,
    )
    img = Imaging(p.validate(), np.random.default_rng(0))
    lam_value = 6.0
    adu = img.detect(np.full((128, 128), lam_value, np.float32), np.random.default_rng(1)).astype(float)
    e = adu / 16.0
    n = e.size
    var_q = 1 / 12 / 16**2  # rounding to ADU
    assert abs(e.mean() - lam_value) < 4 * np.sqrt(lam_value / n)
    # se of the sample variance of n iid values: var sqrt((2 + excess kurtosis) / (n - 1)), kurtosis 1/lam
    se = np.sqrt((2 + 1 / lam_value) / (n - 1)) * lam_value
    assert abs(e.var() - lam_value - var_q) < 4 * se
    skew = ((e - e.mean()) ** 3).mean() / e.var() ** 1.5
    assert abs(skew - 1 / np.sqrt(lam_value)) < 4 * np.sqrt(6 / n)


def test_thickness_darkens_background_and_blurs():
    thin = Imaging(small(thickness_nm=5.0).validate(), np.random.default_rng(0))
    thick = Imaging(small(thickness_nm=150.0).validate(), np.random.default_rng(0))
    assert thick.background_mean < thin.background_mean
    assert thick.blur_px > thin.blur_px
    assert thick.haze > thin.haze


def test_jpeg_artifacts_change_frames_but_keep_truth():
    plain = generate(small(frames=2), workers=1)
    jpeg = generate(small(frames=2, jpeg_quality=30), workers=1)
    assert plain.frames.tobytes() != jpeg.frames.tobytes()
    assert np.array_equal(plain.labels, jpeg.labels)
    assert np.abs(plain.frames.astype(int) - jpeg.frames.astype(int)).mean() > 1
