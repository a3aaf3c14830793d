"""An endless, in-memory stream of short randomised clips for training.

Clip ``i`` of a stream is a pure function of ``(recipe, seed, i)``: its parameters are
drawn from the recipe's ``randomize`` section, then it is rendered in memory (nothing
touches the disk). Iterating yields clips ``0, 1, 2, ...``; inside a torch DataLoader
worker ``w`` of ``n`` it yields ``w, w + n, ...`` so workers never repeat each other.
Torch is imported only by :meth:`ClipStream.torch_dataset` (or if already imported).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samem.errors import SamemError
from samem.synthetic.params import SynthParams
from samem.synthetic.randomize import sample
from samem.synthetic.render import generate

#: redraws allowed for one clip (crowded placement, no particle visible in frame 0)
MAX_REDRAWS = 20


@dataclass
class Clip:
    """One training clip.

    Attributes
    ----------
    frames : array (T, H, W) uint8.
    labels : array (T, H, W) uint16 instance labels.
    boxes : array (K, 4) float32 first-frame boxes ``(x0, y0, x1, y1)`` (px, inclusive
        pixel extents) of the objects visible in frame 0.
    object_ids : array (K,) label ids of those objects.
    snr : array (T,) per-frame SNR.
    params : the drawn :class:`SynthParams`.
    index : the clip's index in its stream.
    """

    frames: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    object_ids: np.ndarray
    snr: np.ndarray
    params: SynthParams
    index: int

    def masks(self, t: int = 0) -> np.ndarray:
        """Boolean masks (K, H, W) of the prompted objects in frame ``t``."""
        return self.labels[t][None] == self.object_ids[:, None, None]


def first_frame_boxes(labels0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (K, 4) float32 ``x0, y0, x1, y1``, ids (K,)) of the objects in a label image."""
    ids = np.unique(labels0)
    ids = ids[ids != 0]
    boxes = np.zeros((ids.size, 4), np.float32)
    for j, pid in enumerate(ids):
        rows, cols = np.nonzero(labels0 == pid)
        boxes[j] = (cols.min(), rows.min(), cols.max(), rows.max())
    return boxes, ids.astype(np.int64)


class ClipStream:
    """Endless iterable of randomised clips (torch IterableDataset compatible).

    Parameters
    ----------
    recipe : str or Path
        Recipe with a ``randomize`` section (default ``train``).
    clip_len : int
        Frames per clip.
    size : int
        Frame size (px).
    seed : int
        Stream seed; clip ``i`` depends only on ``(recipe, seed, i)``.
    **overrides
        Fixed parameter overrides applied before randomisation.
    """

    def __init__(
        self, recipe: str | Path = "train", clip_len: int = 8, size: int = 1024, seed: int = 0, **overrides
    ):
        self.base = SynthParams.from_recipe(recipe, frames=clip_len, size=size, seed=seed, **overrides)
        self.base.validate()
        self.clip_len, self.size, self.seed = clip_len, size, seed

    def clip(self, index: int) -> Clip:
        """Render clip ``index`` (deterministic)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(7, int(index))))
        last = None
        for _ in range(MAX_REDRAWS):
            params = sample(self.base, rng).replace(
                frames=self.clip_len, size=self.size, seed=int(rng.integers(2**62)), dtype="uint8"
            )
            try:
                video = generate(params.validate(), workers=1)
            except SamemError as exc:  # e.g. particles too crowded for this draw
                last = exc
                continue
            boxes, ids = first_frame_boxes(video.labels[0])
            if ids.size:
                return Clip(video.frames, video.labels, boxes, ids, video.snr, params, int(index))
        raise SamemError(
            f"could not draw a usable clip {index} in {MAX_REDRAWS} tries (last problem: {last})"
        )

    def __getitem__(self, index: int) -> Clip:
        return self.clip(index)

    def __iter__(self) -> Iterator[Clip]:
        start, step = 0, 1
        if "torch" in sys.modules:  # inside a DataLoader worker: interleave
            info = sys.modules["torch"].utils.data.get_worker_info()
            if info is not None:
                start, step = info.id, info.num_workers
        index = start
        while True:
            yield self.clip(index)
            index += step

    def torch_dataset(self):
        """This stream as a ``torch.utils.data.IterableDataset`` (imports torch)."""
        import torch

        stream = self

        class _ClipDataset(torch.utils.data.IterableDataset):
            def __iter__(self):
                return iter(stream)

        return _ClipDataset()
