"""Offline reanalysis at scale: ``samem analyze`` over many videos as dask.distributed tasks.

:func:`run_batch` plans the videos (:mod:`samem.batch.inputs`), skips the finished ones,
runs the others on a LocalCluster or an existing cluster (:mod:`samem.batch.runner`), each
as one task that publishes its outputs atomically (:mod:`samem.batch.task`), then writes
the summary and the statistics across videos (:mod:`samem.batch.report`).
"""

from samem.batch.inputs import VideoJob, plan_jobs
from samem.batch.run import BatchConfig, BatchResult, load_batch_config, run_batch
from samem.batch.task import MARKER, is_finished

__all__ = [
    "MARKER",
    "BatchConfig",
    "BatchResult",
    "VideoJob",
    "is_finished",
    "load_batch_config",
    "plan_jobs",
    "run_batch",
]
