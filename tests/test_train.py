"""Training: losses, tracker-identical batches, learning, checkpoint/resume, export, errors."""

import json

import numpy as np
import pytest
import torch

from samem.cli.main import main
from samem.errors import SamemError
from samem.synthetic.clips import ClipStream
from samem.track.preprocess import denoise, normalize_frame, resize_square, to_gray, to_model_input
from samem.train.batches import CropPolicy, clip_batch
from samem.train.config import DataSection, load_train_config
from samem.train.losses import step_loss
from samem.train.trainer import Trainer, clip_forward, export_weights, lr_factor


def test_step_loss_prefers_correct_masks_and_gates_absent():
    target = torch.zeros(2, 32, 32)
    target[0, 8:20, 8:20] = 1  # object 0 present, object 1 absent
    good = (target * 20 - 10)[:, None]
    bad = -good
    iou = torch.ones(2, 1)
    score = torch.tensor([5.0, -5.0])
    lg = step_loss(good, iou, score, target)
    lb = step_loss(bad, iou, score, target)
    assert lg["mask"] < 0.01 * lb["mask"] and lg["dice"] < 0.1 * lb["dice"]
    assert lg["score"] < 0.01
    # object 1 is absent: its mask terms must not count, only its score
    only_absent = step_loss(bad[1:], iou[1:], score[1:], target[1:])
    assert only_absent["mask"] == 0 and only_absent["dice"] == 0 and only_absent["iou"] == 0
    # of three candidate masks the best one is supervised
    multi = torch.cat([bad[:1], good[:1], bad[:1]], dim=1)
    best = step_loss(multi, torch.ones(1, 3), score[:1], target[:1])
    assert best["mask"] == pytest.approx(float(lg["mask"]) * 2, rel=1e-5)  # averaged over 1 object, not 2


