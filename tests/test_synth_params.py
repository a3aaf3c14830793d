"""Parameters: presets, recipes, overrides, validation, domain randomisation."""

import json

import numpy as np
import pytest

from samem.errors import SamemError
from samem.synthetic import SynthParams
from samem.synthetic.randomize import draw, sample


def test_presets_differ_only_by_liquid_thickness():
    thin, medium, thick = (SynthParams.from_preset(n) for n in ("thin", "medium", "thick"))
    assert (thin.imaging.thickness_nm, medium.imaging.thickness_nm, thick.imaging.thickness_nm) == (
        5,
        50,
        150,
    )
    a, b = thin.to_dict(), thick.to_dict()
    for d in (a, b):
        d["imaging"].pop("thickness_nm")
        d.pop("name"), d.pop("snr_range")
    assert a == b
    assert thin.snr_range[0] > thick.snr_range[0] and thin.snr_range[1] > thick.snr_range[1]


def test_overrides_flat_dotted_and_nested():
    p = SynthParams.from_preset(
        "thin", frames=7, thickness_nm=12, **{"particles.n_particles": 2}, motion={"alpha": [0.7, 0.9]}
    )
    assert (p.frames, p.imaging.thickness_nm, p.particles.n_particles, p.motion.alpha) == (
        7,
        12.0,
        2,
        (0.7, 0.9),
    )
    q = p.replace(seed=9)
    assert q.seed == 9 and q.frames == 7 and p.seed != 9
    assert SynthParams.from_dict(json.loads(p.to_json())) == p


