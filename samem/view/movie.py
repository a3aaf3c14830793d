"""Annotated movies of a results file (``samem movie``, ``samem analyze --movie``).

Each frame of the video is drawn with every tracked particle's contour (from ``/labels``), its
id, a trail of its last positions (from ``/tracks``), a scale bar in nm, the frame number
and time, and a progress bar along the bottom edge. Frames come from the results file's
``/frames`` when it holds them, else from the video given. Output by the name given: ``.mp4``
(H.264 through imageio-ffmpeg), ``.gif``, or a folder (no suffix) of PNG frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from samem.errors import SamemError
from samem.view import render

log = logging.getLogger(__name__)

FORMATS = (".mp4", ".gif", "")


def _format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix in (".mp4", ".gif"):
        return suffix
    if suffix == "" or out.is_dir():
        return "png"
    raise SamemError(f"{out}: movie must end in .mp4 or .gif, or be a folder (PNG frames)")


def render_movie(
    results: str | Path,
    out: str | Path,
    video: str | Path | None = None,
    fps: float | None = None,
    trail_frames: int = 30,
    max_side: int = render.MAX_SIDE,
    overwrite: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Path:
    """Render the annotated movie of a results file.

    Parameters
    ----------
    results : str or Path
        ``results.h5`` from ``samem analyze`` or a ``samem serve`` recording.
    out : str or Path
        ``.mp4``, ``.gif`` or a folder for PNG frames.
    video : str or Path, optional
        The tracked video (anything ``open_video`` reads); needed when the results hold no frames.
        Row t of the results is frame ``/frame_index[t]`` of the video.
    fps : float, optional
        Movie frame rate, frames/s (default: 1 / frame interval, clipped to 1..30; 10 when unknown).
    trail_frames : int
        Positions drawn behind each particle (frames).
    max_side : int
        Largest side of the movie, px (frames are downsampled, never enlarged).
    overwrite : bool
        Replace an existing ``out``.
    progress : callable, optional
        Wraps the frame loop (e.g. ``tqdm``).

    Returns
    -------
    Path
        ``out``.
    """
    from samem.io.recorder import open_results
    from samem.io.table import read_table

    out = Path(out)
    kind = _format(out)
    if out.exists() and not overwrite and not (kind == "png" and out.is_dir() and not any(out.iterdir())):
        raise SamemError(f"{out} exists; use --overwrite or another --out")
    if not out.parent.is_dir():
        raise SamemError(f"{out.parent}: no such folder for the movie")
    if trail_frames < 0 or not 16 <= max_side <= 8192:
        raise SamemError("trail frames must be >= 0 and the movie side 16..8192 px")
    with open_results(results) as f:
        if "labels" not in f:
            raise SamemError(f"{results}: not a samem results file (no /labels)")
        n = int(f["labels"].shape[0])
        index = f["frame_index"][:n] if "frame_index" in f else np.arange(n)
        stamps = f["timestamp"][:n] if "timestamp" in f else np.full(n, math.nan)
        has_frames = "frames" in f and f["frames"].shape[0] >= n and n > 0
        if not has_frames and video is None:
            raise SamemError(
                f"{results} holds no frames (recorded without them); give the tracked video with --video FILE"
            )
        if n == 0:
            raise SamemError(f"{results} holds no tracked frames")
        px = float(f.attrs.get("pixel_size_nm", math.nan))
        dt = float(f.attrs.get("frame_interval_s", math.nan))
        tracks = read_table(f["tracks"]) if "tracks" in f else None
        reader = None
        if not has_frames:
            from samem.io.readers import open_video

            reader = open_video(video)
            if int(index.max()) >= len(reader):
                reader.close()
                raise SamemError(
                    f"{video} has {len(reader)} frames but {results} tracked frame {int(index.max())}: "
                    "not the video these results come from"
                )
            if tuple(reader.frame_shape) != tuple(f["labels"].shape[1:]):
                reader.close()
                raise SamemError(
                    f"{video} frames are {reader.frame_shape} but the results' are {f['labels'].shape[1:]}"
                )
        try:
            return _write(
                f, reader, out, kind, index, stamps, px, dt, tracks, fps, trail_frames, max_side, progress
            )
        finally:
            if reader is not None:
                reader.close()


def _trails(tracks, trail_frames: int) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{particle: (frames, x, y)}`` of present positions, sorted by frame."""
    if tracks is None or len(tracks) == 0 or trail_frames == 0:
        return {}
    t = tracks[tracks["present"].astype(bool)].sort_values("frame")
    return {
        int(p): (g["frame"].to_numpy(), g["x"].to_numpy(), g["y"].to_numpy())
        for p, g in t.groupby("particle")
    }


