"""One video of a batch, as run on a dask worker: analyse into a scratch folder, then publish.

A video is *finished* when ``OUT/<name>/`` exists with its marker file :data:`MARKER` inside.
The analysis writes into a hidden scratch folder ``OUT/.<name>.partial-<id>/``; the marker is
written there last (itself atomically, through a temporary file and ``os.replace``), then the
scratch folder is renamed to ``OUT/<name>/`` in one atomic step. An interrupted or failed run
therefore never leaves a folder that looks finished, and a re-run skips exactly the videos
whose folder has the marker (and whose input file has not changed since).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samem.batch.inputs import VideoJob
from samem.errors import SamemError
from samem.jsonsafe import jsonable

#: file that marks a video's output folder as complete
MARKER = "batch_done.json"

AnalyzeFn = Callable[..., Any]


def fingerprint(video: Path) -> dict[str, Any]:
    """Identity of an input at analysis time: path, size (bytes) and modification time (ns).

    For a frame folder, the size and latest modification time over its files.
    """
    if video.is_dir():
        files = [p for p in video.iterdir() if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        mtime = max((p.stat().st_mtime_ns for p in files), default=video.stat().st_mtime_ns)
    else:
        st = video.stat()
        size, mtime = st.st_size, st.st_mtime_ns
    return {"path": str(video), "size": int(size), "mtime_ns": int(mtime)}


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """The marker of a finished video folder, or None when the video is not finished."""
    try:
        return json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_finished(job: VideoJob) -> bool:
    """True when ``job.out_dir`` holds a marker written for the current version of the input."""
    marker = read_marker(job.out_dir)
    if marker is None:
        return False
    try:
        current = fingerprint(job.video)
    except OSError:
        return False
    return marker.get("input") == current


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def scratch_dir(job: VideoJob, token: str) -> Path:
    """Hidden scratch folder of ``job`` in the batch run ``token``: ``OUT/.<name>.partial-<token>``."""
    return job.out_dir.parent / f".{job.name}.partial-{token}"


def run_job(
    job: VideoJob,
    analyze: AnalyzeFn,
    summarize: Callable[[Path], dict[str, Any]],
    token: str | None = None,
) -> dict[str, Any]:
    """Analyse one video and publish its outputs atomically; return its summary row.

    Parameters
    ----------
    job : VideoJob
        The video, its output folder and prompts.
    analyze : callable
        ``analyze(video, out_dir, boxes=..., auto_prompt=..., **job.options)``: the per-video
        pipeline of ``samem analyze``, writing its files into ``out_dir``.
    summarize : callable
        ``summarize(out_dir) -> dict``: the summary row read back from the outputs.
    token : str, optional
        Identifier of the batch run, naming the scratch folder (:func:`scratch_dir`) so that
        the client can remove the scratch folders of an interrupted run; default: random.

    Returns
    -------
    dict
        The summary row, with ``video``, ``name``, ``status`` ("done"), ``elapsed_s`` (wall
        time of the analysis, s, model loading included) and ``processing_fps`` (frames
        tracked per second: ``analyze``'s own figure when its result has an ``fps``
        attribute, else frames / ``elapsed_s``).

    Raises
    ------
    SamemError
        No prompts for this video, or a user-facing problem reported by the analysis.
    Exception
        Anything else the analysis raises; the scratch folder is removed either way.
    """
    if job.boxes is None and not job.auto_prompt:
        raise SamemError(
            f"{job.video}: no prompts: put the boxes in {job.video.parent / (job.name + '.boxes.json')} "
            "or use --auto-prompt"
        )
    job.out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir(job, token or uuid.uuid4().hex[:12])
    source = fingerprint(job.video)
    try:
        if scratch.exists():  # a previous attempt of this task (dask retries after a lost worker)
            shutil.rmtree(scratch)
        scratch.mkdir()
        t0 = time.perf_counter()
        report = analyze(job.video, scratch, boxes=job.boxes, auto_prompt=job.boxes is None, **job.options)
        elapsed_s = time.perf_counter() - t0
        row = dict(summarize(scratch))
        frames = row.get("frames")
        fps = getattr(report, "fps", None)  # tracking only; else frames over the whole task
        if not (isinstance(fps, (int, float)) and fps > 0):
            fps = (frames / elapsed_s) if frames and elapsed_s > 0 else None
        row.update(
            video=str(job.video),
            name=job.name,
            status="done",
            prompt=job.prompt,
            elapsed_s=elapsed_s,
            processing_fps=fps,
        )
        marker = {"input": source, "options": job.options, "summary": row, "finished_unix_s": time.time()}
        write_json_atomic(scratch / MARKER, marker)
        if job.out_dir.exists():
            if read_marker(job.out_dir) is None:  # never delete a folder samem batch did not publish
                raise SamemError(
                    f"{job.out_dir}: exists but was not written by samem batch; move it away to analyse "
                    f"{job.video.name} there"
                )
            shutil.rmtree(job.out_dir)  # outputs of an older version of the input
        os.rename(scratch, job.out_dir)
        return row
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
