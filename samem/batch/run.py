"""``run_batch``: plan the videos, skip the finished ones, run the others on a cluster, write the
summary and the statistics across videos (re-exported by :mod:`samem.batch`)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.batch.inputs import plan_jobs
from samem.batch.pipeline import analyze_file
from samem.batch.report import write_report
from samem.batch.results import video_summary
from samem.batch.runner import dask_client, run_jobs
from samem.batch.task import is_finished, scratch_dir
from samem.config import load_yaml
from samem.errors import SamemError

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """Outcome of a batch.

    Attributes
    ----------
    rows : list of dict
        One summary row per video, in input order (``status``: done, skipped (finished), failed).
    report : dict
        The content of ``OUT/summary.json``.
    out : Path
        The output folder.
    """

    rows: list[dict[str, Any]]
    report: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Rows of the videos that failed."""
        return [r for r in self.rows if r.get("status") == "failed"]


def load_batch_config(path: str | Path | None = None) -> dict[str, Any]:
    """The shipped ``configs/batch.yaml``, updated section by section from ``path`` if given."""
    cfg = load_yaml("batch")
    if path is not None:
        for key, value in load_yaml(path).items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
    return cfg


def _torch_threads(cfg: dict[str, Any], local: bool, workers: int | None) -> int | None:
    """Torch threads per video: the configured number, or on a LocalCluster cores / workers."""
    value = cfg.get("torch_threads", "auto")
    if value not in (None, "auto"):
        n = int(value)
        if n < 1:
            raise SamemError(f"torch_threads must be at least 1 or auto, got {value!r}")
        return n
    if value is None or not local:  # an external cluster's workers know their own machines
        return None
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers or cores))


def run_batch(
    inputs: list[str | Path],
    out: str | Path,
    *,
    auto_prompt: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    progress: bool | None = None,
    analyze=analyze_file,
    client=None,
) -> BatchResult:
    """Analyse every input video with ``samem analyze``'s pipeline on a dask cluster.

    Parameters
    ----------
    inputs : list of str or Path
        Video files, folders and glob patterns (see :mod:`samem.batch.inputs`).
    out : str or Path
        Output folder: ``OUT/<video name>/`` per video, plus the summary files.
    auto_prompt : bool
        Prompt videos that have no ``<video>.boxes.json`` automatically.
    scheduler : str, optional
        Address of an existing dask scheduler; default: a LocalCluster for this batch.
    workers : int, optional
        LocalCluster workers (default from configs/batch.yaml, else dask's choice).
    force : bool
        Analyse finished videos again.
    options : dict, optional
        Keyword options of the per-video analysis (:func:`samem.batch.pipeline.analyze_file`:
        ``model``, ``config`` (analysis settings YAML), ``pixel_size_nm``,
        ``frame_interval_s``, ``save_frames``, ``plots``).
    config : dict, optional
        Batch configuration (:func:`load_batch_config`); default the shipped one.
    progress : bool, optional
        Progress bar over videos (default: when stderr is a terminal).
    analyze : callable
        The per-video function run on the workers (default :func:`samem.batch.pipeline.analyze_file`).
    client : dask.distributed.Client, optional
        Use this client instead of creating one (``scheduler``/``workers`` are then ignored).

    Returns
    -------
    BatchResult

    Raises
    ------
    SamemError
        Bad inputs or options, or an unreachable scheduler. Failures of single videos are
        not raised: they are rows with ``status == "failed"``.
    """
    cfg = config if config is not None else load_batch_config()
    cluster_cfg = dict(cfg.get("cluster") or {})
    if workers is None:
        workers = cluster_cfg.get("workers")
    if workers is not None and int(workers) < 1:
        raise SamemError(f"--workers must be at least 1, got {workers}")
    opts = dict(options or {})
    threads = _torch_threads(cfg, local=client is None and not scheduler, workers=workers)
    if threads is not None and analyze is analyze_file:
        opts.setdefault("torch_threads", threads)
    jobs = plan_jobs(inputs, out, auto_prompt=auto_prompt, options=opts)
    out_root = jobs[0].out_dir.parent
    summary_cfg = dict(cfg.get("summary") or {})
    if analyze is analyze_file:
        # the analysis settings are checked before anything runs; their statistics settings
        # are the summary's unless configs/batch.yaml sets its own
        from samem.stream.settings import load_settings

        settings = load_settings(opts.get("config"), {"model.name": opts.get("model")})
        if summary_cfg.get("stats") is None:
            summary_cfg["stats"] = settings.stats.config
    formats = tuple(summary_cfg.pop("plot_formats", ("png", "svg")))
    summarize = functools.partial(video_summary, config=summary_cfg)
    out_root.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    try:
        if client is not None:
            rows = run_jobs(jobs, client, analyze, summarize, force=force, progress=progress, token=token)
        elif all(is_finished(j) for j in jobs) and not force:
            rows = run_jobs(jobs, None, analyze, summarize, force=False, progress=progress)
        else:
            with dask_client(
                scheduler,
                workers=workers,
                threads_per_worker=int(cluster_cfg.get("threads_per_worker", 1)),
                processes=bool(cluster_cfg.get("processes", True)),
                memory_limit=cluster_cfg.get("memory_limit", "auto"),
                dashboard_address=cluster_cfg.get("dashboard_address"),
                timeout_s=float(cluster_cfg.get("timeout_s", 60)),
            ) as new_client:
                rows = run_jobs(
                    jobs, new_client, analyze, summarize, force=force, progress=progress, token=token
                )
    finally:
        # after an interruption: the scratch folders of this run's unfinished videos (their
        # workers are stopped once the LocalCluster is closed; an external cluster cancels them)
        for job in jobs:
            shutil.rmtree(scratch_dir(job, token), ignore_errors=True)
    report = write_report(rows, out_root, summary_cfg, formats=formats)
    return BatchResult(rows=rows, report=report, out=out_root)