def _write(f, reader, out, kind, index, stamps, px, dt, tracks, fps, trail_frames, max_side, progress):
    n = len(index)
    first = f["frames"][0] if reader is None else reader[int(index[0])]
    shape = first.shape[:2]
    scale = render.display_scale(shape, max_side)
    samples = [
        f["frames"][i] if reader is None else reader[int(index[i])]
        for i in np.linspace(0, n - 1, 5, dtype=int)
    ]
    lo, hi = render.contrast_limits(samples)
    nm_per_px = px / scale if math.isfinite(px) and px > 0 else None
    if fps is None:
        fps = min(30.0, max(1.0, 1.0 / dt)) if math.isfinite(dt) and dt > 0 else 10.0
    if not fps > 0:
        raise SamemError(f"fps must be positive, got {fps}")
    trails = _trails(tracks, trail_frames)
    writer = None
    tmp = out.with_name(out.name + ".part" + (out.suffix if kind != "png" else ""))
    if kind == "png":
        out.mkdir(exist_ok=True)
    elif kind == ".mp4":
        import imageio.v2 as imageio

        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=2,
            pixelformat="yuv420p",
        )
    else:
        import imageio.v2 as imageio

        writer = imageio.get_writer(tmp, format="GIF", duration=1.0 / fps, loop=0)
    ok = False
    try:
        rows = range(n)
        for t in progress(rows) if progress else rows:
            seq = int(index[t])
            raw = f["frames"][t] if reader is None else reader[seq]
            labels = f["labels"][t]
            grey, lab = render.downsample(render.to_uint8(raw, lo, hi), labels, scale)
            rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
            outlines = {k: [[x * 1.0, y * 1.0] for x, y in v] for k, v in render.contours(lab).items()}
            trail_pts, positions = {}, {}
            for pid, (fr, xs, ys) in trails.items():
                sel = (fr <= seq) & (fr > seq - trail_frames)
                if sel.any():
                    trail_pts[pid] = list(zip(xs[sel] * scale, ys[sel] * scale))
                if pid in outlines and sel.any() and fr[sel][-1] == seq:
                    positions[pid] = (xs[sel][-1] * scale, ys[sel][-1] * scale)
            for pid, pts in outlines.items():
                if pid not in positions:
                    arr = np.asarray(pts)
                    positions[pid] = (float(arr[:, 0].max()), float(arr[:, 1].min()) + 8)
            time_s = seq * dt if math.isfinite(dt) else stamps[t] - stamps[0]
            caption = f"frame {seq}" + (f"  t = {time_s:.3f} s" if math.isfinite(time_s) else "")
            render.draw_overlay(
                rgb,
                outlines,
                trail_pts,
                positions,
                nm_per_px,
                caption,
                progress=(t + 1) / n if n > 1 else 1.0,
            )
            if kind == "png":
                cv2.imwrite(str(out / f"frame_{t:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            else:
                writer.append_data(rgb)
        ok = True
    finally:
        if writer is not None:
            writer.close()
            if ok:
                tmp.replace(out)
            else:
                tmp.unlink(missing_ok=True)
    return out
