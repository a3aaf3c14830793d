"""ClipStream: deterministic, varied, prompt boxes that match the masks, torch-compatible."""

import itertools

import numpy as np

from samem.synthetic import ClipStream


def test_clips_are_deterministic_and_varied():
    stream = ClipStream("train", clip_len=3, size=192, seed=3)
    a, b = stream.clip(5), ClipStream("train", clip_len=3, size=192, seed=3)[5]
    assert a.frames.tobytes() == b.frames.tobytes() and np.array_equal(a.boxes, b.boxes)
    clips = list(itertools.islice(iter(stream), 6))
    assert [c.index for c in clips] == list(range(6))
    assert len({c.params.imaging.thickness_nm for c in clips}) == 6
    assert (
        len({c.params.particles.contrast for c in clips} | {c.params.imaging.jpeg_quality for c in clips}) > 2
    )
    for c in clips:
        assert c.frames.shape == (3, 192, 192) and c.frames.dtype == np.uint8
        assert c.labels.shape == c.frames.shape and len(c.object_ids) >= 1


def test_boxes_bound_the_first_frame_masks():
    clip = ClipStream("train", clip_len=2, size=192, seed=0).clip(1)
    masks = clip.masks(0)
    for (x0, y0, x1, y1), m in zip(clip.boxes, masks):
        rows, cols = np.nonzero(m)
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max(), rows.max())


def test_torch_dataloader_workers_do_not_repeat():
    import torch

    stream = ClipStream("train", clip_len=1, size=160, seed=1)
    loader = torch.utils.data.DataLoader(
        stream.torch_dataset(), batch_size=None, num_workers=2, collate_fn=lambda c: c.index
    )
    seen = list(itertools.islice(iter(loader), 6))
    assert sorted(seen) == list(range(6))
