"""Real labelled micrographs as training clips: moving crops of still tiles ("pseudo-videos").

A folder of real images with hand-drawn particle masks (``images/*.png`` + ``labels/*.png``,
the layout of microscopy-seg-track; a label pixel > 127 in its first channel is particle)
becomes an endless source of short clips: each clip takes one tile, turns and flips it,
rescales it, cuts a ``frame_size`` window and lets the window drift a few pixels per frame,
so that the memory path sees motion; the instances are the 4-connected components of the
mask. Photometric augmentation (gamma, contrast, blur, and on part of the clips
per-frame shot-like noise down to LPTEM signal-to-noise) keeps 16 tiles from being
memorised. :func:`mixed_source` interleaves such clips with the synthetic stream at a
stated fraction; the last ``tiles_val`` tiles of the folder (natural file order) are held
out of training and are the validation tiles.

Every clip depends only on ``(seed, index)``, as for the other sources, so a resumed run
sees the same data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from samem.errors import SamemError
from samem.synthetic.clips import Clip, first_frame_boxes

#: components smaller than this (px, after rescaling) are not prompted
MIN_OBJECT_PX = 64
#: rescaling of a tile (particles of 40-80 px become 30-100 px)
SCALE_RANGE = (0.75, 1.3)
#: rms drift of the window per frame and axis (px)
DRIFT_PX = 3.0
#: share of clips given per-frame noise, and the range of its std (fraction of the image std)
NOISY_SHARE = 0.5
NOISE_RANGE = (0.1, 1.5)


def _number_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def tile_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(image, label)`` paths of a tiles folder, in natural order of the image names.

    The label of ``images/image_N.png`` is ``labels/label_N.png`` (or ``labels/image_N.png``).

    Raises
    ------
    SamemError
        Missing folders, no images, or an image without a label.
    """
    folder = Path(folder)
    images = sorted((folder / "images").glob("*.png"), key=_number_key)
    if not images:
        raise SamemError(f"{folder}: no images/*.png (tiles need images/ and labels/ folders)")
    pairs = []
    for img in images:
        for name in (img.name.replace("image", "label", 1), img.name):
            lab = folder / "labels" / name
            if lab.is_file():
                pairs.append((img, lab))
                break
        else:
            raise SamemError(f"{img}: no label {folder / 'labels' / img.name.replace('image', 'label', 1)}")
    return pairs


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SamemError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    return img


def _read_tile(image: Path, label: Path) -> tuple[np.ndarray, np.ndarray]:
    """8-bit image and uint16 instance labels (4-connected components of the mask)."""
    img = _read_gray(image)
    if img.dtype != np.uint8:
        lo, hi = np.percentile(img, (0.1, 99.9))
        img = np.clip((img - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    from PIL import Image

    with Image.open(label) as lab_img:
        lab = np.asarray(lab_img)
    if lab.ndim == 3:
        lab = lab[..., 0]
    if lab.shape != img.shape:
        raise SamemError(f"{label}: shape {lab.shape} differs from its image {image} {img.shape}")
    comp, _ = ndimage.label(lab > 127)
    return img, comp.astype(np.uint16)


@dataclass
class TileClips:
    """Clips of ``clip_len`` frames cut from labelled real tiles (see the module docstring).

    Parameters
    ----------
    pairs : list of (image path, label path)
    clip_len : frames per clip
    frame_size : side of the (square) frames (px)
    seed : stream seed
    noisy_share : share of clips given per-frame noise (std 0.1-1.5 x the image's), 0-1
    """

    pairs: list[tuple[Path, Path]]
    clip_len: int
    frame_size: int
    seed: int
    noisy_share: float = NOISY_SHARE

    def __post_init__(self) -> None:
        if not self.pairs:
            raise SamemError("no real tiles to train on")
        self.tiles = [_read_tile(i, lab) for i, lab in self.pairs]

    def __call__(self, index: int) -> Clip:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(11, int(index))))
        for _ in range(20):
            clip = self._draw(rng, index)
            if clip is not None:
                return clip
        raise SamemError("no particle of at least 64 px in 20 random crops of the real tiles")

    def _draw(self, rng: np.random.Generator, index: int) -> Clip | None:
        img, lab = self.tiles[int(rng.integers(len(self.tiles)))]
        k = int(rng.integers(4))
        img, lab = np.rot90(img, k), np.rot90(lab, k)
        if rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        n, side = self.clip_len, self.frame_size
        scale = max(rng.uniform(*SCALE_RANGE), (side + 8) / min(img.shape))
        size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
        img = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
        lab = cv2.resize(np.ascontiguousarray(lab), size, interpolation=cv2.INTER_NEAREST)
        h, w = img.shape
        # a drifting window: a random walk clipped to the tile
        steps = rng.normal(0, DRIFT_PX, (n, 2))
        steps[0] = 0
        path = np.cumsum(steps, axis=0)
        y0 = rng.uniform(0, h - side)
        x0 = rng.uniform(0, w - side)
        ys = np.clip(np.round(y0 + path[:, 0]), 0, h - side).astype(int)
        xs = np.clip(np.round(x0 + path[:, 1]), 0, w - side).astype(int)
        frames = np.stack([img[y : y + side, x : x + side] for y, x in zip(ys, xs)]).astype(np.float32)
        labels = np.stack([lab[y : y + side, x : x + side] for y, x in zip(ys, xs)])
        ids, counts = np.unique(labels[0], return_counts=True)
        keep = ids[(ids != 0) & (counts >= MIN_OBJECT_PX)]
        if keep.size == 0:
            return None
        labels = np.where(np.isin(labels, keep), labels, 0).astype(np.uint16)
        frames = self._photometric(frames, rng)
        boxes, object_ids = first_frame_boxes(labels[0])
        return Clip(frames, labels, boxes, object_ids, np.full(n, np.nan), None, int(index))

    def _photometric(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Gamma, contrast, blur and (on part of the clips) per-frame noise; uint8 out."""
        x = frames / 255.0
        x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.4)
        x = (x - x.mean()) * rng.uniform(0.6, 1.3) + x.mean() + rng.uniform(-0.1, 0.1)
        sigma = rng.uniform(0, 1.5) if rng.random() < 0.5 else 0.0
        if sigma > 0.3:
            x = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])
        if rng.random() < self.noisy_share:
            std = rng.uniform(*NOISE_RANGE) * float(x.std())
            x = x + rng.normal(0, std, x.shape)
        return np.clip(x * 255, 0, 255).astype(np.uint8)


def split_tiles(folders: list[str], held_out: int) -> tuple[list, list]:
    """(training pairs, validation pairs): the last ``held_out`` tiles of each folder validate."""
    train, val = [], []
    for folder in folders:
        pairs = tile_pairs(folder)
        if held_out >= len(pairs):
            raise SamemError(
                f"{folder}: data.tiles_val {held_out} leaves no tile of {len(pairs)} to train on"
            )
        cut = len(pairs) - held_out
        train += pairs[:cut]
        val += pairs[cut:]
    return train, val


def mixed_source(synthetic, tiles: TileClips, fraction: float, seed: int):
    """Clip ``i`` is a real-tile clip with probability ``fraction``, else synthetic (deterministic)."""

    def clip(index: int) -> Clip:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(13, int(index))))
        return tiles(index) if rng.random() < fraction else synthetic(index)

    return clip
