"""Run a batch's videos as tasks on dask.distributed: a LocalCluster, or an existing cluster.

One task per video (:func:`samem.batch.task.run_job`); results come back as they finish,
with a progress bar over videos. A failing video becomes a summary row with its error and the
others go on. Finished videos (see :mod:`samem.batch.task`) are skipped without a task.

With ``scheduler`` given, tasks go to that cluster's workers: every worker must have samem
installed and see the inputs and the output folder under the same paths (shared storage).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from samem.batch.inputs import VideoJob
from samem.batch.task import AnalyzeFn, is_finished, read_marker, run_job
from samem.errors import SamemError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | float | None = "auto",
    dashboard_address: str | None = None,
    timeout_s: float = 30.0,
) -> Iterator[Any]:
    """A ``dask.distributed.Client``, connected to ``scheduler`` or to a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); None starts a LocalCluster,
        shut down on exit.
    workers : int, optional
        LocalCluster worker count; None lets dask choose from the CPU count.
    threads_per_worker : int
        Threads per LocalCluster worker (videos analysed at once per worker).
    processes : bool
        LocalCluster workers as processes (True) or threads of this process (False).
    memory_limit : str, float or None
        Per-worker memory limit of the LocalCluster (dask syntax, e.g. ``"4GiB"``).
    dashboard_address : str or None
        Dask dashboard address (``":8787"``); None disables it.
    timeout_s : float
        Seconds to wait for the scheduler or the cluster to start.

    Raises
    ------
    SamemError
        The scheduler cannot be reached, or the worker count is not positive.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout_s)
        except (OSError, TimeoutError) as exc:
            raise SamemError(f"cannot reach the dask scheduler at {scheduler} ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers is not None and workers < 1:
        raise SamemError(f"--workers must be at least 1, got {workers}")
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    with _dask_logs_at(logging.CRITICAL if quiet else None):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            memory_limit=memory_limit,
            # without a dashboard the scheduler still serves HTTP (metrics): on a free port, not 8787
            dashboard_address=dashboard_address or ":0",
            scheduler_kwargs={} if dashboard_address else {"dashboard": False},
            # task failures become summary rows; dask's own logs and tracebacks only with samem -vv
            silence_logs=logging.CRITICAL if quiet else False,
        )
        try:
            client = Client(cluster, timeout=timeout_s)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


@contextlib.contextmanager
def _dask_logs_at(level: int | None) -> Iterator[None]:
    """Hold the ``distributed`` loggers of this process at ``level`` (None: leave them)."""
    logger = logging.getLogger("distributed")
    old = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def failed_row(job: VideoJob, exc: BaseException) -> dict[str, Any]:
    """Summary row of a video whose analysis raised ``exc``."""
    message = str(exc) if isinstance(exc, SamemError) else f"{type(exc).__name__}: {exc}"
    return {
        "video": str(job.video),
        "name": job.name,
        "status": "failed",
        "prompt": job.prompt,
        "error": message,
    }


def skipped_row(job: VideoJob) -> dict[str, Any]:
    """Summary row of a finished video, read back from its marker."""
    marker = read_marker(job.out_dir) or {}
    row = dict(marker.get("summary") or {})
    row.update(video=str(job.video), name=job.name, status="skipped (finished)")
    return row


def check_outputs(jobs: list[VideoJob]) -> None:
    """Refuse to start when an output folder exists that samem batch did not write."""
    foreign = [j.out_dir for j in jobs if j.out_dir.exists() and read_marker(j.out_dir) is None]
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise SamemError(
            f"output folders exist that samem batch did not write: {shown}; choose another --out"
        )


def run_jobs(
    jobs: list[VideoJob],
    client: Any,
    analyze: AnalyzeFn,
    summarize: Callable,
    force: bool = False,
    progress: bool | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    token: str | None = None,
) -> list[dict[str, Any]]:
    """Submit the unfinished videos to ``client`` and collect one summary row per video.

    Parameters
    ----------
    jobs : list of VideoJob
        The batch, in output order.
    client : dask.distributed.Client
        Where the tasks run.
    analyze, summarize : callable
        Passed to :func:`samem.batch.task.run_job`; they must be importable on the workers.
    force : bool
        Re-analyse finished videos too.
    progress : bool, optional
        Show a progress bar over videos (default: when stderr is a terminal).
    on_result : callable, optional
        Called with each row as its video completes (or is skipped).
    token : str, optional
        Identifier of this run (task keys, scratch folder names); default: random.

    Returns
    -------
    list of dict
        Rows in the order of ``jobs``; ``status`` is "done", "skipped (finished)" or "failed"
        (then ``error`` says why).
    """
    from dask.distributed import as_completed
    from tqdm import tqdm

    check_outputs(jobs)
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        if not force and is_finished(job):
            rows[job.name] = skipped_row(job)
            if on_result:
                on_result(rows[job.name])
        else:
            todo.append(job)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = tqdm(
        total=len(jobs), initial=len(rows), unit="video", desc="batch", disable=not progress, file=sys.stderr
    )
    token = token or uuid.uuid4().hex[:12]
    futures = {
        client.submit(
            run_job, job, analyze, summarize, token, key=f"samem-{job.name}-{token}", pure=False
        ): job
        for job in todo
    }
    failures = 0
    try:
        for future in as_completed(futures):
            job = futures[future]
            if future.status == "error":
                exc = future.exception()
                rows[job.name] = failed_row(job, exc)
                failures += 1
                log.warning("%s failed: %s", job.name, rows[job.name]["error"])
            else:
                rows[job.name] = future.result()
            future.release()
            if on_result:
                on_result(rows[job.name])
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        bar.close()
    return [rows[j.name] for j in jobs]
