"""Writing synthetic videos (HDF5 or DAVIS-style folders) and reading their truth back.

HDF5 layout (the contract in docs/architecture.md, "Synthetic video")::

    /frames            (T, H, W) uint8|uint16, chunks (1, H, W); attrs pixel_size_nm, frame_interval_s
    /truth/labels      (T, H, W) uint16, chunks (1, 128, 128), gzip level 1; empty tiles unwritten (read as 0)
    /truth/tracks      table frame, particle, x, y, inside, visible, area_px, angle_rad, snr
    /truth/snr         (T,) float64
    /truth/particles   table: one row per particle (shape, size_nm, D_nm2_s, alpha, motion, ...)
    /truth/stage_px    (T, 2) stage drift offset (px) included in x, y
    /truth attrs       thickness_nm, seed, params_json, particle_ids, D_nm2_s, alpha,
                       pixel_size_nm, frame_interval_s

Folder layout (SAM 2 / DAVIS training style; ``name`` defaults to the folder's name)::

    ROOT/JPEGImages/<name>/00000.jpg   frames, 8-bit JPEG
    ROOT/Annotations/<name>/00000.png  palettised PNG, value = particle id (0 background)
    ROOT/truth/<name>.h5               the /truth group above, without /frames

Both are written to a temporary name next to the target and renamed at the end, so an
error leaves no half-written output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from samem import __version__
from samem.errors import SamemError
from samem.io.h5 import open_h5
from samem.io.table import read_table, write_table
from samem.synthetic.params import SynthParams
from samem.synthetic.render import Renderer, SynthVideo, frame_snr, iter_frames

#: side (px) of the label chunks in HDF5
LABEL_TILE = 128

#: colours of the first label ids in the PNG palette (DAVIS-like); the rest are grey
_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128, 0, 128, 128, 128, 128, 128]


@dataclass
class Truth:
    """Ground truth of a synthetic video, as read back by :func:`read_truth`.

    Attributes
    ----------
    tracks : DataFrame ``frame, particle, x, y`` (px, x = column) plus ``inside``,
        ``visible``, ``area_px``, ``angle_rad``, ``snr``.
    particles : DataFrame, one row per particle (``particle``, ``D_nm2_s``, ``alpha``,
        ``motion``, ``shape``, ``size_nm``, ...).
    snr : array (T,) per-frame SNR.
    pixel_size_nm, frame_interval_s, thickness_nm : float
    seed : int
    params : dict, the full parameter set.
    stage_px : array (T, 2) stage drift (px).
    """

    tracks: pd.DataFrame
    particles: pd.DataFrame
    snr: np.ndarray
    pixel_size_nm: float
    frame_interval_s: float
    thickness_nm: float
    seed: int
    params: dict
    stage_px: np.ndarray

    @property
    def D_nm2_s(self) -> pd.Series:
        """Diffusion coefficient per particle id (nm^2/s, nm^2/s^alpha for anomalous)."""
        return self.particles.set_index("particle")["D_nm2_s"]

    @property
    def alpha(self) -> pd.Series:
        """Anomalous exponent per particle id (1 for non-anomalous motion)."""
        return self.particles.set_index("particle")["alpha"]


# ---------------------------------------------------------------------- atomic output
@contextlib.contextmanager
def _atomic(target: Path):
    """Yield a temporary file path next to ``target``; move it into place only on success."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise SamemError(f"cannot write {target}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise SamemError(f"cannot write {target}: folder {parent} is not writable")
    if target.is_dir():
        raise SamemError(f"cannot write {target}: it is a folder")
    tmp = parent / f".{target.name}.partial-{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _frames(video_or_params, workers):
    """(params, iterator of (frame, labels, rows), particles, stage_px) of a video or params."""
    if isinstance(video_or_params, SynthVideo):
        v = video_or_params
        by_frame = dict(tuple(v.tracks.groupby("frame", sort=True)))
        rows = [by_frame.get(t, v.tracks.iloc[:0]) for t in range(len(v.frames))]
        return v.params, zip(v.frames, v.labels, rows), v.particles, v.stage_px
    if isinstance(video_or_params, SynthParams):
        r = Renderer(video_or_params)
        return r.params, iter_frames(r.params, workers, r), r.scene.particles, r.scene.stage_px
    raise TypeError(f"expected SynthVideo or SynthParams, got {type(video_or_params).__name__}")


