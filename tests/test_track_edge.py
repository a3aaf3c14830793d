"""The centre of a particle cut by the frame border (samem.track.edge), against exact geometry."""

import math

import numpy as np
import pytest

from samem.track.edge import border_offset, edge_centre
from samem.track.roi import mask_geometry


def disc(shape, cx, cy, r, a=None, b=None, angle=0.0):
    """Boolean disc (or ellipse with semi-axes a, b at ``angle``) of centre (cx, cy), pixel indices."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    a, b = a or r, b or r
    u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def test_offset_of_a_half_disc_is_four_over_three_pi_radii():
    assert border_offset(0.5, 10.0) == pytest.approx(40 / (3 * math.pi), rel=1e-4)
    assert border_offset(1.0, 10.0) == 0.0 and border_offset(1.3, 10.0) == 0.0
    assert border_offset(0.0, 10.0) == 0.0 and border_offset(0.5, 0.0) == 0.0
    # a thinner sliver has its centroid further from the centre
    offsets = [border_offset(f, 10.0) for f in (0.9, 0.7, 0.5, 0.3, 0.1)]
    assert offsets == sorted(offsets)


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
@pytest.mark.parametrize("inside", [0.9, 0.5, 0.0, -0.5, -0.8])  # centre inside the border, in radii
def test_centre_of_a_cut_disc_is_recovered_on_every_side(side, inside):
    shape, r = (200, 240), 18.0
    whole = disc(shape, 120, 100, r).sum()
    d = inside * r
    cx, cy = {"left": (d - 0.5, 100.0), "right": (shape[1] - 0.5 - d, 100.0)}.get(
        side, (120.0, d - 0.5) if side == "top" else (120.0, shape[0] - 0.5 - d)
    )
    mask = disc(shape, cx, cy, r)
    (mx, my), bbox = mask_geometry(mask)
    measured_err = math.hypot(mx - cx, my - cy)
    x, y = edge_centre((mx, my), bbox, float(mask.sum()), float(whole), shape)
    assert math.hypot(x - cx, y - cy) < 0.6  # pixelisation only
    assert measured_err > (0.2 if inside > 0.8 else 1.0)  # the visible part's centroid alone is off


def test_an_ellipse_cut_across_its_long_axis_is_much_improved():
    shape = (160, 200)
    cx, cy = 20.0, 80.0  # long axis (30 px) normal to the left border: 10 px outside the axis' end
    mask = disc(shape, cx, cy, 0, a=30.0, b=15.0)
    whole = disc(shape, 100, 80, 0, a=30.0, b=15.0).sum()
    (mx, my), bbox = mask_geometry(mask)
    x, y = edge_centre((mx, my), bbox, float(mask.sum()), float(whole), shape)
    assert abs(x - cx) < 0.5 * abs(mx - cx) and abs(y - cy) < 0.5


def test_left_alone_when_not_cut_cut_twice_or_size_unknown():
    shape = (100, 100)
    inner = disc(shape, 50, 50, 10)
    (mx, my), bbox = mask_geometry(inner)
    assert edge_centre((mx, my), bbox, float(inner.sum()), float(inner.sum()), shape) == (mx, my)
    corner = disc(shape, 2, 3, 10)
    (mx, my), bbox = mask_geometry(corner)
    assert edge_centre((mx, my), bbox, float(corner.sum()), float(inner.sum()), shape) == (mx, my)
    cut = disc(shape, 2, 50, 10)
    (mx, my), bbox = mask_geometry(cut)
    for unknown in (math.nan, 0.0):
        assert edge_centre((mx, my), bbox, float(cut.sum()), unknown, shape) == (mx, my)
    # a mask no smaller than the particle (SAM 2 drew more than the visible part) is not moved
    assert edge_centre((mx, my), bbox, float(cut.sum()), float(cut.sum()) * 0.9, shape) == (mx, my)
