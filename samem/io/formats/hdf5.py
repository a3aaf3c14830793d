"""HDF5: ``/frames`` (T, H, W) of ``samem synth`` output and of results files recorded with frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samem.errors import SamemError
from samem.io.base import VideoReader, positive_or_none, rgb_to_luma, short_error

SUFFIXES = (".h5", ".hdf5", ".hdf")


class HDF5Reader(VideoReader):
    """``/frames`` (T, H, W) of an HDF5 file: ``samem synth`` output or a results file.

    Opened in SWMR read mode when possible so a recording still being written can be read;
    the frame count is fixed at open time.
    """

    def __init__(self, path: Path, dataset: str = "frames"):
        import h5py

        from samem.io.h5 import open_h5

        self.path = path
        self._file = open_h5(path, swmr=True)
        if dataset not in self._file:
            self._file.close()
            raise SamemError(
                f"{path}: no /{dataset} dataset (results recorded without raw frames cannot be re-analysed)"
            )
        ds = self._file[dataset]
        if not isinstance(ds, h5py.Dataset) or ds.ndim not in (3, 4):
            self._file.close()
            got = getattr(ds, "shape", "a group")
            raise SamemError(f"{path}: /{dataset} must be a (T, H, W) dataset, got {got}")
        self._ds = ds
        self.shape = tuple(int(s) for s in ds.shape[:3])
        self.dtype = np.dtype(ds.dtype)
        attrs = {**self._file.attrs, **ds.attrs}
        self.metadata = {
            "format": "hdf5",
            "pixel_size_nm": positive_or_none(attrs.get("pixel_size_nm")),
            "frame_interval_s": positive_or_none(attrs.get("frame_interval_s")),
        }

    def _read(self, i: int) -> np.ndarray:
        try:
            frame = self._ds[i]
        except (OSError, ValueError, KeyError) as exc:  # damaged chunks of a file
            where = f"{self.path}: cannot read frame {i} of {len(self)}"
            raise SamemError(f"{where} ({short_error(exc)})") from None
        return rgb_to_luma(frame) if frame.ndim == 3 else frame

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()