def _write_truth(
    g: h5py.Group,
    params: SynthParams,
    particles: pd.DataFrame,
    tracks: pd.DataFrame,
    snr: np.ndarray,
    stage_px: np.ndarray,
) -> None:
    write_table(g, "tracks", tracks)
    write_table(g, "particles", particles)
    g.create_dataset("snr", data=np.asarray(snr, np.float64))
    g.create_dataset("stage_px", data=np.asarray(stage_px, np.float64))
    g.attrs["thickness_nm"] = params.imaging.thickness_nm
    g.attrs["seed"] = params.seed
    g.attrs["params_json"] = params.to_json()
    g.attrs["particle_ids"] = particles["particle"].to_numpy(np.int64)
    g.attrs["D_nm2_s"] = particles["D_nm2_s"].to_numpy(np.float64)
    g.attrs["alpha"] = particles["alpha"].to_numpy(np.float64)
    g.attrs["pixel_size_nm"] = params.pixel_size_nm
    g.attrs["frame_interval_s"] = params.frame_interval_s


def _write_label_tiles(dset: h5py.Dataset, t: int, labels: np.ndarray, tile: int) -> None:
    """Write the non-empty ``tile x tile`` chunks of frame ``t``, deflated here.

    Empty chunks are not written (they read as the fill value 0), and zlib releases the
    GIL while h5py's own filter would not, so rendering threads keep running.
    """
    size = labels.shape[0]
    n_tiles = -(-size // tile)
    if n_tiles * tile == size:
        padded = np.ascontiguousarray(labels, np.uint16)
    else:  # edge chunks are stored whole
        padded = np.zeros((n_tiles * tile, n_tiles * tile), np.uint16)
        padded[:size, :size] = labels
    blocks = padded.reshape(n_tiles, tile, n_tiles, tile)
    for i, j in zip(*np.nonzero(blocks.any(axis=(1, 3)))):
        chunk = np.ascontiguousarray(blocks[i, :, j, :])
        dset.id.write_direct_chunk((t, i * tile, j * tile), zlib.compress(chunk, 1))


def _progress(it, n: int, progress: bool | None):
    return tqdm(it, total=n, disable=not progress, desc="synth", unit="frame")


def write_h5(video_or_params, path, *, workers: int | None = None, progress: bool | None = None) -> Path:
    """Write a video (or render ``SynthParams`` frame by frame) to an HDF5 file, atomically.

    Parameters
    ----------
    video_or_params : SynthVideo or SynthParams
    path : str or Path
        Output ``.h5`` file; replaced if it exists.
    workers : int, optional
        Rendering threads when given params.
    progress : bool, optional
        Show a tqdm progress bar on stderr.

    Returns
    -------
    Path of the written file.
    """
    path = Path(path)
    with _atomic(path) as tmp:
        params, frames_iter, particles, stage = _frames(video_or_params, workers)
        n, size, dtype = params.frames, params.size, np.dtype(params.imaging.dtype)
        try:
            f = h5py.File(tmp, "w")
        except OSError as exc:
            raise SamemError(f"cannot write {path}: {os.strerror(exc.errno) if exc.errno else exc}") from None
        with f:
            f.attrs.update(
                pixel_size_nm=params.pixel_size_nm,
                frame_interval_s=params.frame_interval_s,
                samem_version=__version__,
                source="samem synth",
            )
            dframes = f.create_dataset("frames", (n, size, size), dtype, chunks=(1, size, size))
            dframes.attrs.update(pixel_size_nm=params.pixel_size_nm, frame_interval_s=params.frame_interval_s)
            g = f.create_group("truth")
            tile = min(LABEL_TILE, size)
            dlabels = g.create_dataset(
                "labels",
                (n, size, size),
                np.uint16,
                chunks=(1, tile, tile),
                compression="gzip",
                compression_opts=1,
                fillvalue=0,
            )
            rows, snr = [], np.empty(n)
            for t, (frame, labels, r) in enumerate(_progress(frames_iter, n, progress)):
                dframes[t] = frame
                _write_label_tiles(dlabels, t, labels, tile)
                rows.append(r)
                snr[t] = frame_snr(r)
            _write_truth(g, params, particles, pd.concat(rows, ignore_index=True), snr, stage)
    return path


def _png(labels: np.ndarray, path: Path) -> None:
    from PIL import Image

    if labels.max() <= 255:
        img = Image.fromarray(labels.astype(np.uint8), mode="P")
        img.putpalette(_PALETTE + [128] * (768 - len(_PALETTE)))
        img.save(path)
    else:  # more than 255 ids: 16-bit greyscale
        cv2.imwrite(str(path), labels)


def _to_8bit(frame: np.ndarray, scale: float | None) -> tuple[np.ndarray, float]:
    if frame.dtype == np.uint8:
        return frame, 1.0
    scale = scale or 255.0 / max(float(np.percentile(frame, 99.9)), 1.0)
    return cv2.convertScaleAbs(frame, alpha=scale), scale


def write_folder(
    video_or_params,
    root,
    name: str | None = None,
    *,
    jpeg_quality: int = 95,
    workers: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Write DAVIS-style JPEG frames, PNG label masks and an HDF5 truth file.

    Parameters
    ----------
    video_or_params : SynthVideo or SynthParams
    root : str or Path
        Dataset root; created if missing (its parent must exist).
    name : str, optional
        Video name (sub-folder); default: the name of ``root``.
    jpeg_quality : int
        JPEG quality of the frames (uint16 frames are scaled to 8 bits first).

    Returns
    -------
    Path of the video's frame folder ``root/JPEGImages/<name>``.
    """
    root = Path(root)
    name = name or root.resolve().name
    if not root.parent.is_dir():
        raise SamemError(f"cannot write {root}: folder {root.parent} does not exist")
    if root.exists() and not root.is_dir():
        raise SamemError(f"cannot write {root}: it is a file")
    if not os.access(root.parent, os.W_OK) or (root.is_dir() and not os.access(root, os.W_OK)):
        raise SamemError(f"cannot write {root}: permission denied")
    params, frames_iter, particles, stage = _frames(video_or_params, workers)
    created = not root.exists()
    root.mkdir(exist_ok=True)
    tmp = root / f".{name}.partial-{os.getpid()}"
    ok = False
    try:
        for sub in ("JPEGImages", "Annotations", "truth"):
            (tmp / sub).mkdir(parents=True)
        rows, snr, scale = [], np.empty(params.frames), None
        for t, (frame, labels, r) in enumerate(_progress(frames_iter, params.frames, progress)):
            img, scale = _to_8bit(frame, scale)
            cv2.imwrite(
                str(tmp / "JPEGImages" / f"{t:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
            )
            _png(labels, tmp / "Annotations" / f"{t:05d}.png")
            rows.append(r)
            snr[t] = frame_snr(r)
        with h5py.File(tmp / "truth" / f"{name}.h5", "w") as f:
            f.attrs.update(
                pixel_size_nm=params.pixel_size_nm,
                frame_interval_s=params.frame_interval_s,
                samem_version=__version__,
                source="samem synth",
            )
            _write_truth(
                f.create_group("truth"), params, particles, pd.concat(rows, ignore_index=True), snr, stage
            )
        # move the finished parts into the shared dataset layout
        for src, final in (
            (tmp / "JPEGImages", root / "JPEGImages" / name),
            (tmp / "Annotations", root / "Annotations" / name),
            (tmp / "truth" / f"{name}.h5", root / "truth" / f"{name}.h5"),
        ):
            final.parent.mkdir(exist_ok=True)
            if final.is_dir():
                shutil.rmtree(final)
            os.replace(src, final)
        ok = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not ok:
            shutil.rmtree(root, ignore_errors=True)
    return root / "JPEGImages" / name


def read_truth(path, name: str | None = None) -> Truth:
    """Read the ground truth of a synthetic HDF5 file or DAVIS-style folder.

    Parameters
    ----------
    path : str or Path
        An ``.h5`` written by :func:`write_h5`, a folder written by :func:`write_folder`,
        or its ``truth/<name>.h5``.
    name : str, optional
        Video name inside a folder holding several.
    """
    path = Path(path)
    if path.is_dir():
        cands = sorted((path / "truth").glob("*.h5"))
        if name is not None:
            cands = [c for c in cands if c.stem == name]
        if len(cands) != 1:
            raise SamemError(f"{path}: expected one truth/<name>.h5, found {[c.name for c in cands]}")
        path = cands[0]
    with open_h5(path) as f:
        if "truth" not in f:
            raise SamemError(f"{path}: no /truth group (not a samem synthetic video)")
        g = f["truth"]
        return Truth(
            tracks=read_table(g["tracks"]),
            particles=read_table(g["particles"]),
            snr=g["snr"][()],
            pixel_size_nm=float(g.attrs["pixel_size_nm"]),
            frame_interval_s=float(g.attrs["frame_interval_s"]),
            thickness_nm=float(g.attrs["thickness_nm"]),
            seed=int(g.attrs["seed"]),
            params=json.loads(g.attrs["params_json"]),
            stage_px=g["stage_px"][()],
        )
