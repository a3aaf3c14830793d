"""``run_batch``: plan the videos, skip the finished ones, run the others on a cluster, write the
summary and the statistics across videos (re-exported by :mod:`samem.batch`)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.batch.inputs import plan_jobs
from samem.batch.pipeline import analyze_file
from samem.batch.report import write_report
from samem.batch.results import video_summary
from samem.batch.runner import dask_client, run_jobs
from samem.batch.task import is_finished, scratch_dir
from samem.config import Settings, load, load_yaml
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


@dataclass(frozen=True)
class ClusterSettings(Settings):
    """``cluster``: the LocalCluster a batch starts (docs/batch.md)."""

    workers: int | None = None  # videos analysed at once; None: dask's choice from the CPUs
    threads_per_worker: int = 1
    processes: bool = True  # False: threads of the samem process
    memory_limit: str | int = "auto"  # per worker, dask syntax ("6GiB", bytes) or auto
    dashboard_address: str | None = None
    timeout_s: float = 60  # waiting for the scheduler or the LocalCluster to start, s


@dataclass(frozen=True)
class SummarySettings(Settings):
    """``summary``: statistics settings across videos and the figures' formats."""

    stats: str | dict[str, Any] | None = None  # overrides of configs/stats.yaml or a YAML path
    plot_formats: tuple[str, ...] = ("png", "svg")


@dataclass(frozen=True)
class BatchConfig(Settings):
    """Defaults of ``samem batch`` (``configs/batch.yaml``; a test keeps the two equal)."""

    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    torch_threads: int | str | None = "auto"  # per video; auto: cores / workers on a LocalCluster
    summary: SummarySettings = field(default_factory=SummarySettings)

    def __post_init__(self):
        value = self.torch_threads
        if isinstance(value, str) and value != "auto" or isinstance(value, int) and value < 1:
            raise SamemError(f"torch_threads must be at least 1 or auto, got {value!r}")


def load_batch_config(
    path: str | Path | Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> BatchConfig:
    """The shipped ``configs/batch.yaml``, updated section by section from ``path`` (a YAML file or
    a mapping nested like it) and dotted ``overrides`` (``{"cluster.workers": 2}``).

    Raises
    ------
    SamemError
        Unknown keys and bad values, each named.
    """
    user = path if isinstance(path, Mapping) else load_yaml(path) if path is not None else None
    return load(BatchConfig, [load_yaml("batch"), user], overrides, "batch setting")


def _torch_threads(cfg: BatchConfig, local: bool, workers: int | None) -> int | None:
    """Torch threads per video: the configured number, or on a LocalCluster cores / workers."""
    value = cfg.torch_threads
    if value not in (None, "auto"):
        return value
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
    config: BatchConfig | Mapping[str, Any] | None = None,
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
    config : BatchConfig or mapping, optional
        Batch configuration (:func:`load_batch_config`, or a mapping nested like
        configs/batch.yaml over it); default the shipped one.
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
    cfg = config if isinstance(config, BatchConfig) else load_batch_config(config)
    cluster_cfg = cfg.cluster
    if workers is None:
        workers = cluster_cfg.workers
    if workers is not None and int(workers) < 1:
        raise SamemError(f"--workers must be at least 1, got {workers}")
    opts = dict(options or {})
    threads = _torch_threads(cfg, local=client is None and not scheduler, workers=workers)
    if threads is not None and analyze is analyze_file:
        opts.setdefault("torch_threads", threads)
    jobs = plan_jobs(inputs, out, auto_prompt=auto_prompt, options=opts)
    out_root = jobs[0].out_dir.parent
    summary_cfg = {"stats": cfg.summary.stats}  # what video_summary and write_report read
    if analyze is analyze_file:
        # the analysis settings are checked before anything runs; their statistics settings
        # are the summary's unless configs/batch.yaml sets its own
        from samem.stream.settings import load_settings

        settings = load_settings(opts.get("config"), {"model.name": opts.get("model")})
        if summary_cfg.get("stats") is None:
            summary_cfg["stats"] = settings.stats.config
    formats = cfg.summary.plot_formats
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
                threads_per_worker=cluster_cfg.threads_per_worker,
                processes=cluster_cfg.processes,
                memory_limit=cluster_cfg.memory_limit,
                dashboard_address=cluster_cfg.dashboard_address,
                timeout_s=float(cluster_cfg.timeout_s),
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
