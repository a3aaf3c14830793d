"""samem.model: config factory, checkpoint formats (Meta's and samem's), and clear errors."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import samem
import samem.model.checkpoint as ckpt_mod
from samem.errors import SamemError
from samem.model import (
    build_model,
    infer_sam2_config,
    load_model,
    read_checkpoint,
    resolve_config,
    sam2_config_names,
    samem_config_names,
    save_checkpoint,
)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------- factory
def test_config_names_cover_sam2_and_samem():
    names = sam2_config_names()
    for size in ("t", "s", "b+", "l"):
        assert f"sam2.1_hiera_{size}" in names and f"sam2_hiera_{size}" in names
    assert {"samem_compact", "samem_tiny"} <= set(samem_config_names())


SPELLINGS = ["sam2.1_hiera_t", "sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml"]


@pytest.mark.parametrize("name", SPELLINGS)
def test_sam2_name_spellings_resolve_to_the_same_config(name):
    assert resolve_config(name) == resolve_config("sam2.1_hiera_t")


def test_samem_configs_build_with_consistent_sizes(tiny):
    compact = build_model("samem_compact", "cpu")
    for model, cfg in ((tiny, "samem_tiny"), (compact, "samem_compact")):
        size = model.image_size
        assert model.samem_config == resolve_config(cfg)
        with torch.inference_mode():
            out = model.forward_image(torch.zeros(2, 3, size, size))
        # stride-4, -8 and -16 maps of the configured width feed SAM 2's heads
        sizes = [tuple(f.shape[-2:]) for f in out["backbone_fpn"]]
        assert sizes == [(size // s, size // s) for s in (4, 8, 16)]
        assert out["vision_features"].shape[1] == model.hidden_dim
        assert model.sam_prompt_encoder.image_embedding_size == (size // 16, size // 16)


def test_build_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("samem_tiny", "cpu", seed=1)
    b = build_model("samem_tiny", "cpu", seed=1)
    c = build_model("samem_tiny", "cpu", seed=2)
    assert torch.equal(state, torch.random.get_rng_state())
    assert same_weights(a, b) and not same_weights(a, c)


def test_inference_switches_of_sam2_video_predictor_are_applied(tiny):
    assert tiny.binarize_mask_from_pts_for_mem_enc
    assert tiny.sam_mask_decoder.dynamic_multimask_via_stability
    assert not tiny.training


@pytest.mark.parametrize("name", sam2_config_names())
def test_sam2_config_is_inferred_from_its_state_dict(name):
    model = build_model(name, "meta")  # shapes only: Hiera-L costs no memory
    assert infer_sam2_config(model.state_dict()) == name


def test_unknown_config_and_inconsistent_sizes_are_user_errors(tmp_path):
    with pytest.raises(SamemError, match="unknown model config 'hiera_xl'.*samem_tiny.*sam2.1_hiera_t"):
        build_model("hiera_xl")
    cfg = resolve_config("samem_tiny")
    cfg["model"]["image_size"] = 80
    with pytest.raises(SamemError, match="multiple of 32"):
        build_model(cfg)
    cfg["model"]["image_size"] = 128  # RoPE feature sizes still say 64 px
    with pytest.raises(SamemError, match=r"feat_sizes \[4, 4\] do not match image_size 128"):
        build_model(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: {mode: roi}\n")
    with pytest.raises(SamemError, match="no 'model' section"):
        build_model(str(bad))


# ---------------------------------------------------------------------- checkpoints
def test_samem_checkpoint_round_trip_is_self_describing(tmp_path, tiny):
    path = save_checkpoint(tiny, tmp_path / "tiny.pt", meta={"note": "unit test"})
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model", "config", "meta"} and raw["meta"]["note"] == "unit test"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained weights: no random-init warning
        loaded = load_model(path, device="cpu")
    assert same_weights(loaded, tiny)
    assert loaded.samem_config == tiny.samem_config and loaded.samem_source == str(path)


def test_our_checkpoint_loads_with_sam2s_own_loader(tmp_path, tiny):
    from sam2.build_sam import _load_checkpoint

    path = save_checkpoint(tiny, tmp_path / "tiny.pt")
    fresh = build_model("samem_tiny", "cpu", seed=5)
    _load_checkpoint(fresh, str(path))  # strict: raises on any missing/unexpected key
    assert same_weights(fresh, tiny)


def test_meta_format_checkpoint_loads_unchanged_with_inferred_config(tmp_path):
    official = build_model("sam2.1_hiera_t", "cpu", seed=3)
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": official.state_dict()}, path)
    loaded = load_model(path, device="cpu")
    assert loaded.samem_config == resolve_config("sam2.1_hiera_t")
    assert same_weights(loaded, official)


def test_training_checkpoint_extras_and_ddp_prefix_are_accepted(tmp_path, tiny):
    # sam2's trainer writes optimizer/epoch/loss next to "model"; DDP prefixes keys with "module."
    sd = {f"module.{k}": v for k, v in tiny.state_dict().items()}
    path = tmp_path / "checkpoint.pt"
    optimizer = {"state": {}, "param_groups": []}
    torch.save({"model": sd, "optimizer": optimizer, "epoch": 25, "steps": {"train": 9}}, path)
    loaded = load_model(path, config="samem_tiny", device="cpu")
    assert same_weights(loaded, tiny)


def test_default_model_uses_shipped_weights_or_warns(tmp_path, monkeypatch, tiny):
    monkeypatch.setattr(ckpt_mod, "DEFAULT_WEIGHTS", tmp_path / "absent.pt")
    with pytest.warns(UserWarning, match="no trained default weights.*random init.* of samem_compact"):
        model = samem.load_model()
    assert model.image_size == build_model("samem_compact", "cpu").image_size
    shipped = save_checkpoint(tiny, tmp_path / "default.pt")
    monkeypatch.setattr(ckpt_mod, "DEFAULT_WEIGHTS", shipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert same_weights(samem.load_model(device="cpu"), tiny)


def test_config_name_gives_seeded_random_init_with_warning(tiny):
    with pytest.warns(UserWarning, match="samem_tiny.*seed 0.*meaningless"):
        model = load_model("samem_tiny", device="cpu")
    assert same_weights(model, tiny)
    with pytest.raises(SamemError, match="config= applies only to checkpoint files"):
        load_model("samem_tiny", config="samem_compact")


# ---------------------------------------------------------------------- checkpoint errors
def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(SamemError, match=r"checkpoint .*nope\.pt: no such file"):
        load_model(tmp_path / "nope.pt")


def test_truncated_and_garbage_files_are_reported(tmp_path, tiny):
    good = save_checkpoint(tiny, tmp_path / "good.pt")
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SamemError, match=r"cut\.pt: cannot be read, truncated or corrupt"):
        load_model(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(SamemError, match=r"junk\.pt: cannot be read"):
        read_checkpoint(junk)


class NotAllowed:
    """A class weights_only loading refuses to rebuild."""


def test_unsafe_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"model": {}, "payload": NotAllowed()}, fh, protocol=2)
    with pytest.raises(SamemError, match=r"evil\.pt: holds Python objects .* does not unpickle"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2, 3], "expected a dict with a 'model' state dict, found list"),
        ({"state_dict": {}}, r"found a dict with keys \['state_dict'\]"),
        ({"model": {"w": 3}}, r"non-tensor entries, e.g. \['w'\]"),
    ],
)
def test_wrong_structure_is_reported(tmp_path, content, message):
    path = tmp_path / "wrong.pt"
    torch.save(content, path)
    with pytest.raises(SamemError, match=message):
        read_checkpoint(path)


def test_key_and_shape_mismatches_name_keys(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    del sd["no_mem_embed"]
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "edited.pt"
    torch.save({"model": sd}, path)
    message = r"1 missing keys \(no_mem_embed\); 1 unexpected keys \(extra\.weight\)"
    with pytest.raises(SamemError, match=message):
        load_model(path, config="samem_tiny")
    small = tmp_path / "tiny.pt"
    save_checkpoint(tiny, small)
    with pytest.raises(SamemError, match=r"tiny\.pt does not fit the model config: \d+ shape mismatches"):
        load_model(small, config="samem_compact")


def test_unrecognised_weights_without_config_ask_for_one(tmp_path, tiny):
    path = tmp_path / "plain.pt"
    torch.save({"model": tiny.state_dict()}, path)  # Meta format, but not a sam2 Hiera size
    with pytest.raises(SamemError, match="cannot tell which model config.*pass config="):
        load_model(path)
