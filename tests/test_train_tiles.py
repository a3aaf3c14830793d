"""Real labelled tiles as training clips (samem.train.tiles) and their place in training."""

import json

import cv2
import numpy as np
import pytest

from samem.cli.main import main
from samem.errors import SamemError
from samem.train.config import load_train_config
from samem.train.data import clip_source, real_val_source
from samem.train.tiles import MIN_OBJECT_PX, TileClips, mixed_source, split_tiles, tile_pairs


def _tile_folder(root, n=5, size=256, seed=0):
    """``n`` grey tiles with dark discs, labels as RGBA masks (particle = 255), like microscopy-seg-track."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k in range(n):
        img = np.full((size, size), 180, np.uint8)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(4):
            x, y, r = rng.integers(40, size - 40), rng.integers(40, size - 40), rng.integers(12, 22)
            cv2.circle(img, (int(x), int(y)), int(r), 70, -1)
            cv2.circle(mask, (int(x), int(y)), int(r), 255, -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"image_{k}.png"), img)
        rgba = np.dstack([mask, mask, mask, np.full_like(mask, 255)])
        cv2.imwrite(str(root / "labels" / f"label_{k}.png"), rgba)
    return root


def test_pairs_are_in_natural_order_and_split_holds_out_the_last(tmp_path):
    folder = _tile_folder(tmp_path / "t", n=12)
    names = [p[0].name for p in tile_pairs(folder)]
    assert names[:3] == ["image_0.png", "image_1.png", "image_2.png"] and names[-1] == "image_11.png"
    train, val = split_tiles([str(folder)], 3)
    assert [p[0].name for p in val] == ["image_9.png", "image_10.png", "image_11.png"]
    assert not {p[0] for p in train} & {p[0] for p in val}
    with pytest.raises(SamemError, match="leaves no tile"):
        split_tiles([str(folder)], 12)
    (folder / "labels" / "label_4.png").unlink()
    with pytest.raises(SamemError, match="no label"):
        tile_pairs(folder)
    with pytest.raises(SamemError, match="no images"):
        tile_pairs(tmp_path)


def test_tile_clips_follow_the_labels_and_are_deterministic(tmp_path):
    folder = _tile_folder(tmp_path / "t")
    source = TileClips(tile_pairs(folder), clip_len=4, frame_size=160, seed=3)
    a, b = source(7), source(7)
    assert a.frames.shape == (4, 160, 160) and a.frames.dtype == np.uint8
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(source(8).frames, a.frames)
    for clip in (source(i) for i in range(10)):
        assert clip.object_ids.size >= 1
        for t in range(4):
            for pid in clip.object_ids:
                inside = clip.labels[t] == pid
                if inside.sum() < MIN_OBJECT_PX:
                    continue
                # the labelled discs are darker than their surroundings on every frame
                ring = cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
                ring &= clip.labels[t] == 0
                assert clip.frames[t][inside].mean() < clip.frames[t][ring].mean()
        assert (clip.labels[0] > 0).sum() >= MIN_OBJECT_PX
    # the window drifts: the labels move with the image between the first and last frame
    assert any(not np.array_equal(source(i).labels[0], source(i).labels[-1]) for i in range(10))


def test_mixed_source_draws_the_stated_share_deterministically(tmp_path):
    tiles = TileClips(tile_pairs(_tile_folder(tmp_path / "t")), clip_len=3, frame_size=128, seed=0)

    def synthetic(index):
        return index

    mixed = mixed_source(synthetic, tiles, 0.3, seed=1)
    kinds = [not isinstance(mixed(i), int) for i in range(400)]
    assert 0.22 < np.mean(kinds) < 0.38
    assert kinds == [not isinstance(mixed(i), int) for i in range(400)]


def test_config_checks_and_validation_source(tmp_path):
    folder = str(_tile_folder(tmp_path / "t", n=6))
    with pytest.raises(SamemError, match="tiles_fraction"):
        load_train_config("tiny", ["data.tiles_fraction=1.5"])
    with pytest.raises(SamemError, match="needs data.tiles"):
        load_train_config("tiny", ["data.tiles_fraction=0.5"])
    cfg = load_train_config("tiny", [f"data.tiles={folder}", "data.tiles_fraction=0.5", "data.tiles_val=2"])
    assert cfg.data.tiles == (folder,)
    val = real_val_source(cfg.data)
    assert {p[0].name for p in val.pairs} == {"image_4.png", "image_5.png"}
    train = clip_source(cfg.data)
    assert any(train(i).params is None for i in range(20))  # some clips are tiles


def test_training_with_tiles_reports_real_validation(tmp_path):
    folder = _tile_folder(tmp_path / "t", n=4)
    out = tmp_path / "run"
    args = ["train", "--config", "tiny", f"data.tiles=[{folder}]", "data.tiles_fraction=0.5",
            "data.tiles_val=1", "optim.steps=2", "run.val_every=2", f"run.out={out}"]
    assert main(args) == 0
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= last["val_real_iou"] <= 1.0 and "val_iou" in last
