"""``samem analyze``: the live :class:`~samem.stream.session.Session` run over a video file.

Outputs in one folder: ``results.h5`` (the recorder's layout, docs/architecture.md
"Results"), ``tracks.csv`` (trackpy-style table, pixels), ``stats.json`` (statistics
summary) and the standard figures (``trajectories``, ``msd``, ``vanhove``, ``vacf`` as PNG and
SVG). Every file is written under a temporary name and renamed when complete; if the run
fails, nothing it started is left behind: not its files, and not the output folder when the run
created it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem import __version__
from samem.errors import SamemError
from samem.io.readers import open_video
from samem.io.recorder import Recorder
from samem.stats.summary import write_stats
from samem.stream.session import Session
from samem.stream.settings import ServeSettings

log = logging.getLogger(__name__)

OUTPUTS = ("results.h5", "tracks.csv", "stats.json")


@dataclass
class AnalyzeReport:
    """What :func:`analyze_video` did: frames, particles, elapsed wall time (s), files written."""

    frames: int
    particles: int
    elapsed_s: float
    files: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else math.nan


def _first_frame_detections(reader, settings: ServeSettings) -> dict[int, tuple]:
    """Auto-prompt boxes on frame 0 of a recorded video: the detector on the mean of its first
    ``autoprompt.frames`` frames, given in reverse order so that each box follows its particle
    to frame 0 (:func:`samem.stream.autoprompt.detect` moves boxes to the last frame it is
    given). Live, the session must wait for those frames and prompts the last of them; offline
    nothing before it is lost. With ``autoprompt.confirm_sigma`` the faint candidates of those
    frames that the next ``frames`` frames confirm are added after the strong ones
    (:func:`samem.stream.autoprompt.confirmed`); as live, where the confirming detection must
    not be a particle already tracked, a detection on the next frames near one of the strong
    particles confirms nothing. At most the prompt limits' number of boxes, strongest first.
    """
    from samem.stream import autoprompt

    cfg = settings.autoprompt
    n = max(1, min(cfg.frames, len(reader)))
    frames = [reader[i] for i in range(n)][::-1]
    found, faint = autoprompt.detect_with_faint(frames, cfg)
    if faint and len(reader) >= 2 * n:  # faint candidates confirmed by the next n frames
        gate = float(cfg.confirm_gate)
        strong_later, faint_later = autoprompt.detect_with_faint([reader[i] for i in range(n, 2 * n)], cfg)
        # a strong particle found already, seen again on the next frames, confirms nothing (live,
        # the session's tracks hold it, so it is not new there either)
        free = faint_later + [d for d in strong_later if not autoprompt.confirmed([d], found, gate)]
        found += autoprompt.confirmed(faint, free, gate)
    limit = min(settings.prompts.max_per_prompt, settings.prompts.max_objects)
    if len(found) > limit:
        log.warning(
            "auto-prompt found %d particles; tracking the %d strongest (prompts limits)", len(found), limit
        )
    return {i + 1: d.box for i, d in enumerate(found[:limit])}


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _remove_new(out: Path, before: set[Path], created: list[Path]) -> None:
    """After a failed run: remove the files this run added to ``out`` and the folders it made."""
    if out.is_dir():
        for p in set(out.iterdir()) - before:
            if p.is_file() or p.is_symlink():
                p.unlink(missing_ok=True)
    for folder in created:  # deepest first; only if empty (never someone else's files)
        try:
            folder.rmdir()
        except OSError:
            break


def analyze_video(
    source: str | Path,
    out_dir: str | Path,
    tracker,
    settings: ServeSettings,
    boxes: tuple[int, Mapping[int, tuple]] | None = None,
    auto_prompt: bool = False,
    pixel_size_nm: float | None = None,
    frame_interval_s: float | None = None,
    save_frames: bool = False,
    overwrite: bool = False,
    plots: bool = True,
    model_name: str = "unknown",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> AnalyzeReport:
    """Track every frame of a video file and write results, tracks, statistics and plots.

    Parameters
    ----------
    source : str or Path
        Anything :func:`samem.io.readers.open_video` opens.
    out_dir : str or Path
        Output folder (created).
    tracker
        A fresh :class:`samem.track.StreamingTracker` (or the same interface).
    settings : ServeSettings
        Service settings (``configs/serve.yaml`` layout).
    boxes : tuple (frame, {id: box}), optional
        Box prompts (px) on a given frame.
    auto_prompt : bool
        Let the classical detector propose the boxes.
    pixel_size_nm, frame_interval_s : float, optional
        Override the file's calibration (nm/px, s).
    save_frames : bool
        Copy the raw frames into results.h5 (makes it re-analysable on its own).
    overwrite : bool
        Replace existing outputs in ``out_dir``.
    plots : bool
        Write the figures.
    model_name : str
        Stored in results.h5.
    progress : callable, optional
        Wraps the frame iterator (e.g. ``tqdm``).

    Returns
    -------
    AnalyzeReport
    """
    import time

    if boxes is None and not auto_prompt:
        raise SamemError("nothing to track: give a boxes file (--boxes FILE) or --auto-prompt")
    out = Path(out_dir)
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise SamemError(f"{out} already holds {', '.join(existing)}; use --overwrite or another --out")
    with open_video(source, pixel_size_nm, frame_interval_s) as reader:
        if boxes is not None and boxes[0] >= len(reader):
            raise SamemError(f"boxes are for frame {boxes[0]} but the video has {len(reader)} frames")
        px, dt = reader.metadata["pixel_size_nm"], reader.metadata["frame_interval_s"]
        averaged = settings.autoprompt.frames
        if auto_prompt and len(reader) < averaged:  # a single image, or a video shorter than that
            settings = settings.replace(autoprompt=settings.autoprompt.replace(frames=max(1, len(reader))))
        if auto_prompt and boxes is None:
            found = _first_frame_detections(reader, settings)
            if found:  # prompted on frame 0 like a boxes file; else the session keeps looking
                boxes, auto_prompt = (0, found), False
        session = Session(
            tracker,
            reader.frame_shape,
            px,
            dt,
            settings,
            boxes=boxes,
            auto_prompt=auto_prompt,
            keep_table=True,
        )
        if boxes is not None:
            session.check_boxes(boxes[1])
        created = _missing_folders(out)  # removed again if the run fails
        before = set(out.iterdir()) if out.is_dir() else set()
        out.mkdir(parents=True, exist_ok=True)
        rec = settings.recording
        try:
            recorder = Recorder(
                out / "results.h5",
                reader.frame_shape,
                reader.dtype,
                px,
                dt,
                save_frames=save_frames,
                flush_every=max(rec.flush_every, 100),
                compression=rec.compression,
                attrs={
                    "source": str(source),
                    "model": model_name,
                    "config_json": settings.to_dict(),
                    "samem_version": __version__,
                },
                atomic=True,
                overwrite=True,
            )
        except BaseException:
            _remove_new(out, before, created)
            raise
        written: list[Path] = []
        t0 = time.monotonic()
        try:
            indices = range(len(reader))
            for i in progress(indices) if progress else indices:
                frame = reader[i]
                ts = i * dt if dt else math.nan
                result = session.process(i, frame, ts)
                recorder.append(i, ts, result.labels, result.rows, frame if save_frames else None)
            stats = session.statistics() if session.live.particles else None
            written.append(recorder.close(stats_writer=(lambda f: write_stats(f, stats)) if stats else None))
            table = session.table()
            table.to_csv(out / "tracks.csv.part", index=False)
            os.replace(out / "tracks.csv.part", out / "tracks.csv")
            written.append(out / "tracks.csv")
            if stats is not None:
                summary = {**stats.summary, "calibrated": session.calibrated}
            else:
                summary = {
                    "n_particles": 0,
                    "calibrated": session.calibrated,
                    "message": "no particle was tracked",
                }
            _atomic_text(out / "stats.json", json.dumps(summary, indent=1, allow_nan=False))
            written.append(out / "stats.json")
            if plots and stats is not None:
                from samem.stats.plots import plot_all

                written += plot_all(
                    table,
                    out,
                    session.live.scale.pixel_size_nm,
                    session.live.scale.frame_interval_s,
                    config=session.stats_cfg,
                    stats=stats,
                    frame_shape=reader.frame_shape,
                )
        except BaseException:
            recorder.abort()
            for p in written:
                Path(p).unlink(missing_ok=True)
            _remove_new(out, before, created)
            raise
    return AnalyzeReport(
        frames=len(reader),
        particles=int(summary.get("n_particles", 0)),
        elapsed_s=time.monotonic() - t0,
        files=[Path(p) for p in written],
        summary=summary,
    )
