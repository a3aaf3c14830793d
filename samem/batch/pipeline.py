"""The per-video analysis of a batch: ``samem analyze``'s pipeline, called in-process on a worker.

:func:`analyze_file` does what ``samem analyze VIDEO --out DIR [--boxes F | --auto-prompt]``
does, through the same functions (:func:`samem.stream.offline.analyze_video` with settings
from :func:`samem.stream.settings.load_settings`), so a batch's per-video outputs are those
of the command run alone. The model is loaded once per worker thread and reused for the
following videos (each video gets a fresh tracker).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samem.stream.settings import ModelSettings

log = logging.getLogger(__name__)

_local = threading.local()
# model loading may seed and draw from torch's global RNG (random initialisation): one at a time
_load_lock = threading.Lock()


def set_torch_threads(n: int | None) -> None:
    """Limit torch's intra-op threads in this worker (so workers do not oversubscribe cores)."""
    if not n:
        return
    import torch

    if torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


def tracker_factory(model_settings: ModelSettings):
    """``(factory of fresh trackers, model description)`` for these model settings, cached per thread.

    Only the latest model is kept, so a worker holds one model in memory.
    """
    from samem.stream.service import model_tracker_factory

    key = json.dumps(model_settings.to_dict(), sort_keys=True, default=str)
    cached = getattr(_local, "model", None)
    if cached is None or cached[0] != key:
        _local.model = None  # release the previous model before loading the next
        with _load_lock:
            _local.model = (key, model_tracker_factory(model_settings))
    return _local.model[1]


def analyze_file(
    video: str | Path,
    out_dir: str | Path,
    boxes: str | Path | None = None,
    auto_prompt: bool = False,
    *,
    model: str | None = None,
    config: str | Path | None = None,
    pixel_size_nm: float | None = None,
    frame_interval_s: float | None = None,
    save_frames: bool = False,
    plots: bool = True,
    torch_threads: int | None = None,
):
    """Run the ``samem analyze`` pipeline on one video, writing its files into ``out_dir``.

    Parameters
    ----------
    video : str or Path
        Any input ``samem analyze`` accepts.
    out_dir : str or Path
        Folder for ``results.h5``, ``tracks.csv``, ``stats.json`` and the figures.
    boxes : str or Path, optional
        Boxes file prompting the tracker (``samem analyze --boxes``).
    auto_prompt : bool
        Prompt with the classical detector when there is no boxes file (``--auto-prompt``).
    model : str, optional
        ``--model`` of samem analyze (default: the settings' model).
    config : str or Path, optional
        ``--config`` of samem analyze: YAML merged over configs/serve.yaml.
    pixel_size_nm, frame_interval_s : float, optional
        Calibration overrides, nm/px and s.
    save_frames : bool
        Copy the raw frames into results.h5.
    plots : bool
        Write the per-video figures.
    torch_threads : int, optional
        Intra-op threads for torch in this worker.

    Returns
    -------
    samem.stream.offline.AnalyzeReport
        Frames, particles, tracking wall time and files written.
    """
    from samem.stream.control import load_boxes_file
    from samem.stream.offline import analyze_video
    from samem.stream.settings import load_settings

    set_torch_threads(torch_threads)
    auto = auto_prompt and boxes is None
    settings = load_settings(config, {"model.name": model, "prompts.auto": auto or None})
    prompts = load_boxes_file(boxes) if boxes is not None else None
    factory, model_name = tracker_factory(settings.model)
    log.info("analysing %s into %s (pid %d)", video, out_dir, os.getpid())
    return analyze_video(
        Path(video),
        Path(out_dir),
        factory(),
        settings,
        boxes=prompts,
        auto_prompt=auto,
        pixel_size_nm=pixel_size_nm,
        frame_interval_s=frame_interval_s,
        save_frames=save_frames,
        plots=plots,
        model_name=model_name,
    )
