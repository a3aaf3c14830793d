"""Training batches cut from clips exactly as the tracker sees its inputs.

For every prompted object of a clip, frame 0 gets a jittered box prompt (as a person
draws it) and each later frame a window centred on the object's position in the previous
frame plus a small jitter (the tracker centres on its last predicted centroid). Windows,
intensity normalisation and resizing are the tracker's own functions
(:mod:`samem.track.roi`, :mod:`samem.track.preprocess`), so training and tracking inputs
cannot drift apart. ``mode="full"`` trains the whole-frame mode instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from samem.synthetic.clips import Clip
from samem.track.preprocess import denoise_sigma, normalize_frame, resize_square, to_model_input
from samem.track.roi import Window, box_side, cut, window_side


@dataclass(frozen=True)
class CropPolicy:
    """How windows and prompts are drawn (pixels are frame pixels unless stated).

    Attributes
    ----------
    mode : "roi" or "full"
    input_size : model input side (px)
    crop_size_px : smallest ROI window side (px); ``None`` = input_size
    context : ROI window side = max(crop_size_px, context x longest box side)
    box_noise : std of box-corner jitter as a fraction of the box side (sam2 uses 0.1)
    box_noise_max_px : cap of that jitter (px)
    centre_jitter_px : std of the window-centre jitter on propagated frames (px)
    vanish_prob : fraction of objects whose window leaves them from a random propagated
        frame on (the window jumps so that the object lies outside it and stays there), so
        that the object-present score learns to say "gone" when a particle leaves the field
        of view or sinks into the noise, instead of the mask latching onto a noise blob
    max_objects : objects per clip at most (the rest are ignored)
    low_percentile, high_percentile : intensity normalisation, as the tracker's
    denoise : Gaussian smoothing of each frame before normalisation, sigma = this fraction of
        the median box side of the clip's objects, as the tracker's option of that name; 0: off
    """

    mode: str = "roi"
    input_size: int = 256
    crop_size_px: int | None = None
    context: float = 3.0
    box_noise: float = 0.1
    box_noise_max_px: float = 20.0
    centre_jitter_px: float = 2.0
    vanish_prob: float = 0.0
    max_objects: int = 4
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    denoise: float = 0.0


@dataclass
class Batch:
    """Model inputs and targets for ``B`` objects over ``T`` frames.

    Attributes
    ----------
    images : (T, B, 3, S, S) float32 standardised inputs (one per object; in full mode the
        objects of a clip share one image and ``image_index`` maps objects to images)
    image_index : (B,) int64 row of ``images`` each object reads (identity in ROI mode)
    targets : (T, B, S, S) float32 0/1 masks in model-input pixels
    boxes : (B, 4) float32 frame-0 box prompts in model-input pixels
    """

    images: torch.Tensor
    image_index: torch.Tensor
    targets: torch.Tensor
    boxes: torch.Tensor

    @property
    def num_objects(self) -> int:
        return self.targets.shape[1]


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5  # continuous coordinates


def _jitter_box(box: np.ndarray, policy: CropPolicy, rng: np.random.Generator, shape) -> np.ndarray:
    side = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    noise = np.clip(
        rng.normal(0, policy.box_noise, 4) * side, -policy.box_noise_max_px, policy.box_noise_max_px
    )
    out = box + noise
    h, w = shape
    out = np.clip(out, 0, [w, h, w, h])
    if out[2] - out[0] < 2 or out[3] - out[1] < 2:
        return box
    return out


def _object_windows(clip: Clip, j: int, box: np.ndarray, side: int, policy, rng) -> list[Window]:
    """The tracker's window for object ``j`` on every frame of the clip."""
    pid = clip.object_ids[j]
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    n_frames = clip.frames.shape[0]
    vanish = n_frames
    if policy.vanish_prob > 0 and n_frames > 1 and rng.random() < policy.vanish_prob:
        vanish = int(rng.integers(1, n_frames))
    windows = []
    for t in range(n_frames):
        if t == vanish:  # jump so that the object (radius ~ half the box) lies outside the window
            reach = side / 2 + max(box[2] - box[0], box[3] - box[1]) / 2 + rng.uniform(2.0, side / 2)
            angle = rng.uniform(0, 2 * np.pi)
            centre = (centre[0] + reach * np.cos(angle), centre[1] + reach * np.sin(angle))
        elif 0 < t < vanish:
            seen = _centroid(clip.labels[t - 1] == pid)
            if seen is not None:  # an absent object's window stays where it was last seen
                jitter = rng.normal(0, policy.centre_jitter_px, 2)
                centre = (seen[0] + jitter[0], seen[1] + jitter[1])
        windows.append(Window.around(centre[0], centre[1], side))
    return windows


def clip_batch(clips: list[Clip], policy: CropPolicy, rng: np.random.Generator) -> Batch:
    """Cut one training batch from clips of equal length (see the module docstring)."""
    size = policy.input_size
    crop = policy.crop_size_px or size
    n_frames = clips[0].frames.shape[0]
    images: list[list[np.ndarray]] = [[] for _ in range(n_frames)]  # per frame, one per image row
    index, targets, boxes = [], [], []
    for clip in clips:
        if clip.frames.shape[0] != n_frames:
            raise ValueError("clips of one batch must have the same number of frames")
        h, w = clip.frames.shape[1:]
        sides = [box_side(b + [0, 0, 1, 1]) for b in clip.boxes]  # inclusive extents -> continuous
        sigma = denoise_sigma(policy.denoise, sides)
        levels = (policy.low_percentile, policy.high_percentile)
        norm = [normalize_frame(f, *levels, denoise_sigma=sigma) for f in clip.frames]
        if policy.mode == "full":
            shared_row = len(images[0])
            for t, (img, _) in enumerate(norm):
                images[t].append(resize_square(img, size))
        for j in rng.permutation(len(clip.object_ids))[: policy.max_objects]:
            masks = clip.labels == clip.object_ids[j]
            truth_box = clip.boxes[j].astype(np.float64) + [0, 0, 1, 1]  # inclusive -> continuous
            box = _jitter_box(truth_box, policy, rng, (h, w))
            if policy.mode == "full":
                boxes.append(box * [size / w, size / h, size / w, size / h])
                targets.append(np.stack([resize_square(m.astype(np.float32), size) > 0.5 for m in masks]))
                index.append(shared_row)
                continue
            windows = _object_windows(clip, j, box, window_side(box, crop, policy.context), policy, rng)
            boxes.append(windows[0].box_to_input(box, size))
            index.append(len(images[0]))
            for t, (win, (img, background)) in enumerate(zip(windows, norm)):
                images[t].append(cut(img, win, size, background))
            targets.append(
                np.stack([cut(m.astype(np.float32), win, size, 0.0) > 0.5 for m, win in zip(masks, windows)])
            )
    return Batch(
        images=torch.stack([to_model_input(frame_images) for frame_images in images]),
        image_index=torch.as_tensor(index, dtype=torch.int64),
        targets=torch.from_numpy(np.stack(targets, axis=1).astype(np.float32)),
        boxes=torch.as_tensor(np.array(boxes), dtype=torch.float32),
    )