def test_lr_schedule_warmup_then_cosine():
    f = [lr_factor(s, 10, 110, 0.1) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[110] == pytest.approx(0.1)


@pytest.fixture(scope="module")
def clips():
    stream = ClipStream("thin", clip_len=3, size=160, seed=3)
    return [stream.clip(0), stream.clip(1)]


def test_roi_batch_matches_tracker_windows(clips):
    policy = CropPolicy(input_size=64, max_objects=2, centre_jitter_px=0.0, box_noise=0.0)
    b = clip_batch(clips, policy, np.random.default_rng(0))
    n = b.num_objects
    assert b.images.shape == (3, n, 3, 64, 64) and b.targets.shape == (3, n, 64, 64)
    assert b.image_index.tolist() == list(range(n))
    for i in range(n):
        # frame 0: the un-jittered box prompt encloses the target mask (model-input pixels)
        rows, cols = np.nonzero(b.targets[0, i].numpy())
        x0, y0, x1, y1 = b.boxes[i].tolist()
        assert x0 - 1 <= cols.min() and cols.max() <= x1 + 1 and y0 - 1 <= rows.min() and rows.max() <= y1 + 1
        # later frames: the window is centred on the previous position, so the object is near the centre
        for t in (1, 2):
            rows, cols = np.nonzero(b.targets[t, i].numpy())
            if rows.size:
                assert abs(cols.mean() - 32) < 12 and abs(rows.mean() - 32) < 12


def test_vanish_moves_the_window_off_the_object(clips):
    """vanish_prob=1: from some propagated frame on, every object is outside its window (empty
    target, what the object-present score learns from); frame 0 always shows it."""
    policy = CropPolicy(input_size=64, max_objects=2, vanish_prob=1.0, centre_jitter_px=0.0)
    b = clip_batch(clips, policy, np.random.default_rng(1))
    present = b.targets.flatten(2).amax(-1) > 0.5  # (T, B)
    assert present[0].all()
    assert (~present[1:]).any(dim=0).all()  # every object vanishes on some later frame
    policy = CropPolicy(input_size=64, max_objects=2, centre_jitter_px=0.0)
    plain = clip_batch(clips, policy, np.random.default_rng(1))
    assert (plain.targets.flatten(2).amax(-1) > 0.5).all()  # without it the objects stay in view


def test_full_batch_shares_one_image_per_clip(clips):
    policy = CropPolicy(mode="full", input_size=64, max_objects=2)
    b = clip_batch(clips, policy, np.random.default_rng(0))
    assert b.images.shape[1] == 2  # one image per clip
    k0 = min(2, len(clips[0].object_ids))
    assert b.image_index.tolist()[:k0] == [0] * k0 and set(b.image_index.tolist()[k0:]) == {1}


@pytest.mark.parametrize("mode", ["roi", "full"])
def test_denoise_smooths_training_frames_as_the_tracker_does(clips, mode):
    """The frames are smoothed before normalisation with sigma = denoise x the clip's median box
    side, as the tracker's option does; the targets and prompts are the same."""
    plain = clip_batch(clips, CropPolicy(mode=mode, input_size=64, max_objects=2), np.random.default_rng(2))
    policy = CropPolicy(mode=mode, input_size=64, max_objects=2, denoise=0.1)
    smooth = clip_batch(clips, policy, np.random.default_rng(2))
    assert torch.equal(plain.targets, smooth.targets) and torch.equal(plain.boxes, smooth.boxes)
    assert not torch.equal(plain.images, smooth.images)
    clip = clips[0]
    sigma = 0.1 * np.median([max(b[2] - b[0], b[3] - b[1]) + 1 for b in clip.boxes])
    normalised = normalize_frame(clip.frames[0], denoise_sigma=sigma)[0]
    assert np.allclose(normalised, normalize_frame(denoise(to_gray(clip.frames[0]), sigma))[0])
    if mode == "full":  # frame 0 of clip 0 is the first image row
        want = to_model_input(resize_square(normalised, 64))[0]
        assert torch.allclose(smooth.images[0, 0], want, atol=1e-4)


def _cfg(tmp_path, *extra):
    return load_train_config("tiny", [f"run.out={tmp_path / 'run'}", *extra])


def test_tiny_model_learns_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(_cfg(tmp_path, "optim.lr=2e-3", "optim.encoder_lr=2e-3"))
    batch = trainer.batch(0)
    opt = torch.optim.AdamW(trainer.model.parameters(), lr=2e-3)
    trainer.model.train()
    losses = []
    for _ in range(25):
        loss, _ = clip_forward(trainer.model, batch, trainer.device)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        losses.append(float(loss["total"].detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])


def test_checkpoint_resume_and_export(tmp_path):
    cfg = _cfg(tmp_path)
    first = Trainer(cfg)
    first.fit(steps=2, progress=False)
    assert (tmp_path / "run" / "last.pt").is_file()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    resumed = Trainer(cfg)
    assert resumed.step == 2
    for (k, a), b in zip(first.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # the data of a step does not depend on the process that draws it
    assert torch.equal(first.batch(5).images, resumed.batch(5).images)
    resumed.fit(progress=False)
    assert resumed.step == cfg["optim"]["steps"]
    # rates come from the config on resume (an override must not be overruled by the checkpoint)
    relr = Trainer(_cfg(tmp_path, "optim.lr=1e-5", "optim.encoder_lr=2e-5"))
    assert {g["base_lr"] for g in relr.optimizer.param_groups} == {1e-5, 2e-5}
    out = export_weights(tmp_path / "run" / "last.pt", tmp_path / "w.pt")
    import samem

    model = samem.load_model(str(out))
    assert int(model.image_size) == 64
    assert "optimizer" not in torch.load(out, weights_only=True)


def test_ema_weights_are_kept_resumed_and_exported(tmp_path):
    cfg = _cfg(tmp_path, "optim.ema_decay=0.9", "run.val_every=2", "crop.vanish_prob=0.5")
    trainer = Trainer(cfg)
    start = {k: p.clone() for k, p in trainer.ema.named_parameters()}
    trainer.fit(steps=3, progress=False)
    live, ema = trainer.model.state_dict(), trainer.ema.state_dict()
    moved = [k for k, p in trainer.ema.named_parameters() if not torch.equal(p, start[k])]
    assert moved, "the average never moved"
    # the average lies between its start and the live weights, not on them
    assert any(not torch.equal(live[k], ema[k]) for k in moved)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_iou_ema" in r and 0 <= r["val_iou_ema"] <= 1 for r in rows)
    assert any(0 <= r.get("val_absent", -1) <= 1 for r in rows)  # absence scored when vanish is on
    resumed = Trainer(cfg)
    for k, v in resumed.ema.state_dict().items():
        assert torch.equal(v, ema[k]), k
    out = export_weights(tmp_path / "run" / "last.pt", tmp_path / "ema.pt")
    shipped = torch.load(out, weights_only=True)
    assert shipped["meta"]["weights"] == "ema" and torch.equal(shipped["model"][moved[0]], ema[moved[0]])
    raw = torch.load(
        export_weights(tmp_path / "run" / "last.pt", tmp_path / "raw.pt", ema=False), weights_only=True
    )
    assert raw["meta"]["weights"] == "live" and torch.equal(raw["model"][moved[0]], live[moved[0]])
    with pytest.raises(SamemError, match="ema_decay"):
        _cfg(tmp_path, "optim.ema_decay=1.0")
    with pytest.raises(SamemError, match="vanish_prob"):
        _cfg(tmp_path, "crop.vanish_prob=1.5")


def test_bad_configs_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SamemError, match="unknown key"):
        _cfg(tmp_path, "optim.learning_rate=1")
    with pytest.raises(SamemError, match="positive"):
        _cfg(tmp_path, "optim.steps=0")
    with pytest.raises(SamemError, match="not found"):
        load_train_config("no_such_config")
    assert main(["train", "--config", "tiny", "data.clip_len=1", f"run.out={tmp_path}"]) == 2
    assert "clip_len" in capsys.readouterr().err


def _rank(rank: int, port: int, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    cfg = load_train_config("tiny", [f"run.out={out}/run", "run.val_every=0", "run.seed=0"])
    trainer = Trainer(cfg)
    trainer.fit(steps=2, progress=False)
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, f"{out}/rank{rank}.pt")
    import torch.distributed as dist

    dist.destroy_process_group()


def test_two_process_training_averages_gradients(tmp_path):
    """Under torchrun each rank draws other clips, yet the weights stay identical across ranks."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    fresh = Trainer(_cfg(tmp_path / "fresh"))
    assert any(not torch.equal(a[k], v) for k, v in fresh.model.state_dict().items())  # it did train


def test_training_clips_from_hdf5_and_davis_folders(tmp_path):
    from samem.synthetic import SynthParams, generate, write_folder, write_h5
    from samem.train.data import clip_source

    video = generate(SynthParams.from_preset("thin", frames=6, size=96, n_particles=2, seed=4))
    h5 = write_h5(video, tmp_path / "v.h5", progress=False)
    write_folder(video, tmp_path / "davis", name="v1")
    for source, path in (("h5", h5), ("folder", tmp_path / "davis")):
        data = DataSection(source=source, paths=(str(path),), clip_len=3, seed=0)
        get = clip_source(data)
        clip = get(5)
        assert clip.frames.shape == (3, 96, 96) and clip.labels.shape == (3, 96, 96)
        start = next(t for t in range(4) if np.array_equal(clip.labels, video.labels[t : t + 3]))
        if source == "h5":  # lossless; the folder format stores JPEG frames
            assert np.array_equal(clip.frames, video.frames[start : start + 3])
        else:
            assert np.abs(clip.frames.astype(float) - video.frames[start : start + 3]).mean() < 3
        # the prompts are the first frame's objects, and the same index gives the same clip
        assert set(clip.object_ids.tolist()) <= set(np.unique(clip.labels[0]).tolist()) - {0}
        assert np.array_equal(get(5).labels, clip.labels)
    with pytest.raises(SamemError, match="no such file"):
        clip_source(DataSection(source="h5", paths=(str(tmp_path / "none.h5"),), clip_len=3))
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(SamemError, match="not a readable HDF5"):
        clip_source(DataSection(source="h5", paths=(str(tmp_path / "bad.h5"),), clip_len=3))
    with pytest.raises(SamemError, match="fewer than clip_len"):
        clip_source(DataSection(source="h5", paths=(str(h5),), clip_len=9))
    # colour label masks are refused with the reason, not misread
    import cv2

    from samem.io.formats.images import read_label_image

    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SamemError, match="palettised or greyscale"):
        read_label_image(rgb)
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.full((8, 8), 300, np.uint16))
    assert read_label_image(wide).max() == 300


def test_fine_tune_from_a_meta_style_checkpoint(tmp_path, capsys):
    """--init reads {"model": state_dict} (Meta's and SAM-EM's layout) and starts from those weights."""
    from samem.model import build_model
    from samem.model.factory import resolve_config

    torch.manual_seed(123)
    source = build_model(resolve_config("samem_tiny"))
    init = tmp_path / "meta_style.pt"
    torch.save({"model": source.state_dict()}, init)
    trainer = Trainer(_cfg(tmp_path, f"model.init={init}"))
    for k, v in source.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[k], v), k
    out = tmp_path / "cli"
    args = ["train", "--config", "tiny", "--init", str(init), "--out", str(out), "--steps", "1"]
    assert main([*args, "--no-progress", "--export", str(tmp_path / "tuned.pt")]) == 0
    tuned = torch.load(tmp_path / "tuned.pt", weights_only=True)
    assert tuned["meta"]["step"] == 1
    # a checkpoint of another architecture is a clear error naming the file, before any training
    torch.manual_seed(0)
    other = build_model(resolve_config("samem_compact"))
    torch.save({"model": other.state_dict()}, tmp_path / "compact.pt")
    bad = ["train", "--config", "tiny", "--init", str(tmp_path / "compact.pt"), "--out", str(tmp_path / "x")]
    assert main([*bad, "--no-progress"]) == 2
    assert "compact.pt" in capsys.readouterr().err
    assert not (tmp_path / "x" / "last.pt").exists()
