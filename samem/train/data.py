"""Where training clips come from: the synthetic stream, HDF5 videos with labels, DAVIS folders,
and real labelled tiles mixed into any of them (:mod:`samem.train.tiles`).

Every source is a function ``clip(index) -> Clip`` that is deterministic in ``index``, so
a resumed run sees exactly the data it would have seen without the interruption.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from samem.errors import SamemError
from samem.io.formats.images import read_label_image
from samem.io.h5 import open_h5
from samem.synthetic.clips import Clip, ClipStream, first_frame_boxes
from samem.train.config import DataSection
from samem.train.tiles import TileClips, mixed_source, split_tiles

ClipSource = Callable[[int], Clip]


def _from_arrays(frames: np.ndarray, labels: np.ndarray, index: int) -> Clip | None:
    boxes, ids = first_frame_boxes(labels[0])
    if ids.size == 0:
        return None
    return Clip(frames, labels, boxes, ids, np.full(len(frames), np.nan), None, index)


class _Videos:
    """Random clips of ``clip_len`` frames from labelled videos (HDF5 files or DAVIS folders)."""

    def __init__(self, paths: list[str], clip_len: int, seed: int, kind: str):
        self.clip_len, self.seed, self.kind = clip_len, seed, kind
        self.videos = [self._open(v) for p in paths for v in self._expand(Path(p))]

    def _expand(self, path: Path) -> list[Path]:
        """A DAVIS root (``JPEGImages/<video>``, ``Annotations/<video>``) holds many videos."""
        if not path.exists():
            raise SamemError(f"training data {path}: no such file or folder")
        if self.kind == "h5":
            return [path]
        videos = sorted(p.name for p in (path / "Annotations").glob("*") if p.is_dir())
        if not videos:
            raise SamemError(f"{path}: no Annotations/<video>/ folders (DAVIS layout expected)")
        return [path / "Annotations" / v for v in videos]

    def _open(self, path: Path) -> tuple[Path, int]:
        if self.kind == "h5":
            with open_h5(path) as f:
                key = "truth/labels" if "truth/labels" in f else "labels"
                if "frames" not in f or key not in f:
                    raise SamemError(f"{path}: needs /frames and /truth/labels (or /labels) for training")
                n = min(len(f["frames"]), len(f[key]))
        else:
            n = len(list(path.glob("*.png")))
            if n == 0:
                raise SamemError(f"{path}: no *.png label masks")
        if n < self.clip_len:
            raise SamemError(f"{path}: {n} frames, fewer than clip_len {self.clip_len}")
        return path, n

    def _read(self, path: Path, start: int) -> tuple[np.ndarray, np.ndarray]:
        stop = start + self.clip_len
        if self.kind == "h5":
            with open_h5(path) as f:
                key = "truth/labels" if "truth/labels" in f else "labels"
                return f["frames"][start:stop], f[key][start:stop]
        masks = sorted(path.glob("*.png"))[start:stop]
        jpeg_dir = path.parents[1] / "JPEGImages" / path.name
        frames = []
        for m in masks:
            img = next(jpeg_dir.glob(m.stem + ".*"), None)
            if img is None:
                raise SamemError(f"{jpeg_dir}: no frame for label {m.name}")
            frames.append(cv2.imread(str(img), cv2.IMREAD_GRAYSCALE))
        labels = [read_label_image(m) for m in masks]
        return np.stack(frames), np.stack(labels)

    def __call__(self, index: int) -> Clip:
        rng = np.random.default_rng((self.seed, index))
        for _ in range(20):
            path, n = self.videos[rng.integers(len(self.videos))]
            frames, labels = self._read(path, int(rng.integers(0, n - self.clip_len + 1)))
            clip = _from_arrays(frames, labels, index)
            if clip is not None:
                return clip
        raise SamemError("no labelled object in the first frame of 20 random clips: check the training data")


def clip_source(data: DataSection, seed: int | None = None) -> ClipSource:
    """Build the clip source described by a training config's ``data`` section."""
    seed = data.seed if seed is None else seed
    if data.source == "synthetic":
        stream = ClipStream(data.recipe, clip_len=data.clip_len, size=data.frame_size, seed=seed)
        source: ClipSource = stream.clip
    else:
        source = _Videos(list(data.paths), data.clip_len, seed, data.source)
    if data.tiles_fraction > 0:
        train_tiles, _ = split_tiles(list(data.tiles), data.tiles_val)
        tiles = TileClips(train_tiles, data.clip_len, data.frame_size, seed, data.tiles_noisy_share)
        source = mixed_source(source, tiles, data.tiles_fraction, seed)
    return source


def real_val_source(data: DataSection) -> ClipSource | None:
    """Clips of the held-out real tiles (``data.tiles_val`` > 0), for ``val_real_iou``; else None."""
    if not data.tiles or not data.tiles_val:
        return None
    _, val_tiles = split_tiles(list(data.tiles), data.tiles_val)
    return TileClips(val_tiles, data.clip_len, data.frame_size, data.val_seed, data.tiles_noisy_share)