def test_recipe_from_path_with_base(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("base: thick\nframes: 3\nimaging: {dose_e_A2: 2.5}\n")
    p = SynthParams.from_recipe(f)
    assert (p.frames, p.imaging.dose_e_A2, p.imaging.thickness_nm, p.name) == (3, 2.5, 150.0, "mine")
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(SamemError, match="loops"):
        SynthParams.from_recipe(loop)


@pytest.mark.parametrize(
    "over, message",
    [
        (dict(thickness_nm=-1), "thickness_nm"),
        (dict(frames=0), "frames"),
        (dict(size=64, size_nm=(10.0, 100.0)), "larger than the frame"),
        (dict(dose_e_A2=0), "dose_e_A2"),
        (dict(alpha=(0.5, 2.5)), "alpha"),
        (dict(shapes={"cube": 1.0}), "cube"),
        (dict(models={"brownian": 0.0}), "weight"),
        (dict(jpeg_quality=80, dtype="uint16"), "uint8"),
        (dict(size_nm=(30.0, 10.0)), "lo <= hi"),
        (dict(contrast="grey"), "contrast"),
    ],
)
def test_validation_names_the_bad_parameter(over, message):
    with pytest.raises(SamemError, match=message):
        SynthParams.from_preset("medium", **over).validate()


def test_unknown_names_and_bad_types_are_user_errors(tmp_path):
    with pytest.raises(SamemError, match="unknown synthetic parameter"):
        SynthParams.from_preset("medium", thickness=5)
    with pytest.raises(SamemError, match="unknown preset"):
        SynthParams.from_preset("ultra")
    with pytest.raises(SamemError, match="synthetic parameter 'frames' must be a whole number, got 'many'"):
        SynthParams.from_preset("medium", frames="many")
    bad = tmp_path / "bad.yaml"
    bad.write_text("imaging: {thicknes_nm: 5}\n")
    with pytest.raises(SamemError, match="thicknes_nm"):
        SynthParams.from_recipe(bad)


def test_recipe_with_overrides_goes_through_samem_config(tmp_path):
    # base: thin, then flat, dotted and group overrides, in order; numbers stored as annotated
    f = tmp_path / "mine.yaml"
    f.write_text(
        "base: thin\ndescription: mine\nframes: 5\nparticles: {n_particles: 3, shapes: {rod: 1}}\n"
        "imaging: {dose_e_A2: 2}\n"
    )
    p = SynthParams.from_recipe(
        f, size=128, thickness_nm=20, **{"motion.D_nm2_s": [10, 20]}, particles={"size_nm": [5, 8]}
    )
    assert (p.name, p.frames, p.size, p.snr_range) == ("mine", 5, 128, None)  # thin's own keys stay
    assert p.particles.n_particles == 3 and p.particles.shapes == {"rod": 1.0}
    assert p.particles.size_nm == (5.0, 8.0) and p.motion.D_nm2_s == (10.0, 20.0)
    assert (p.imaging.dose_e_A2, p.imaging.thickness_nm, p.imaging.mfp_liquid_nm) == (2.0, 20.0, 600.0)
    for value in (p.particles.shapes["rod"], p.imaging.dose_e_A2, p.imaging.thickness_nm, *p.motion.D_nm2_s):
        assert type(value) is float
    assert p.motion.models == SynthParams.from_preset("thin").motion.models  # inherited from medium
    assert SynthParams.from_dict(p.to_dict()) == p
    # every bad key and value named, on one line
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: medium\nimaging: {thicknes_nm: 5, dose_e_A2: lots}\nframez: 3\n")
    with pytest.raises(SamemError) as err:
        SynthParams.from_recipe(bad)
    msg = str(err.value)
    assert "\n" not in msg
    for part in (
        "unknown synthetic parameter 'imaging.thicknes_nm' (known here: thickness_nm,",
        "synthetic parameter 'imaging.dose_e_A2' must be a number, got 'lots'",
        "unknown synthetic parameter 'framez'",
    ):
        assert part in msg
    with pytest.raises(SamemError, match="^unknown synthetic parameter 'thicknes_nm'$"):
        SynthParams.from_recipe(f, thicknes_nm=5)
    with pytest.raises(SamemError, match=r"'motion.D_nm2_s' must be a list of 2 numbers, got \[1, 2, 3\]"):
        SynthParams.from_recipe(f, D_nm2_s=[1, 2, 3])


def test_randomize_draws_stay_in_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert 2 <= draw({"uniform": [2, 3]}, rng) <= 3
        assert 0.1 <= draw({"loguniform": [0.1, 10]}, rng) <= 10
        assert draw({"integers": [1, 3]}, rng) in (1, 2, 3)
        lo, hi = draw({"subrange": [10, 150]}, rng)
        assert 10 <= lo <= hi <= 150
    assert draw({"choice": [None]}, rng) is None
    with pytest.raises(SamemError, match="randomize"):
        draw({"gauss": [0, 1]}, rng)


def test_train_recipe_randomizes_into_valid_params():
    base = SynthParams.from_recipe("train", size=512).validate()
    assert base.randomize
    rng = np.random.default_rng(1)
    thick = set()
    for _ in range(20):
        p = sample(base, rng).validate()
        assert not p.randomize and 10 <= p.particles.size_nm[0] <= p.particles.size_nm[1] <= 150
        thick.add(round(p.imaging.thickness_nm))
    assert len(thick) > 15


def test_real_matched_recipe_widens_the_train_recipe_where_the_real_tiles_lie():
    """synthetic/train_real.yaml (issue 22; bench/bench_domain_stats.py): crowded frames, larger,
    softer particles, a coarser noise grain; everything else as the train recipe."""
    train = SynthParams.from_recipe("train", size=512).validate()
    real = SynthParams.from_recipe("train_real", size=512).validate()
    widened = {
        "n_particles",
        "size_nm",
        "blur_at_100nm_nm",
        "mtf_sigma_px",
        "illumination_gradient",
        "dose_e_A2",
    }
    assert {k for k in train.randomize if train.randomize[k] != real.randomize[k]} == widened
    rng = np.random.default_rng(2)
    drawn = [sample(real, rng).validate() for _ in range(40)]
    assert max(p.particles.n_particles for p in drawn) > 8  # beyond the train recipe's range
    assert all(15 <= p.particles.size_nm[0] for p in drawn)
