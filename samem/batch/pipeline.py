"""The per-video analysis of a batch: ``samem analyze``'s pipeline, called in-process on a worker."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from samem.errors import SamemError

log = logging.getLogger(__name__)

#: (module, function) of the per-video pipeline of ``samem analyze``, in order of preference
ANALYZE_FUNCTIONS = [("samem.cli.analyze", "analyze_video"), ("samem.cli.analyze", "analyze")]


def _analyze_function():
    for module_name, attr in ANALYZE_FUNCTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    raise SamemError("samem analyze's per-video pipeline is not available in this installation")


def set_torch_threads(n: int | None) -> None:
    """Limit torch's intra-op threads in this worker (so workers do not oversubscribe cores)."""
    if not n:
        return
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    if torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


def analyze_video(
    video: str | Path,
    out_dir: str | Path,
    boxes: str | Path | None = None,
    auto_prompt: bool = False,
    torch_threads: int | None = None,
    **options: Any,
) -> Any:
    """Run the ``samem analyze`` pipeline on one video, writing its files into ``out_dir``.

    Parameters
    ----------
    video : str or Path
        Any input ``samem analyze`` accepts.
    out_dir : str or Path
        Existing, empty folder for ``results.h5``, ``tracks.csv``, ``stats.json`` and plots.
    boxes : str or Path, optional
        Boxes file prompting the tracker.
    auto_prompt : bool
        Prompt automatically (used when ``boxes`` is None).
    torch_threads : int, optional
        Intra-op threads for torch in this worker.
    **options
        Passed to the analyze function (model, pixel_size_nm, frame_interval_s, ...).
    """
    set_torch_threads(torch_threads)
    fn = _analyze_function()
    log.info("analysing %s into %s (pid %d)", video, out_dir, os.getpid())
    return fn(
        Path(video), Path(out_dir), boxes=Path(boxes) if boxes else None, auto_prompt=auto_prompt, **options
    )
